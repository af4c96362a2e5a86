import { readdir, readFile, truncate, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { decodeMessage, frameAt, recordSeq } from '../../bridge/queue/record.js'
import { SEGMENT_HEADER_BYTES } from '../../bridge/queue/segment.js'
import { CloudConsumer, summaryLine } from '../helpers/cloud-consumer.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from '../integration/harness.js'
import { expectLossless } from './expect-lossless.js'

const COUNT = 40
/** The record damaged in the middle of the segment. */
const MIDDLE = 17

interface RecordAt {
  start: number
  end: number
  seq: number
  payload: string
}

/** The records of a segment file, in order, with where each lies. */
function recordsOf(buf: Buffer): RecordAt[] {
  const out: RecordAt[] = []
  let pos = SEGMENT_HEADER_BYTES
  while (pos < buf.length) {
    const frame = frameAt(buf, pos)
    if (frame.status !== 'ok') throw new Error(`unexpected ${frame.status} record at byte ${pos}`)
    const payload = decodeMessage(buf, pos, frame.end).payload.toString()
    out.push({ start: pos, end: frame.end, seq: recordSeq(buf, pos), payload })
    pos = frame.end
  }
  return out
}

/**
 * A queue damaged on disk while the gateway was stopped: the last record torn
 * (power loss mid-write), or a record in the middle corrupted (bit rot). The
 * gateway starts anyway, its `uplink queue opened` log line says what it cut
 * or skipped, and it delivers exactly the rest to the cloud.
 */
describe('a damaged queue file', () => {
  let stack: Stack | undefined
  let consumer: CloudConsumer | undefined

  afterEach(async () => {
    await consumer?.stop()
    await stack?.stop()
  })

  /**
   * Holds COUNT acknowledged messages in the queue while the cloud is down,
   * restarts the gateway with `damage` applied to the segment that holds them,
   * brings the cloud back; returns the recovery log record and what was sent.
   */
  async function damagedRestart(
    label: string,
    damage: (file: string, records: RecordAt[]) => Promise<void>,
  ): Promise<{ opened: Record<string, unknown>; acknowledged: Set<string> }> {
    stack = await Stack.start({ persistence: true })
    consumer = await CloudConsumer.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      clientId: `${label}-consumer`,
    })
    await stack.waitLinkUp()
    await stack.cloud.stop()
    const device = await connectDevice()
    const acknowledged = new Set<string>()
    for (let i = 0; i < COUNT; i++) {
      const payload = `${label}-${i}`
      await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/${label}`, payload, { qos: 1 })
      acknowledged.add(payload)
    }
    await device.endAsync()
    expect(stack.gateway.bridge.queue.size).toBe(COUNT)

    const queueDir = join(stack.dir, 'state', 'queue')
    await stack.restartGateway(async () => {
      const files = (await readdir(queueDir)).filter((f) => f.endsWith('.log')).sort()
      const held: Array<{ file: string; records: RecordAt[] }> = []
      for (const f of files) {
        const records = recordsOf(await readFile(join(queueDir, f)))
        if (records.length > 0) held.push({ file: join(queueDir, f), records })
      }
      expect(held).toHaveLength(1)
      expect(held[0]!.records.map((r) => r.payload)).toEqual([...acknowledged])
      await damage(held[0]!.file, held[0]!.records)
    })
    const opened = stack.logs.records.filter((r) => String(r.msg).startsWith('uplink queue opened')).at(-1)
    if (!opened) throw new Error('no "uplink queue opened" log record after the restart')
    await stack.cloud.restart()
    return { opened, acknowledged }
  }

  const connectDevice = () =>
    mqtt.connectAsync({
      host: '127.0.0.1',
      port: stack!.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })

  async function expectDelivered(label: string, acknowledged: Set<string>, expected: string[]) {
    const missing = await consumer!.waitForAll(new Set(expected), 30_000)
    await waitUntil(() => stack!.gateway.bridge.queue.size === 0, 30_000, 'queue drained')
    const t = consumer!.tally(COUNT, acknowledged, (p) => p.startsWith(`${label}-`))
    console.log(
      summaryLine(`queue with a ${label} record`, t, { 'all of them the damaged record': t.lost.join(' ') }),
    )
    expect(missing).toBe(0)
    // Exactly the records the damage spared, each once after dedupe, nothing else.
    expect([...consumer!.payloads()].sort()).toEqual([...expected].sort())
    expectLossless({ ...t, lost: t.lost.filter((p) => expected.includes(p)) })
  }

  it('a torn last record is cut; the gateway starts, says so, and delivers the rest', async () => {
    let cut = 0
    let lost = ''
    let tornSeq = 0
    const { opened, acknowledged } = await damagedRestart('torn', async (file, records) => {
      const last = records.at(-1)!
      const keep = last.start + Math.floor((last.end - last.start) / 2)
      // What is left of the record is what recovery must cut.
      cut = keep - last.start
      lost = last.payload
      tornSeq = last.seq
      await truncate(file, keep)
    })
    expect(opened).toMatchObject({
      level: 40,
      module: 'queue',
      records: COUNT - 1,
      held: COUNT - 1,
      tornBytes: cut,
      corrupted: 0,
    })
    expect(opened.details).toEqual([
      expect.stringMatching(new RegExp(`torn or damaged tail of ${cut} bytes`)),
    ])
    await expectDelivered(
      'torn',
      acknowledged,
      [...acknowledged].filter((p) => p !== lost),
    )
    // The torn record's number may have reached the cloud before the damage: it is never given out again.
    const device = await connectDevice()
    await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/torn`, 'after-recovery', { qos: 1 })
    await device.endAsync()
    expect(await consumer!.waitForAll(new Set(['after-recovery']), 15_000)).toBe(0)
    const after = consumer!.records.find((r) => r.payload === 'after-recovery')
    expect(Number(after?.seq)).toBeGreaterThan(tornSeq)
  })

  it('a corrupted middle record is skipped; the gateway starts, says so, and delivers the rest', async () => {
    let damaged: RecordAt | undefined
    const { opened, acknowledged } = await damagedRestart('corrupted', async (file, records) => {
      damaged = records[MIDDLE]!
      const buf = await readFile(file)
      // Flip the bits of the record's last payload byte: its checksum no longer matches.
      buf[damaged.end - 1] = buf[damaged.end - 1]! ^ 0xff
      await writeFile(file, buf)
    })
    expect(damaged?.payload).toBe(`corrupted-${MIDDLE}`)
    expect(opened).toMatchObject({
      level: 40,
      module: 'queue',
      records: COUNT - 1,
      held: COUNT - 1,
      tornBytes: 0,
      corrupted: 1,
    })
    expect(opened.details).toEqual([
      expect.stringContaining(
        `bytes ${damaged!.start}..${damaged!.end} (${damaged!.end - damaged!.start} bytes) damaged (checksum mismatch): skipped`,
      ),
    ])
    await expectDelivered(
      'corrupted',
      acknowledged,
      [...acknowledged].filter((p) => p !== damaged!.payload),
    )
  })
})
