import { expect } from 'vitest'
import type { Tally } from '../helpers/cloud-consumer.js'

/**
 * The acceptance bar of every fault test: each acknowledged message reached the
 * cloud; every copy a consumer sees more than once carries the same `gw-seq`
 * (so deduplication by sequence number leaves each message exactly once); no
 * sequence number was given to two messages; nothing arrived that no device sent.
 */
export function expectLossless(t: Tally): void {
  expect(t.lost.slice(0, 20), `${t.lost.length} acknowledged message(s) lost`).toEqual([])
  expect(t.seqConflicts.slice(0, 20), 'gw-seq values carried by two payloads').toEqual([])
  expect(t.unflaggedCopies.slice(0, 20), 'payloads delivered under two gw-seq values').toEqual([])
  expect(t.withoutSeq, 'messages without a gw-seq user property').toBe(0)
  expect(t.unknown, 'messages no device sent').toBe(0)
  expect(t.acknowledged).toBeGreaterThan(0)
}

/** lan settings for tests where one device publishes faster than the default lan.deviceRate (1,000/s). */
export const UNLIMITED_RATE = { deviceRate: { messagesPerSecond: 1_000_000, burst: 1_000_000 } }
