/**
 * The IPC side of a harness child process (publisher, subscriber, idle
 * devices): messages from the parent go to `handlers[type]`; the child exits
 * when the parent goes away or after `maxLifeMs`, so nothing outlives a run.
 */
export function serveParent(handlers, { maxLifeMs = 20 * 60_000 } = {}) {
  if (!process.send)
    throw new Error('Expected to run as a child process with an IPC channel (bench/run.mjs starts it)')
  const life = setTimeout(() => process.exit(3), maxLifeMs)
  life.unref()
  process.on('disconnect', () => process.exit(0))
  process.on('message', (message) => {
    const handler = handlers[message?.type]
    if (!handler) return
    Promise.resolve()
      .then(() => handler(message))
      .catch((err) => {
        send({ type: 'error', message: err instanceof Error ? err.message : String(err) })
      })
  })
}

export function send(message) {
  process.send?.(message)
}

/** CPU time of this process in µs (user + system), to show when the harness itself is the bottleneck. */
export function cpuMicros() {
  const { user, system } = process.cpuUsage()
  return user + system
}
