/**
 * One trial: a fresh edge (Mosquitto or the gateway) in front of the shared
 * cloud broker and subscriber, one load from 4 publisher processes (plus idle
 * devices if the load has them), CPU and memory read from /proc around it.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { waitForDrain } from './drain.mjs'
import { trialFigures } from './figures.mjs'
import { PUBLISHERS } from './fixtures.mjs'
import { DISCONNECT_PACKET } from './mqtt-wire.mjs'
import { cpuSeconds, statusKb, writeBytes } from './proc-stats.mjs'
import { spawnScript, stopProcess } from './processes.mjs'
import { driveRestart, restartFigures } from './restart.mjs'
import { firstAcceptedConnection, firstDelivery } from './startup.mjs'
import { connectFields, lanEndpoint, startEdge } from './systems.mjs'

const PUBLISHER = fileURLToPath(new URL('../publisher.mjs', import.meta.url))
const IDLE = fileURLToPath(new URL('../idle-devices.mjs', import.meta.url))
/**
 * A publisher that stopped sending waits for every PUBACK while its connection lives; only this
 * long without any (a hung edge) ends the wait. The same bound as the drain's (bench/lib/drain.mjs).
 */
const ACK_STALL_MS = 90_000
const IDLE_CONCURRENCY = 20

/** CPU sets of a one-core trial: the edge alone on CPU 0, everything else on CPU 1. */
export const PIN = { edge: '0', rest: '1', all: '0-1' }

const mib = (kb) => (kb === null ? null : Math.round((kb / 1024) * 10) / 10)

function readLog(file) {
  try {
    return readFileSync(file, 'utf8')
  } catch {
    return ''
  }
}

/** What the edge logged about trouble: counts, and the first few lines worth reading. */
function logFindings(edge) {
  const text = readLog(edge.logFile)
  const lines = text.split('\n')
  if (edge.setup.system === 'mosquitto') {
    const notable = lines.filter(
      (l) => /dropped|error|warning|refused|timeout/i.test(l) && !/unexpected eof/.test(l),
    )
    return {
      bridgeDropWarnings: text.split('Outgoing messages are being dropped').length - 1,
      notable: notable.slice(0, 5),
    }
  }
  const notable = lines.filter((l) => /"level":(40|50|60)/.test(l))
  return {
    queueFullEvents: text.split('"uplink_queue_full"').length - 1,
    warnOrWorse: notable.length,
    notable: notable.slice(0, 5).map((l) => l.slice(0, 300)),
  }
}

function publisherConfig(edge, fixtures, load, trialId, n, creditSocket) {
  const device = fixtures.publishers[n]
  const sealed = edge.setup.sealed === true
  return {
    id: n,
    trial: trialId,
    endpoint: lanEndpoint(edge, device),
    connect: connectFields(edge, device, device.id),
    topic: `devices/${device.id}/${sealed ? 'sealed' : 'data'}`,
    qos: load.qos,
    payloadSize: load.payloadSize,
    mode: load.mode,
    window: load.window,
    ratePerSecond: load.ratePerSecond,
    maxMessages: load.maxPerPublisher,
    durationMs: load.durationMs,
    ackStallMs: ACK_STALL_MS,
    creditSocket,
    ...(sealed && { sealed: device.payload }),
  }
}

async function startIdle(edge, fixtures, count, cpus) {
  const idle = spawnScript(IDLE, { cpus })
  const devices = fixtures.idle.slice(0, count).map((d) => ({ clientId: d.id, psk: d.psk }))
  const ready = await idle.request(
    {
      type: 'init',
      config: { endpoint: lanEndpoint(edge, devices[0]), devices, concurrency: IDLE_CONCURRENCY },
    },
    'ready',
    120_000,
  )
  return { proc: idle, ready }
}

export async function runTrial(ctx, { setupName, loadName, load, pinned, trialId }) {
  const { fixtures, cloud, subscriber } = ctx
  const dir = join(fixtures.root, 'trials', `${trialId}-${setupName}-${loadName}`)
  const harnessCpus = pinned ? PIN.rest : undefined
  const edge = await startEdge(setupName, {
    fixtures,
    cloudPort: cloud.port,
    dir,
    cpus: pinned ? PIN.edge : undefined,
    idle: load.idle > 0,
    bridgeProtocol: ctx.bridgeProtocol,
    queueStore: ctx.queueStore,
  })
  const helpers = []
  try {
    const probe = fixtures.publishers[0]
    const { session, startupMs } = await firstAcceptedConnection(edge, probe)
    const readyMs = await firstDelivery(edge, session, subscriber, `devices/${probe.id}/probe`)
    session.socket.end(DISCONNECT_PACKET)

    let idle = null
    if (load.idle > 0) {
      const started = await startIdle(edge, fixtures, load.idle, harnessCpus)
      helpers.push(started.proc)
      idle = {
        connected: started.ready.connected,
        failed: started.ready.failed,
        connectMs: started.ready.elapsedMs,
        errors: started.ready.errors,
        edgeRssMiB: mib(statusKb(edge.pid, 'VmRSS')),
      }
    }

    const count = load.publishers ?? PUBLISHERS
    await subscriber.request(
      { type: 'begin', trial: trialId, publishers: count, maxPerPublisher: load.maxPerPublisher },
      'begun',
    )
    const publishers = Array.from({ length: count }, () => spawnScript(PUBLISHER, { cpus: harnessCpus }))
    helpers.push(...publishers)
    await Promise.all(
      publishers.map((p, n) =>
        p.request(
          {
            type: 'init',
            config: publisherConfig(edge, fixtures, load, trialId, n, subscriber.creditSocket),
          },
          'ready',
        ),
      ),
    )

    const cpu0 = { edge: cpuSeconds(edge.pid), cloud: cpuSeconds(cloud.pid) }
    const written0 = writeBytes(edge.pid)
    const reportTimeoutMs = load.durationMs + ACK_STALL_MS + 30_000
    let reports
    let restart = null
    if (load.mode === 'restart') {
      ;({ reports, restart } = await driveRestart({ edge, publishers, load, reportTimeoutMs }))
      // The edge's CPU across two processes is not one figure: left out.
      cpu0.edge = null
    } else {
      reports = await Promise.all(publishers.map((p) => p.request({ type: 'go' }, 'report', reportTimeoutMs)))
    }
    const drain = await waitForDrain({
      edge,
      device: probe,
      subscriber,
      markerId: trialId,
      sent: reports.reduce((a, r) => a + r.sent, 0),
      acked: load.qos > 0 ? reports.reduce((a, r) => a + r.acked, 0) : 0,
      quietMs: load.quietMs,
    })
    const cpu1 = { edge: cpuSeconds(edge.pid), cloud: cpuSeconds(cloud.pid) }
    const written1 = writeBytes(edge.pid)
    const peakKb = statusKb(edge.pid, 'VmHWM')
    const memory = {
      // Through a restart: the higher peak of the two processes.
      edgePeakMiB: mib(restart?.peakBeforeKb > peakKb ? restart.peakBeforeKb : peakKb),
      cloudPeakMiB: mib(statusKb(cloud.pid, 'VmHWM')),
    }
    const result = await subscriber.request({ type: 'finish' }, 'result')
    if (idle) idle.stillOpen = (await helpers[0].request({ type: 'status' }, 'status')).open
    const logCounts = logFindings(edge)
    const delta = (k) => (cpu0[k] === null || cpu1[k] === null ? null : cpu1[k] - cpu0[k])
    return trialFigures({
      load,
      reports,
      result,
      cpu: { edge: delta('edge'), cloud: delta('cloud') },
      // Through a restart: two processes, left out as their CPU is.
      diskWriteBytes: restart || written0 === null || written1 === null ? null : written1 - written0,
      memory,
      startup: { firstConnectionMs: Math.round(startupMs), firstDeliveryMs: Math.round(readyMs) },
      drain,
      logCounts,
      idle,
      restart: restart && restartFigures(reports, restart, load.afterMs),
    })
  } finally {
    for (const h of helpers) h.send({ type: 'exit' })
    await Promise.all(helpers.map((h) => stopProcess(h.child, 2_000, 1_000)))
    await edge.stop()
  }
}
