import { mkdir, readdir, rename, rmdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { CloudConsumer } from '../helpers/cloud-consumer.js'
import { connectDevice, publishOutcome } from './clients.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const COUNT = 40
/** The smallest quota: 4 KiB segments, so COUNT messages take several. */
const QUOTA = 65_536
const PAYLOAD = 'r'.repeat(200)
const RESTARTS = 'uplink_pipeline_restarts_total'

/**
 * A queue read error under a running gateway: the oldest segment file, which holds
 * acknowledged messages, is replaced by a folder (so the reader's read gets EISDIR,
 * a real I/O error), then the cloud comes back and the bridge reads its backlog.
 */
describe('a queue read error does not stop forwarding for good', () => {
  let stack: Stack | undefined
  let consumer: CloudConsumer | undefined
  let device: MqttClient | undefined

  afterEach(async () => {
    device?.end(true)
    await consumer?.stop()
    await stack?.stop()
    stack = consumer = device = undefined
  })

  /** COUNT acknowledged messages held while the cloud is down; the oldest segment replaced by a folder. */
  async function heldWithUnreadableSegment(
    label: string,
  ): Promise<{ acknowledged: Set<string>; restore: () => Promise<void> }> {
    stack = await Stack.start({ persistence: true, cloud: { queue: { quotaBytes: QUOTA } } })
    consumer = await CloudConsumer.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      clientId: `${label}-consumer`,
    })
    await stack.waitLinkUp()
    await stack.cloud.stop()
    device = await connect(stack)
    const acknowledged = new Set<string>()
    for (let i = 0; i < COUNT; i++) {
      const payload = `${label}-${i}:${PAYLOAD}`
      expect(await publishOutcome(device, `devices/${PASSWORD_DEVICE.id}/${label}`, payload)).toBe('acked')
      acknowledged.add(payload)
    }
    const queueDir = join(stack.dir, 'state', 'queue')
    const segments = (await readdir(queueDir)).filter((f) => f.endsWith('.log')).sort()
    expect(segments.length).toBeGreaterThan(2)
    const oldest = join(queueDir, segments[0]!)
    await rename(oldest, `${oldest}.aside`)
    await mkdir(oldest)
    return {
      acknowledged,
      restore: async () => {
        await rmdir(oldest)
        await rename(`${oldest}.aside`, oldest)
      },
    }
  }

  const connect = (s: Stack) =>
    connectDevice(s.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })

  const restartLines = () =>
    stack!.logs.records.filter((r) => String(r.msg).startsWith('uplink pipeline failed'))

  it('a transient read error: the pipeline is restarted (logged, counted) and delivers every acknowledged message', async () => {
    const { acknowledged, restore } = await heldWithUnreadableSegment('transient')
    await stack!.cloud.restart()
    await waitUntil(() => restartLines().length >= 1, 15_000, 'the first restart')
    const first = restartLines()[0]!
    expect(first).toMatchObject({ level: 50, module: 'bridge', attempt: 1, of: 5, retryInMs: 500 })
    expect(first.msg).toMatch(
      /^uplink pipeline failed \(Cannot read the queue folder .+ \[QUEUE_ERR_IO\]: EISDIR: illegal operation on a directory, read\); restarting it in 500 ms \(restart 1 of 5\)$/,
    )
    await restore()
    expect(await consumer!.waitForAll(acknowledged, 30_000)).toBe(0)
    await waitUntil(() => stack!.gateway.bridge.queue.size === 0, 15_000, 'queue drained')
    expect(stack!.gateway.bridge.status().forwarding).toEqual({ status: 'running' })
    expect(stack!.gateway.metrics.get(RESTARTS)).toBe(restartLines().length)
    expect(stack!.gateway.metrics.get('uplink_forwarding_up')).toBe(1)
    expect(stack!.logs.records.filter((r) => r.level === 60)).toEqual([])
  })

  it('a read error that persists: after 5 restarts forwarding is given up, new QoS 1 is refused, the gateway reports failure; after a restart nothing acknowledged is lost', async () => {
    const { acknowledged, restore } = await heldWithUnreadableSegment('persistent')
    await stack!.cloud.restart()
    const failed = await Promise.race([
      stack!.gateway.failed,
      new Promise<undefined>((r) => setTimeout(r, 40_000, undefined)),
    ])
    expect(failed?.message).toMatch(/^Cannot read the queue folder /)
    expect(restartLines().map((r) => [r.attempt, r.retryInMs])).toEqual([
      [1, 500],
      [2, 1000],
      [3, 2000],
      [4, 4000],
      [5, 8000],
    ])
    const fatal = stack!.logs.records.filter((r) => r.level === 60)
    expect(fatal.map((r) => r.msg)).toEqual([
      expect.stringMatching(
        /^uplink forwarding stopped: the pipeline failed again after 5 restarts \(Cannot read the queue folder .*EISDIR.*\); new messages for the cloud are refused and the gateway stops so that its supervisor restarts it$/,
      ),
    ])
    expect(stack!.gateway.bridge.status().forwarding).toMatchObject({ status: 'stopped' })
    expect(stack!.gateway.metrics.get('uplink_forwarding_up')).toBe(0)

    // Fail closed: a QoS 1 message is no longer acknowledged (nobody would forward it); counted and logged.
    expect(await publishOutcome(device!, `devices/${PASSWORD_DEVICE.id}/persistent`, 'refused')).toBe(
      'closed',
    )
    expect(stack!.gateway.metrics.get('uplink_dropped_total{reason="forwarding_stopped",qos="1"}')).toBe(1)
    expect(stack!.logs.events('uplink_forwarding_stopped')).toEqual([
      expect.objectContaining({
        level: 50,
        code: 'BRIDGE_ERR_FORWARDING_STOPPED',
        device: PASSWORD_DEVICE.id,
        qos: 1,
      }),
    ])
    expect(stack!.gateway.bridge.queue.size).toBe(COUNT)

    // What the supervisor does: a restart (the folder repaired): every acknowledged message arrives.
    await stack!.restartGateway(restore)
    expect(await consumer!.waitForAll(acknowledged, 30_000)).toBe(0)
    await waitUntil(() => stack!.gateway.bridge.queue.size === 0, 15_000, 'queue drained')
    expect([...consumer!.payloads()].filter((p) => p === 'refused')).toEqual([])
  })
})
