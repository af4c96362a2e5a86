import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KillBench, type KillRoundsOptions, verifyKillRounds } from './kill-rounds.js'

const OPTIONS: KillRoundsOptions = {
  kills: 6,
  label: 'write',
  rate: 4_000,
  connections: 4,
  window: 1_000,
  throttleCloud: false,
  killFromMs: 800,
  killSpanMs: 1_500,
}

/**
 * `cloud.queue.durability: write` acknowledges a message once its record is in the kernel, with no
 * fdatasync: what it promises is that the gateway process dying loses nothing acknowledged (a power
 * loss may). The same SIGKILL rounds as gateway-sigkill.test.ts hold it to that: every message the
 * gateway acknowledged reaches the real cloud broker.
 */
describe("gateway with durability 'write' killed with SIGKILL mid-stream at 4,000 msg/s offered", () => {
  let bench: KillBench

  beforeAll(async () => {
    bench = await KillBench.start({ durability: 'write' })
  })

  afterAll(async () => {
    await bench?.stop()
  })

  it(`zero acknowledged lost over ${OPTIONS.kills} kills`, async () => {
    const rounds = await bench.killRounds(OPTIONS)
    await verifyKillRounds(
      rounds,
      OPTIONS,
      `${OPTIONS.rate}/s offered over ${OPTIONS.connections} connections, durability write`,
    )
    expect(
      rounds.roundAcknowledged.filter((n) => n === 0),
      `acknowledged per round: ${rounds.roundAcknowledged.join('/')}`,
    ).toEqual([])
  }, 150_000)
})
