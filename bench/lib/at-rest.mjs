/**
 * Resident memory at rest: in each round, one edge of each system (the TLS-PSK
 * setups, configured as a trial's) is started before the round's trials and runs
 * beside them with no device connected; AT_REST_MS after its spawn its VmRSS is
 * read from /proc. So the figure costs no 20 s wait per trial, only the start-up
 * of two processes per round (and the rest of the 20 s when a round is shorter).
 *
 * It has its own cloud session (bench/lib/systems.mjs `atRest`), and nothing of
 * it reaches the subscriber. Once read, it is asked to accept one device (it must
 * still serve) and stopped, between two trials, never during one.
 */
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { waitForPort } from './ports.mjs'
import { statusKb } from './proc-stats.mjs'
import { firstAcceptedConnection } from './startup.mjs'
import { summarize } from './stats.mjs'
import { SETUPS, startEdge } from './systems.mjs'

export const AT_REST_MS = 20_000
/** The setups read at rest: the TLS-PSK pair, as the trials configure them. */
export const AT_REST_SETUPS = ['mosquitto-psk', 'gateway-psk']
/** After its LAN port accepts: time for an edge to finish starting (cloud link, key binding) before a trial starts. */
const SETTLE_MS = 1_000

const mib = (kb) => (kb === null ? null : Math.round((kb / 1024) * 10) / 10)

/**
 * Starts the at-rest edges of `setupNames` one after another (each until its
 * LAN port accepts) and schedules their readings. Resolves with
 * `{ stopRead(), finish() }`: `stopRead` stops the edges already read (call it
 * between trials), `finish` waits for the readings left and resolves with one
 * sample per setup.
 */
export async function startAtRest(ctx, setupNames, round) {
  const entries = []
  for (const setupName of setupNames) {
    const entry = { setupName, edge: null, sample: null, read: null, stopped: false }
    entries.push(entry)
    try {
      entry.edge = await startEdge(setupName, {
        fixtures: ctx.fixtures,
        cloudPort: ctx.cloud.port,
        dir: join(ctx.fixtures.root, 'at-rest', `${round}-${setupName}`),
        bridgeProtocol: ctx.bridgeProtocol,
        queueStore: ctx.queueStore,
        atRest: true,
      })
      const { edge } = entry
      await waitForPort(edge.tcpPort, { timeoutMs: 30_000, gone: () => !edge.running(), what: edge.name })
      entry.read = new Promise((resolve) => {
        setTimeout(() => resolve(readNow(entry, round)), edge.spawnedAt + AT_REST_MS - performance.now())
      })
    } catch (err) {
      entry.sample = failed(entry, round, err)
      entry.read = Promise.resolve(entry.sample)
    }
  }
  await sleep(SETTLE_MS)

  async function stop(entry) {
    if (entry.stopped) return
    entry.stopped = true
    if (entry.edge === null) return
    if (entry.sample && entry.sample.error === undefined) {
      // Still serving after 20 s at rest: one device is accepted (after the reading, so it does not count).
      try {
        const { session } = await firstAcceptedConnection(entry.edge, ctx.fixtures.publishers[1], 10_000)
        session.socket.destroy()
        entry.sample.served = true
      } catch (err) {
        entry.sample.served = false
        entry.sample.error = `no device accepted after the reading: ${err instanceof Error ? err.message : err}`
      }
    }
    await entry.edge.stop()
  }

  return {
    async stopRead() {
      for (const entry of entries) if (entry.sample !== null) await stop(entry)
    },
    async finish() {
      const samples = []
      for (const entry of entries) {
        samples.push(await entry.read)
        await stop(entry)
      }
      return samples
    },
  }
}

function readNow(entry, round) {
  const { edge } = entry
  const afterMs = Math.round(performance.now() - edge.spawnedAt)
  const rssKb = edge.running() ? statusKb(edge.pid, 'VmRSS') : null
  entry.sample =
    rssKb === null
      ? failed(entry, round, new Error(`${edge.name} had exited ${afterMs} ms after its spawn`))
      : {
          round,
          setup: entry.setupName,
          system: SETUPS[entry.setupName].label,
          afterMs,
          rssMiB: mib(rssKb),
          peakMiB: mib(statusKb(edge.pid, 'VmHWM')),
        }
  return entry.sample
}

function failed(entry, round, err) {
  return {
    round,
    setup: entry.setupName,
    system: SETUPS[entry.setupName].label,
    error: err instanceof Error ? err.message : String(err),
  }
}

/** Per setup: the median, min and max of the readings over the rounds. */
export function summarizeAtRest(samples) {
  const setups = [...new Set(samples.map((s) => s.setup))]
  return setups.map((setup) => {
    const mine = samples.filter((s) => s.setup === setup)
    const ok = mine.filter((s) => s.error === undefined)
    return {
      setup,
      system: mine[0].system,
      n: ok.length,
      of: mine.length,
      rssMiB: summarize(ok.map((s) => s.rssMiB)),
      peakMiB: summarize(ok.map((s) => s.peakMiB)),
      errors: mine.filter((s) => s.error !== undefined).map((s) => s.error),
    }
  })
}
