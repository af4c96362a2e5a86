import { execFile } from 'node:child_process'
import { readdir, readFile, readlink, stat, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { FileQueue } from '../../bridge/queue/file-queue.js'
import { CloudConsumer, summaryLine } from '../helpers/cloud-consumer.js'
import { connectDevice, publishOutcome } from '../integration/clients.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from '../integration/harness.js'
import { expectLossless } from './expect-lossless.js'

const run = promisify(execFile)
const DISK = 1024 * 1024
const PAYLOAD = 'd'.repeat(3000)
const TOPIC = `devices/${PASSWORD_DEVICE.id}/disk`
const MAX_MESSAGES = 1000

const payloadOf = (name: string) => `${name}:${PAYLOAD}`

/**
 * The whole state folder on a 1 MB filesystem (a tmpfs, mounted as root), the queue's
 * quota left at its 256 MiB default, and the cloud down: QoS 1 messages are held until
 * the disk is full, then refused (ENOSPC: no PUBACK, connection closed) and status.json
 * can no longer be written (logged). When the cloud returns, the backlog drains and the
 * space comes back by itself (segments a sixteenth of the disk; the acknowledged active
 * segment is replaced), so new QoS 1 messages are accepted again and status.json is
 * written again, with nobody freeing space by hand; nothing acknowledged is lost.
 */
describe('a full disk recovers by itself once the backlog drains', () => {
  let stack: Stack
  let consumer: CloudConsumer
  let stateDir: string
  let mounted = false
  let device: MqttClient | undefined
  const acknowledged = new Set<string>()
  let sent = 0

  const connect = () =>
    connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
  const queue = () => stack.gateway.bridge.queue as FileQueue
  /** The state folder's files, and the files under it this process holds open though deleted. */
  const whatHoldsSpace = async () => {
    const files = (await readdir(stateDir, { recursive: true })).sort()
    // Files may go while this looks (segments deleted in the background).
    const sizes = await Promise.all(
      files.map(
        async (f) => `${f} ${(await stat(join(stateDir, f)).catch(() => undefined))?.size ?? 'gone'}`,
      ),
    )
    const deleted = []
    for (const fd of await readdir('/proc/self/fd')) {
      const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '')
      if (target.startsWith(stateDir) && target.endsWith('(deleted)')) deleted.push(target)
    }
    return `files: ${sizes.join(', ')}; open but deleted: ${deleted.length ? deleted.join(', ') : 'none'}`
  }
  const freeBytes = async () => {
    const fs = await statfs(stateDir)
    return fs.bavail * fs.bsize
  }

  beforeAll(async () => {
    stack = await Stack.start({ persistence: true, cloudConfig: ['max_queued_messages 0'] })
    stateDir = join(stack.dir, 'state')
    await stack.restartGateway(async () => {
      await run('mount', ['-t', 'tmpfs', '-o', `size=${DISK},mode=0700`, 'tmpfs', stateDir])
      mounted = true
    })
    consumer = await CloudConsumer.start({
      ...stack.cloudClient(),
      topic: `${CLOUD_PREFIX}#`,
      clientId: 'disk-full-consumer',
    })
    await stack.waitLinkUp()
    await stack.cloud.stop()
  })

  afterAll(async () => {
    device?.end(true)
    await consumer?.stop()
    await stack?.gateway.close().catch(() => undefined)
    if (mounted) await run('umount', [stateDir])
    await stack?.stop()
  })

  it('holds QoS 1 until the disk is full, then refuses it (ENOSPC) and logs that status.json is not written', async () => {
    expect(queue().segmentBytes).toBe(DISK / 16)
    expect(stack.logs.records.find((r) => r.quotaBytes !== undefined && r.level === 40)).toMatchObject({
      quotaBytes: 268_435_456,
      diskBytes: DISK,
      msg: `cloud.queue.quotaBytes (268435456) is larger than the filesystem of the state folder (${DISK} bytes): the disk fills before the quota, and messages are then refused as I/O errors (ENOSPC) until the backlog drains`,
    })
    device = await connect()
    let outcome: 'acked' | 'closed' = 'acked'
    while (outcome === 'acked') {
      const payload = payloadOf(`held-${sent++}`)
      outcome = await publishOutcome(device, TOPIC, payload)
      if (outcome === 'acked') acknowledged.add(payload)
      expect(sent, 'the disk never filled').toBeLessThan(MAX_MESSAGES)
    }
    device.end(true)
    device = undefined
    expect(acknowledged.size).toBeGreaterThan(200)
    expect(stack.gateway.metrics.get('uplink_dropped_total{reason="io_error",qos="1"}')).toBe(1)
    expect(stack.logs.events('uplink_queue_io_error')).toEqual([
      expect.objectContaining({ code: 'ENOSPC', qos: 1 }),
    ])
    expect(queue().size).toBe(acknowledged.size)
    const line = await stack.logs.waitFor((r) => r.module === 'status' && r.level === 40, 10_000)
    expect(line).toMatchObject({ code: 'ENOSPC', path: join(stateDir, 'status.json'), retryInMs: 2000 })
    expect(line.msg).toBe(
      'status file not written (ENOSPC): `edge-gateway status` shows stale data; trying again every 2 s',
    )
  })

  it('when the cloud returns the backlog drains, the space comes back, and QoS 1 is accepted again by itself', async () => {
    const fullFree = await freeBytes()
    await stack.cloud.restart()
    await waitUntil(() => queue().size === 0, 60_000, 'queue drained')
    // Every segment is deleted, the active one too once it is all acknowledged: only a fresh one is left.
    await waitUntil(() => queue().stats().bytes < DISK / 16, 10_000, 'queue space returned')
    const deadline = Date.now() + 10_000
    while ((await freeBytes()) < DISK / 2 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50))
    const free = await freeBytes()
    // What holds the space is looked up only when it is not back (the listing is for the failure message).
    if (free <= DISK / 2)
      expect.fail(`free ${free} of ${DISK} bytes after the drain; ${await whatHoldsSpace()}`)

    device = await connect()
    for (let n = 0; n < 20; n++) {
      const payload = payloadOf(`after-${n}`)
      sent++
      expect(await publishOutcome(device, TOPIC, payload)).toBe('acked')
      acknowledged.add(payload)
    }
    await device.endAsync()
    device = undefined
    await stack.logs.waitFor(
      (r) => r.module === 'status' && r.level === 30 && String(r.msg).startsWith('status file written again'),
      10_000,
    )
    const status = JSON.parse(await readFile(join(stateDir, 'status.json'), 'utf8')) as { updatedAt: string }
    expect(Date.now() - Date.parse(status.updatedAt)).toBeLessThan(10_000)

    const missing = await consumer.waitForAll(acknowledged, 30_000)
    const t = consumer.tally(sent, acknowledged, (p) => p.endsWith(PAYLOAD))
    console.log(
      summaryLine('state folder on a 1 MB tmpfs, cloud down then back', t, {
        'free when full': fullFree,
        'free after drain': free,
        'segments replaced when acknowledged': queue().diagnostics().reclaims,
      }),
    )
    expect(missing).toBe(0)
    expectLossless(t)
  })
})
