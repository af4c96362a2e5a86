import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KillBench, type KillRoundsOptions, verifyKillRounds } from './kill-rounds.js'

const OPTIONS: KillRoundsOptions = {
  kills: 10,
  label: 'flood',
  rate: Number.POSITIVE_INFINITY,
  connections: 4,
  window: 1_000,
  throttleCloud: true,
  killFromMs: 700,
  killSpanMs: 1_000,
}

/**
 * The gateway process killed with SIGKILL at random moments under a flood
 * (devices publish QoS 1 as fast as PUBACKs come) while the cloud broker is
 * frozen (SIGSTOP) from a random moment of each round until the kill, so every
 * kill finds a backlog on disk and messages in flight on both sides.
 */
describe('gateway killed with SIGKILL mid-stream under a flood, cloud throttled', () => {
  let bench: KillBench

  beforeAll(async () => {
    bench = await KillBench.start()
  })

  afterAll(async () => {
    await bench?.stop()
  })

  it(`zero acknowledged lost over ${OPTIONS.kills} kills`, async () => {
    const rounds = await bench.killRounds(OPTIONS)
    await verifyKillRounds(rounds, OPTIONS, 'flood, cloud frozen before each kill')
    // The cloud was frozen before each kill, so every restart had a backlog to recover.
    for (const r of rounds.recoveries.slice(1)) expect(r.held).toBeGreaterThan(0)
  }, 150_000)
})
