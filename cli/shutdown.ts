/**
 * Runs `stop` once on SIGINT or SIGTERM, then resolves. A second signal while
 * stopping exits at once.
 */
export function untilSignal(stop: () => Promise<void>): Promise<void> {
  return new Promise((resolve, reject) => {
    let stopping = false
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) process.exit(130)
      stopping = true
      process.stderr.write(`\nedge-gateway: ${signal} received, stopping...\n`)
      stop().then(() => {
        process.off('SIGINT', onSignal)
        process.off('SIGTERM', onSignal)
        resolve()
      }, reject)
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}
