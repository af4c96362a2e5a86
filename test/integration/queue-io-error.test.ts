import { execFile } from 'node:child_process'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connectDevice, publishOutcome } from './clients.js'
import { PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const run = promisify(execFile)
const PAYLOAD = Buffer.alloc(8 * 1024, 0x61)
const TOPIC = `devices/${PASSWORD_DEVICE.id}/disk`
const ATTEMPTS = 20

/**
 * A disk that fails under the queue, for real: the queue folder is a 64 KiB tmpfs
 * (mounted as root), far below `cloud.queue.quotaBytes`, so the quota never refuses
 * and the write gets ENOSPC. The failure is named as an I/O error with its errno,
 * never as "queue full", and a QoS 1 message is not acknowledged.
 */
describe('a disk error under the queue is an I/O error, not "queue full"', () => {
  let stack: Stack
  let queueDir: string
  let mounted = false
  let device: MqttClient | undefined

  const connect = () =>
    connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })

  beforeAll(async () => {
    stack = await Stack.start()
    await stack.waitLinkUp()
    queueDir = join(stack.dir, 'state', 'queue')
    await stack.restartGateway(async () => {
      await run('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', queueDir])
      mounted = true
      // Everything stays queued: space is not given back while the test fills the disk.
      await stack.cloud.stop()
    })
  })

  afterAll(async () => {
    device?.end(true)
    await stack?.gateway.close().catch(() => undefined)
    if (mounted) await run('umount', [queueDir])
    await stack?.stop()
  })

  it('QoS 1: no PUBACK, the connection closes; counted as io_error and logged as uplink_queue_io_error with ENOSPC', async () => {
    device = await connect()
    let acked = 0
    let outcome: 'acked' | 'closed' = 'acked'
    while (outcome === 'acked' && acked < ATTEMPTS) {
      outcome = await publishOutcome(device, TOPIC, PAYLOAD)
      if (outcome === 'acked') acked++
    }
    expect(outcome).toBe('closed')
    expect(acked).toBeGreaterThan(0)
    device.end(true)
    device = undefined
    const metrics = stack.gateway.metrics
    expect(metrics.get('uplink_dropped_total{reason="io_error",qos="1"}')).toBe(1)
    expect(metrics.get('uplink_dropped_total{reason="queue_full",qos="1"}')).toBe(0)
    expect(stack.logs.events('uplink_queue_full')).toEqual([])
    expect(stack.logs.events('uplink_queue_io_error')).toEqual([
      expect.objectContaining({
        level: 50,
        event: 'uplink_queue_io_error',
        device: PASSWORD_DEVICE.id,
        topic: TOPIC,
        qos: 1,
        code: 'ENOSPC',
        errno: -28,
        msg: 'uplink queue I/O error (ENOSPC): QoS 1 message refused, connection closed so the device keeps and resends it',
      }),
    ])
    await waitUntil(
      () => stack.logs.records.some((r) => r.reason === 'uplink_io_error' && r.device === PASSWORD_DEVICE.id),
      5_000,
      'the disconnect line',
    )
    // The queue holds exactly the acknowledged messages: the failed write was cut back.
    expect(stack.gateway.bridge.queue.size).toBe(acked)
  })

  it('QoS 0: not forwarded, the connection stays; counted as io_error', async () => {
    device = await connect()
    expect(await publishOutcome(device, TOPIC, PAYLOAD, { qos: 0 })).toBe('acked')
    await waitUntil(
      () => stack.gateway.metrics.get('uplink_dropped_total{reason="io_error",qos="0"}') === 1,
      5_000,
      'the QoS 0 drop',
    )
    expect(device.connected).toBe(true)
    expect(stack.logs.events('uplink_queue_io_error').map((e) => [e.qos, e.code])).toEqual([
      [1, 'ENOSPC'],
      [0, 'ENOSPC'],
    ])
  })
})
