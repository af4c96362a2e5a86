/** Types for restart.mjs, so the unit tests can feed restartFigures synthetic reports. */

export const RESTART_BUCKET_MS: number
export const FULL_SPEED_SHARE: number

export interface AckReport {
  acks: { goMicros: number; bucketMs: number; buckets: number[] }
  reconnectAttempts?: number
}

export interface RestartTimes {
  stopAtMicros: number
  spawnAtMicros: number
  stopMs: number
}

export interface RestartFigures {
  stopMs: number
  bucketMs: number
  beforePerSec: number
  afterPerSec: number[]
  fullSpeedAfterMs: number | null
  reconnectAttempts: number
}

export function restartFigures(reports: AckReport[], restart: RestartTimes, afterMs: number): RestartFigures
