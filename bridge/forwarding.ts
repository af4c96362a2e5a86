import { type Observable, retry, type Subscription, tap, timer } from 'rxjs'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'

/** An error with its code and the cause under it: "Cannot read ... [QUEUE_ERR_IO]: EISDIR: ...". */
export function describeFailure(err: unknown): string {
  if (!(err instanceof Error)) return String(err)
  const code = (err as { code?: unknown }).code
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : ''
  return `${err.message}${typeof code === 'string' ? ` [${code}]` : ''}${cause}`
}

/**
 * What the uplink pipeline is doing:
 * - running: reading and forwarding (or waiting for a cloud session);
 * - restarting: it failed (a queue read error) and starts again after `retryInMs`;
 * - stopped: it failed `attempts + 1` times in a row; nothing is forwarded any more.
 */
export type ForwardingState =
  | { status: 'running' }
  | { status: 'restarting'; attempt: number; of: number; retryInMs: number; cause: string }
  | { status: 'stopped'; cause: string }

export interface RestartPolicy {
  /** Restarts in a row (without a message settled in between) before forwarding is given up. */
  attempts: number
  /** Delay before the first restart; it doubles for each next one, up to maxDelayMs. */
  initialDelayMs: number
  maxDelayMs: number
}

/** 5 restarts after 0.5, 1, 2, 4 and 8 s: 15.5 s of trying before the gateway gives up. */
export const DEFAULT_RESTARTS: RestartPolicy = { attempts: 5, initialDelayMs: 500, maxDelayMs: 8000 }

/**
 * Runs the uplink pipeline and keeps it running: an error (the queue cannot be
 * read) restarts it with a doubling delay, each restart logged at error and
 * counted (`uplink_pipeline_restarts_total`); a restarted pipeline reads the queue
 * again from its oldest unacknowledged entry, so nothing is skipped. A message
 * settled by the cloud resets the count. After `attempts` restarts in a row it
 * gives up: logged at fatal, `onStopped` runs (the gateway then refuses new
 * messages and exits non-zero so that its supervisor restarts it).
 */
export class Forwarding {
  private current: ForwardingState = { status: 'running' }
  private subscription: Subscription | undefined

  constructor(
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly policy: RestartPolicy,
    private readonly onStopped: (err: unknown) => void,
  ) {
    metrics.declare('uplink_pipeline_restarts_total')
    metrics.gauge('uplink_forwarding_up', () => (this.current.status === 'running' ? 1 : 0))
  }

  get state(): ForwardingState {
    return this.current
  }

  start(pipeline: Observable<unknown>): void {
    const { attempts, initialDelayMs, maxDelayMs } = this.policy
    this.subscription = pipeline
      .pipe(
        retry({
          count: attempts,
          resetOnSuccess: true,
          delay: (err: unknown, attempt) => {
            const retryInMs = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1))
            const cause = describeFailure(err)
            this.current = { status: 'restarting', attempt, of: attempts, retryInMs, cause }
            this.metrics.increment('uplink_pipeline_restarts_total')
            this.logger.error(
              { err, attempt, of: attempts, retryInMs },
              `uplink pipeline failed (${cause}); restarting it in ${retryInMs} ms (restart ${attempt} of ${attempts})`,
            )
            return timer(retryInMs).pipe(
              tap(() => {
                this.current = { status: 'running' }
              }),
            )
          },
        }),
      )
      .subscribe({
        error: (err: unknown) => {
          const cause = describeFailure(err)
          this.current = { status: 'stopped', cause }
          this.logger.fatal(
            { err, restarts: attempts },
            `uplink forwarding stopped: the pipeline failed again after ${attempts} restarts (${cause}); new messages for the cloud are refused and the gateway stops so that its supervisor restarts it`,
          )
          this.onStopped(err)
        },
      })
  }

  stop(): void {
    this.subscription?.unsubscribe()
  }
}
