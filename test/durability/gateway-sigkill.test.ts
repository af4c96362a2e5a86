import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { KillBench, type KillRoundsOptions, verifyKillRounds } from './kill-rounds.js'

const PACED = {
  label: 'paced',
  rate: 4_000,
  connections: 4,
  window: 1_000,
  throttleCloud: false,
  killFromMs: 800,
  killSpanMs: 1_500,
}

/**
 * The gateway process (`edge-gateway start`) killed with SIGKILL at random
 * moments while four device connections offer 4,000 QoS 1 messages a second
 * (a large window each, so a kill finds many messages in flight), and started
 * again each time: every message the gateway acknowledged reaches the real
 * cloud broker; copies come only across a kill and carry the same gw-seq.
 * Both durability modes (cloud.queue.durability): `write` acknowledges once the
 * record is in the kernel, with no fdatasync, and promises exactly this (a
 * power loss may lose what it acknowledged; a process death may not).
 */
for (const [durability, kills] of [
  ['fsync', 10],
  ['write', 6],
] as const) {
  const options: KillRoundsOptions = { ...PACED, kills, label: `${PACED.label}-${durability}` }
  describe(`gateway (durability ${durability}) killed with SIGKILL mid-stream at 4,000 msg/s offered`, () => {
    let bench: KillBench

    beforeAll(async () => {
      bench = await KillBench.start({ durability })
    })

    afterAll(async () => {
      await bench?.stop()
    })

    it(`zero acknowledged lost over ${kills} kills`, async () => {
      const rounds = await bench.killRounds(options)
      await verifyKillRounds(
        rounds,
        options,
        `${options.rate}/s offered over ${options.connections} connections, durability ${durability}`,
      )
      // Every kill came after the gateway had acknowledged messages of that round (how many depends on
      // the machine: as few as 83 a round on 2 cores with other test suites and benchmarks running).
      expect(
        rounds.roundAcknowledged.filter((n) => n === 0),
        `acknowledged per round: ${rounds.roundAcknowledged.join('/')}`,
      ).toEqual([])
    }, 150_000)
  })
}
