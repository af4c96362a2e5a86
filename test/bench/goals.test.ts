import { describe, expect, it } from 'vitest'
import {
  formatGoals,
  type GoalResult,
  type GoalRow,
  goals,
  judge,
  type Summary,
} from '../../bench/lib/goals.mjs'
import { stormEntry } from '../../bench/lib/storm-goal.mjs'

const PSK = '2 cores, TLS-PSK'
const FULL = '2 cores, full path (sign, HPKE)'

/** A summary whose trials all had `value` (or min..max when given). */
function s(value: number, min = value, max = value): Summary {
  return { median: value, min, max, n: 1, sum: value }
}

function row(
  group: string,
  load: string,
  setup: string,
  fields: Record<string, Summary>,
  options: { idle?: number; startups?: number[]; restarts?: Array<number | null> } = {},
): GoalRow {
  return {
    group,
    load,
    setup,
    loadSpec: { idle: options.idle ?? 0 },
    trials: [
      ...(options.startups ?? []).map((ms) => ({ startup: { firstConnectionMs: ms } })),
      ...(options.restarts ?? []).map((ms) => ({ restart: { fullSpeedAfterMs: ms } })),
    ],
    summary: fields,
  }
}

function byId(list: GoalResult[], id: string): GoalResult {
  const found = list.find((g) => g.id === id)
  if (!found) throw new Error(`Expected a goal ${id}, got ${list.map((g) => g.id).join(', ')}`)
  return found
}

/** A run with every figure the goals read, each goal met. */
function fullRun(): GoalRow[] {
  return [
    row(PSK, 'closed-q1-64', 'mosquitto-psk', {
      deliveredPerSec: s(5000),
      ackedLost: s(0),
      edgePeakMiB: s(10),
    }),
    row(
      PSK,
      'closed-q1-64',
      'gateway-psk',
      { deliveredPerSec: s(6000), ackedLost: s(0), edgePeakMiB: s(60) },
      {
        startups: [200, 250, 900],
      },
    ),
    row(PSK, 'closed-q0-64', 'mosquitto-psk', { deliveredPerSec: s(8000), edgePeakMiB: s(10) }),
    row(
      PSK,
      'closed-q0-64',
      'gateway-psk',
      { deliveredPerSec: s(8000), edgePeakMiB: s(61) },
      { startups: [240] },
    ),
    row(PSK, 'rate-q1-64', 'mosquitto-psk', { p50Ms: s(1), p99Ms: s(10), edgeCpuPer10k: s(0.5) }),
    row(PSK, 'rate-q1-64', 'gateway-psk', { p50Ms: s(2), p99Ms: s(20), edgeCpuPer10k: s(0.75) }),
    row(PSK, 'serial-q1-64', 'mosquitto-psk', { ackRttP50Ms: s(0.2), ackRttP99Ms: s(0.5) }),
    row(PSK, 'serial-q1-64', 'gateway-psk', { ackRttP50Ms: s(0.4), ackRttP99Ms: s(3) }),
    row(PSK, 'flood-q1-64', 'mosquitto-psk', { edgePeakMiB: s(11) }),
    row(PSK, 'flood-q1-64', 'gateway-psk', { edgePeakMiB: s(90, 80, 95) }),
    row(PSK, 'idle1000-rate-q1-64', 'mosquitto-psk', { edgePeakMiB: s(24) }, { idle: 1000, startups: [5] }),
    row(
      PSK,
      'idle1000-rate-q1-64',
      'gateway-psk',
      { edgePeakMiB: s(120), idleEdgeRssMiB: s(100) },
      {
        idle: 1000,
        startups: [5000],
      },
    ),
    row(PSK, 'restart-q1-64', 'mosquitto-psk', {}, { restarts: [500, 1000] }),
    row(PSK, 'restart-q1-64', 'gateway-psk', {}, { restarts: [500, 500, null] }),
    row(FULL, 'closed-q1-64', 'mosquitto-psk', { deliveredPerSec: s(4000), ackedLost: s(0) }),
    row(FULL, 'closed-q1-64', 'gateway-sealed-hpke', { deliveredPerSec: s(2000), ackedLost: s(0) }),
  ]
}

const AT_REST = [
  {
    setup: 'mosquitto-psk',
    system: 'Mosquitto bridge',
    n: 1,
    of: 1,
    rssMiB: s(8),
    peakMiB: s(8),
    errors: [],
  },
  { setup: 'gateway-psk', system: 'edge-gateway', n: 1, of: 1, rssMiB: s(64), peakMiB: s(70), errors: [] },
]

describe('issue 14 goals from the rows of a run', () => {
  it('has one line per goal of the issue, in its order', () => {
    expect(goals(fullRun(), { atRest: AT_REST }).map((g) => g.id)).toEqual([
      'qos1-closed',
      'full-path-closed',
      'qos0-closed',
      'p99-2000',
      'cpu-2000',
      'serial-puback',
      'rss-at-rest',
      'rss-peak',
      'rss-idle1000',
      'startup',
      'restart',
      'storm',
    ])
  })

  it('computes each figure, ratio and verdict from the rows (every goal met, limits included)', () => {
    const list = goals(fullRun(), { atRest: AT_REST })
    const figures = Object.fromEntries(
      list.map((g) => [g.id, { gateway: g.gateway, mosquitto: g.mosquitto, ratio: g.ratio, met: g.met }]),
    )
    expect(figures).toEqual({
      'qos1-closed': { gateway: 6000, mosquitto: 5000, ratio: 1.2, met: true },
      'full-path-closed': { gateway: 2000, mosquitto: 4000, ratio: 0.5, met: true },
      'qos0-closed': { gateway: 8000, mosquitto: 8000, ratio: 1, met: true },
      'p99-2000': { gateway: 20, mosquitto: 10, ratio: 2, met: true },
      'cpu-2000': { gateway: 0.75, mosquitto: 0.5, ratio: 1.5, met: true },
      'serial-puback': { gateway: 0.4, mosquitto: 0.2, ratio: 2, met: true },
      'rss-at-rest': { gateway: 64, mosquitto: 8, ratio: 8, met: true },
      'rss-peak': { gateway: 95, mosquitto: 11, ratio: 95 / 11, met: true },
      'rss-idle1000': { gateway: 120, mosquitto: 24, ratio: 5, met: true },
      startup: { gateway: 245, mosquitto: null, ratio: null, met: true },
      restart: { gateway: 500, mosquitto: 750, ratio: 500 / 750, met: true },
      storm: { gateway: null, mosquitto: null, ratio: null, met: null },
    })
    expect(byId(list, 'restart').notes).toEqual([
      'gateway not back at full speed within 4 s in 1 of 3 trials',
    ])
    expect(byId(list, 'p99-2000').p50).toEqual({ gateway: 2, mosquitto: 1 })
    expect(byId(list, 'serial-puback').p99).toEqual({ gateway: 3, mosquitto: 0.5 })
  })

  it('says a goal is not met when the figure is past the limit, in either direction', () => {
    const rows = fullRun()
    const set = (load: string, setup: string, field: string, value: number, group = PSK) => {
      const r = rows.find((x) => x.group === group && x.load === load && x.setup === setup)!
      r.summary[field] = s(value)
    }
    set('closed-q1-64', 'gateway-psk', 'deliveredPerSec', 4999)
    set('closed-q1-64', 'gateway-sealed-hpke', 'deliveredPerSec', 1999, FULL)
    set('rate-q1-64', 'gateway-psk', 'p99Ms', 20.1)
    set('rate-q1-64', 'gateway-psk', 'edgeCpuPer10k', 0.76)
    set('serial-q1-64', 'gateway-psk', 'ackRttP50Ms', 0.41)
    set('flood-q1-64', 'gateway-psk', 'edgePeakMiB', 97)
    set('idle1000-rate-q1-64', 'gateway-psk', 'edgePeakMiB', 129)
    rows.find((r) => r.load === 'restart-q1-64' && r.setup === 'gateway-psk')!.trials = [
      { restart: { fullSpeedAfterMs: 1000 } },
    ]
    const atRest = [AT_REST[0]!, { ...AT_REST[1]!, rssMiB: s(64.1) }]
    const met = Object.fromEntries(goals(rows, { atRest }).map((g) => [g.id, g.met]))
    expect(met).toEqual({
      'qos1-closed': false,
      'full-path-closed': false,
      'qos0-closed': true,
      'p99-2000': false,
      'cpu-2000': false,
      'serial-puback': false,
      'rss-at-rest': false,
      'rss-peak': false,
      'rss-idle1000': false,
      startup: true,
      restart: false,
      storm: null,
    })
  })

  it("judges the serial round trip in the durability group's write mode when the run has it, the fsync figure in a note", () => {
    const DUR = '2 cores, durability (TLS-PSK)'
    const withWrite = [
      ...fullRun(),
      row(DUR, 'serial-q1-64', 'mosquitto-psk', { ackRttP50Ms: s(0.125), ackRttP99Ms: s(0.4) }),
      row(DUR, 'serial-q1-64', 'gateway-psk', { ackRttP50Ms: s(0.9), ackRttP99Ms: s(5) }),
      row(DUR, 'serial-q1-64', 'gateway-psk-write', { ackRttP50Ms: s(0.375), ackRttP99Ms: s(4) }),
    ]
    const judged = byId(goals(withWrite), 'serial-puback')
    expect([judged.gateway, judged.mosquitto, judged.ratio, judged.met]).toEqual([0.375, 0.125, 3, false])
    expect(judged.notes).toEqual(['durability fsync (the default): p50 0.9 ms'])
    expect(judged.p99).toEqual({ gateway: 4, mosquitto: 0.4 })
    // Without the group: the TLS-PSK group's default mode, and a note that says so.
    expect(byId(goals(fullRun()), 'serial-puback').notes).toEqual([
      'measured with durability fsync: the durability group was not in this run',
    ])
  })

  it('a gateway never back at full speed within the 4 s measured does not meet the restart goal', () => {
    const rows = fullRun()
    rows.find((r) => r.load === 'restart-q1-64' && r.setup === 'gateway-psk')!.trials = [
      { restart: { fullSpeedAfterMs: null } },
      { restart: { fullSpeedAfterMs: 500 } },
    ]
    rows.find((r) => r.load === 'restart-q1-64' && r.setup === 'gateway-psk')!.loadSpec = { afterMs: 4000 }
    const list = goals(rows)
    const restart = byId(list, 'restart')
    expect([restart.gateway, restart.met, restart.notes]).toEqual([
      null,
      false,
      ['gateway not back at full speed within 4 s in 1 of 2 trials'],
    ])
    const line = formatGoals(list)
      .split('\n')
      .find((l) => l.startsWith('| first 4 s after a restart'))
    expect(
      line
        ?.split('|')
        .map((c) => c.trim())
        .slice(3, 8),
    ).toEqual(['> 4000', '750', '-', '≤ 500 ms', 'NOT MET'])
  })

  it('a gateway that lost an acknowledged message does not meet a lossless goal, however fast', () => {
    const rows = fullRun()
    rows[1]!.summary.ackedLost = s(0, 0, 3)
    const qos1 = byId(goals(rows), 'qos1-closed')
    expect(qos1.ratio).toBe(1.2)
    expect(qos1.met).toBe(false)
    expect(qos1.notes).toContain('not lossless: 3 acknowledged and lost in a trial')
  })

  it('compares the full path with the Mosquitto row of the same group', () => {
    const fullPath = byId(goals(fullRun()), 'full-path-closed')
    expect([fullPath.gateway, fullPath.mosquitto]).toEqual([2000, 4000])
  })

  it('takes peak memory over every gateway row without idle devices and names where it was', () => {
    const peak = byId(goals(fullRun()), 'rss-peak')
    expect(peak.gateway).toBe(95)
    expect(peak.notes).toEqual(['gateway highest in flood-q1-64, gateway-psk, 2 cores, TLS-PSK'])
    const noFlood = fullRun().filter((r) => !r.load.startsWith('flood'))
    const withoutFlood = byId(goals(noFlood), 'rss-peak')
    expect(withoutFlood.gateway).toBe(61)
    expect(withoutFlood.notes).toContain('no flood load in this run')
  })

  it('pools the start-up of every TLS-PSK trial without idle devices', () => {
    const startup = byId(goals(fullRun()), 'startup')
    // 200, 240, 250, 900: the idle1000 trial's 5000 ms is left out.
    expect(startup.gateway).toBe(245)
    expect(startup.notes).toEqual(['gateway over 4 trials, 200-900 ms'])
  })

  it('does not judge what the run did not measure, and says why', () => {
    const list = goals([], {})
    for (const g of list) expect(g.met, g.id).toBeNull()
    expect(byId(list, 'qos1-closed').notes).toEqual(['no gateway figure', 'no Mosquitto figure'])
    expect(byId(list, 'rss-at-rest').notes).toEqual(['no gateway figure'])
    expect(byId(list, 'full-path-closed').notes).toEqual([
      'not in this run (the full-path group or its sealed setup was left out)',
    ])
    expect(byId(list, 'restart').notes).toEqual(['not in this run (restart-q1-64 left out)'])
    expect(byId(list, 'storm').notes).toEqual(['measured by bench/storm.mjs, not by this run'])
  })

  it('does not judge the idle-device goal with fewer devices than it names (--quick)', () => {
    const rows = fullRun().map((r) => (r.load.startsWith('idle1000') ? { ...r, loadSpec: { idle: 250 } } : r))
    const idle = byId(goals(rows), 'rss-idle1000')
    expect(idle.gateway).toBe(120)
    expect(idle.met).toBeNull()
    expect(idle.notes).toEqual([
      'not judged: 250 idle devices in this run (--quick), the goal is for 1000',
      'RSS once the idle devices were connected, before the load: 100 MiB',
    ])
  })

  it('does not judge the durable-queue goal on a run with the memory queue', () => {
    const qos1 = byId(goals(fullRun(), { gatewayQueue: 'memory' }), 'qos1-closed')
    expect(qos1.met).toBeNull()
    expect(qos1.notes).toEqual([
      'not judged: the goal asks for the durable queue, this run used --gateway-queue memory',
    ])
  })

  it('judges the reconnect storm when its figures are given', () => {
    const storm = byId(
      goals([], {
        storm: {
          what: 'CONNACK p99 in a storm',
          unit: 'ms',
          gateway: 30,
          mosquitto: 10,
          goal: { kind: 'ratio', op: '<=', value: 2 },
        },
      }),
      'storm',
    )
    expect([storm.ratio, storm.met, storm.goal.text]).toEqual([3, false, '≤ 2.0× Mosquitto'])
  })

  it("takes the storm's line from bench/storm.mjs's report: the pepper10 gateway against Mosquitto, scrypt14 in the notes", () => {
    const restart = (lastPubackMs: number, failed = 0, p99Ms = 5) => ({
      restart: { lastPubackMs, password: { failed }, psk: { failed: 0 }, steady: { p99Ms } },
    })
    const entry = stormEntry({
      settings: { passwordDevices: 1000, pskDevices: 1000 },
      results: [
        { variant: { name: 'scrypt14' }, ...restart(24_000) },
        { variant: { name: 'pepper10' }, ...restart(7_000, 0, 560) },
        { name: 'mosquitto', ...restart(2_600, 3) },
      ],
    })
    expect([entry.gateway, entry.mosquitto]).toEqual([7_000, 2_600])
    expect(entry.notes).toEqual([
      '$scrypt$ ln=14 (the default hash): last PUBACK 24000 ms',
      "steady devices' p99 PUBACK during the storm: gateway 560 ms, Mosquitto 5 ms",
      'devices that never published again: gateway 0, Mosquitto 3',
    ])
    const line = byId(goals([], { storm: entry }), 'storm')
    expect([line.met, line.goal.text]).toEqual([true, '≤ 10000 ms'])
    expect(byId(goals([], { storm: stormEntry({ results: [] }) }), 'storm').met).toBeNull()
  })

  it('judge: ratio and absolute goals, either direction, null without figures', () => {
    expect(judge({ kind: 'ratio', op: '>=', value: 1 }, 10, 10)).toBe(true)
    expect(judge({ kind: 'ratio', op: '<=', value: 2 }, 21, 10)).toBe(false)
    expect(judge({ kind: 'absolute', op: '<=', value: 64 }, 64, null)).toBe(true)
    expect(judge({ kind: 'ratio', op: '<=', value: 2 }, 1, 0)).toBeNull()
    expect(judge({ kind: 'absolute', op: '<=', value: 64 }, null, 3)).toBeNull()
  })

  it('prints each goal with both figures, the ratio, the goal and the verdict', () => {
    const text = formatGoals(goals(fullRun(), { atRest: AT_REST }))
    const line = (start: string) => text.split('\n').find((l) => l.startsWith(`| ${start}`))
    expect(
      line('QoS 1 closed loop')
        ?.split('|')
        .map((c) => c.trim()),
    ).toEqual([
      '',
      'QoS 1 closed loop, lossless (closed-q1-64, TLS-PSK, disk queue, signed)',
      'msg/s',
      '6000',
      '5000',
      '1.2×',
      '≥ 1.0× Mosquitto',
      'met',
      '-',
      '',
    ])
    expect(
      line('p99 latency')
        ?.split('|')
        .map((c) => c.trim())
        .slice(3, 8),
    ).toEqual(['20 (p50 2)', '10 (p50 1)', '2×', '≤ 2.0× Mosquitto', 'met'])
    expect(
      line('CONNACK for a password device')
        ?.split('|')
        .map((c) => c.trim())
        .slice(6, 9),
    ).toEqual(['see bench/storm.mjs', 'not judged', 'measured by bench/storm.mjs, not by this run'])
    expect(text.split('\n').at(-1)).toBe('11 of 11 judged goals met; 1 not judged (see notes)')
  })
})
