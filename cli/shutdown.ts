/**
 * A repeat of the signal this soon after the first is the same request. Under
 * `npm run`, one Ctrl-C reaches the process twice: the terminal signals the
 * whole process group, and npm forwards the SIGINT it got to its child.
 */
const REPEAT_MS = 1_000

export interface UntilSignalOptions {
  /** Also stop by itself after this many milliseconds (`lab --duration`). */
  afterMs?: number
}

/**
 * Runs `stop` once, on SIGINT or SIGTERM (or after `afterMs`), then resolves.
 * The signal listeners stay until `stop` has finished, so a signal that comes
 * while stopping never kills the process half-way; one that comes more than
 * REPEAT_MS after the first exits at once (130).
 */
export function untilSignal(stop: () => Promise<void>, options: UntilSignalOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    let firstAt: number | undefined
    let timer: NodeJS.Timeout | undefined
    const done = () => {
      clearTimeout(timer)
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
    const begin = () => {
      firstAt = performance.now()
      stop().then(
        () => {
          done()
          resolve()
        },
        (err: unknown) => {
          done()
          reject(err)
        },
      )
    }
    function onSignal(signal: NodeJS.Signals) {
      if (firstAt !== undefined) {
        if (performance.now() - firstAt > REPEAT_MS) process.exit(130)
        return
      }
      process.stderr.write(`\nedge-gateway: ${signal} received, stopping...\n`)
      begin()
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    if (options.afterMs !== undefined) {
      timer = setTimeout(() => {
        if (firstAt === undefined) begin()
      }, options.afterMs)
    }
  })
}
