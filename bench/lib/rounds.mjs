/**
 * Rounds of the plan: in each round every load runs once against each of its
 * setups, the order of the setups flipping from load to load and round to
 * round; then the bytes on the wire of every setup. A round is started only
 * while the time budget lasts.
 */
import { join } from 'node:path'
import { AT_REST_SETUPS, startAtRest, summarizeAtRest } from './at-rest.mjs'
import { buildPlan } from './plan.mjs'
import { pinProcess } from './processes.mjs'
import { firstAcceptedConnection } from './startup.mjs'
import { lanLabel, SETUPS, startEdge, uplinkLabel } from './systems.mjs'
import { summarizeTrials } from './table.mjs'
import { PIN, runTrial } from './trial.mjs'
import { measureWireBytes } from './wire-bytes.mjs'

function pinShared(ctx, cpus) {
  if (ctx.pinnedTo === cpus) return
  pinProcess(ctx.cloud.pid, cpus)
  pinProcess(ctx.subscriber.pid, cpus)
  ctx.pinnedTo = cpus
}

async function wireBytes(ctx, setupName, id) {
  const edge = await startEdge(setupName, {
    fixtures: ctx.fixtures,
    cloudPort: ctx.cloud.port,
    dir: join(ctx.fixtures.root, 'wire', `${id}-${setupName}`),
    bridgeProtocol: ctx.bridgeProtocol,
    queueStore: ctx.queueStore,
  })
  try {
    const device = ctx.fixtures.publishers[1]
    const { session } = await firstAcceptedConnection(edge, device)
    session.socket.destroy()
    return await measureWireBytes(edge, device)
  } finally {
    await edge.stop()
  }
}

export async function runRounds(shared, options, log) {
  const ctx = {
    ...shared,
    pinnedTo: null,
    bridgeProtocol: options.bridgeProtocol,
    queueStore: options.gatewayQueue,
  }
  const plan = buildPlan(options)
  const deadline = Date.now() + options.maxMinutes * 60_000
  const rows = new Map()
  const wire = new Map()
  const atRestSamples = []
  const notes = []
  // Memory at rest: the TLS-PSK setups this run measures, one edge of each per round.
  const planned = new Set(plan.flatMap((p) => p.setups))
  const atRestSetups = options.atRest ? AT_REST_SETUPS.filter((s) => planned.has(s)) : []
  let trialId = 0
  let lastRoundMs = 0
  for (let round = 1; round <= options.repeats; round++) {
    const roundStart = Date.now()
    if (round > 1 && roundStart + lastRoundMs > deadline) {
      notes.push(
        `stopped after ${round - 1} round(s): another round would not fit in ${options.maxMinutes} minutes`,
      )
      break
    }
    const atRest =
      atRestSetups.length > 0
        ? await startAtRest(ctx, round % 2 ? atRestSetups : [...atRestSetups].reverse(), round)
        : null
    for (const [i, item] of plan.entries()) {
      pinShared(ctx, item.pinned ? PIN.rest : PIN.all)
      const order = (round + i) % 2 === 0 ? item.setups : [...item.setups].reverse()
      for (const setupName of order) {
        const setup = SETUPS[setupName]
        const key = `${item.group}|${item.loadName}|${setupName}`
        if (!rows.has(key)) {
          rows.set(key, {
            group: item.group,
            load: item.loadName,
            setup: setupName,
            system: setup.label,
            lan: lanLabel(setup),
            uplink: uplinkLabel(setup),
            qos: item.load.qos,
            pinned: item.pinned,
            loadSpec: item.load,
            trials: [],
          })
        }
        trialId++
        // An edge at rest that has been read is stopped now, between two trials.
        await atRest?.stopRead()
        const started = Date.now()
        let figures
        try {
          figures = await runTrial(ctx, {
            setupName,
            loadName: item.loadName,
            load: item.load,
            pinned: item.pinned,
            trialId,
          })
        } catch (err) {
          figures = { error: err instanceof Error ? err.message : String(err) }
        }
        rows.get(key).trials.push({ round, trialId, ...figures })
        const took = ((Date.now() - started) / 1000).toFixed(1)
        log(
          figures.error
            ? `round ${round} ${item.loadName} ${setupName}: FAILED (${took} s): ${figures.error}`
            : `round ${round} ${item.loadName.padEnd(20)} ${setupName.padEnd(19)} ${String(figures.deliveredPerSec).padStart(7)} msg/s  ` +
                `acked-lost ${figures.ackedLost ?? '-'}  p99 ${figures.latencyMs.p99} ms` +
                (figures.envelope
                  ? `  verified ${figures.envelope.verified} failed ${figures.envelope.signatureFailures}`
                  : '') +
                (figures.restart ? `  full speed after ${figures.restart.fullSpeedAfterMs ?? '-'} ms` : '') +
                `  (${took} s)`,
        )
      }
    }
    pinShared(ctx, PIN.all)
    if (atRest) {
      for (const sample of await atRest.finish()) {
        atRestSamples.push(sample)
        log(
          sample.error
            ? `round ${round} at rest ${sample.setup}: FAILED: ${sample.error}`
            : `round ${round} at rest ${sample.setup.padEnd(19)} RSS ${sample.rssMiB} MiB ${sample.afterMs} ms after spawn`,
        )
      }
    }
    if (options.wire) {
      // HPKE changes only the cloud side: the LAN bytes are those of gateway-psk and gateway-sealed.
      const setupNames = [...new Set(plan.flatMap((p) => p.setups))].filter((s) => !SETUPS[s].hpke)
      for (const setupName of round % 2 ? setupNames : [...setupNames].reverse()) {
        let measured
        try {
          measured = await wireBytes(ctx, setupName, `${round}`)
        } catch (err) {
          measured = { error: err instanceof Error ? err.message : String(err) }
        }
        if (!wire.has(setupName)) wire.set(setupName, [])
        wire.get(setupName).push(measured)
      }
    }
    lastRoundMs = Date.now() - roundStart
  }
  const rowList = [...rows.values()].map((row) => ({
    ...row,
    okTrials: row.trials.filter((t) => !t.error).length,
    summary: summarizeTrials(row.trials),
  }))
  const wireList = [...wire.entries()].map(([setupName, runs]) => {
    const ok = runs.filter((r) => !r.error)
    return {
      setup: setupName,
      system: SETUPS[setupName].label,
      lan: lanLabel(SETUPS[setupName]),
      uplink: uplinkLabel(SETUPS[setupName]),
      ...(ok[0] ?? { error: runs[0]?.error }),
      identicalAcrossRounds: ok.every((r) => JSON.stringify(r) === JSON.stringify(ok[0])),
      runs,
    }
  })
  return { rows: rowList, wire: wireList, atRest: summarizeAtRest(atRestSamples), atRestSamples, notes }
}
