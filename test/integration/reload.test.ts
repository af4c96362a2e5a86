import { readFile, writeFile } from 'node:fs/promises'
import type { MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { loadConfig } from '../../config/index.js'
import { hashPassword } from '../../gateway/index.js'
import { collect, connectDevice, publishOutcome, sleep, subscribeGranted } from './clients.js'
import { Stack, waitUntil } from './harness.js'

const PASSWORD = 'reload-test-password'

describe('reloading devices and policies while devices are connected', () => {
  let stack: Stack
  const open: MqttClient[] = []

  beforeAll(async () => {
    const passwordHash = await hashPassword(PASSWORD)
    stack = await Stack.start({
      policies: {
        rules: [
          { name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' },
          { name: 'alerts-read', who: 'everyone', topic: 'alerts/#', action: 'subscribe' },
          { name: 'alerts-write', who: { device: 'writer' }, topic: 'alerts/#', action: 'publish' },
        ],
      },
      devices: [
        { id: 'writer', username: 'writer', passwordHash },
        { id: 'reader', username: 'reader', passwordHash },
        { id: 'leaver', username: 'leaver', passwordHash },
      ],
    })
  })

  afterAll(async () => {
    await Promise.all(open.map((c) => c.endAsync(true).catch(() => undefined)))
    await stack?.stop()
  })

  async function device(username: string): Promise<MqttClient> {
    const client = await connectDevice(stack.port('tcp'), {
      username,
      password: PASSWORD,
      clientId: username,
    })
    open.push(client)
    return client
  }

  async function editConfig(edit: (config: Record<string, unknown>) => void): Promise<void> {
    const config = parse(await readFile(stack.configFile, 'utf8')) as Record<string, unknown>
    edit(config)
    await writeFile(stack.configFile, stringify(config), { mode: 0o600 })
  }

  it('applies a new policy without dropping connections; a now-forbidden subscription stops receiving', async () => {
    const writer = await device('writer')
    const reader = await device('reader')
    const leaver = await device('leaver')
    const got = collect(reader)
    expect(
      await subscribeGranted(reader, { 'alerts/#': { qos: 1 }, 'devices/reader/#': { qos: 1 } }),
    ).toEqual([1, 1])
    expect(await publishOutcome(writer, 'alerts/fire', 'before')).toBe('acked')
    await waitUntil(() => got.length === 1, 5000, 'first alert')

    const closes = { writer: 0, reader: 0 }
    writer.on('close', () => closes.writer++)
    reader.on('close', () => closes.reader++)
    const leaverClosed = new Promise<void>((resolve) => leaver.once('close', () => resolve()))

    await editConfig((config) => {
      const policies = config.policies as { rules: Array<{ name: string }> }
      policies.rules = policies.rules.filter((r) => r.name !== 'alerts-read')
      const devices = config.devices as Array<{ id: string; username?: string }>
      const writerEntry = devices.find((d) => d.id === 'writer')!
      config.devices = [
        ...devices.filter((d) => d.id !== 'leaver'),
        { ...writerEntry, id: 'newcomer', username: 'newcomer' },
      ]
    })
    const report = await stack.gateway.reload(await loadConfig(stack.configFile))
    expect(report).toEqual({
      devicesAdded: ['newcomer'],
      devicesRemoved: ['leaver'],
      devices: 5,
      clientsDisconnected: 1,
      subscriptionsRevoked: 1,
      clientsKept: 2,
      // No PSK device and no `tls` listener here.
      pskConnectionsClosed: 0,
      certificates: [],
      certificateErrors: [],
      // Devices and policies only: nothing waits for a restart.
      restartNeeded: [],
    })

    // The removed device is disconnected; the others are not.
    await leaverClosed
    expect(await publishOutcome(writer, 'alerts/fire', 'after')).toBe('acked')
    expect(await publishOutcome(writer, 'devices/writer/still', 'ok')).toBe('acked')
    await sleep(300)
    expect(got.map((m) => m.payload)).toEqual(['before'])
    expect(closes).toEqual({ writer: 0, reader: 0 })
    expect(reader.connected).toBe(true)
    await stack.logs.waitFor(
      (r) => r.event === 'subscription_revoked' && r.device === 'reader' && r.topic === 'alerts/#',
    )
    await stack.logs.waitFor((r) => r.event === 'device_removed' && r.device === 'leaver')
    // The disconnect itself says why, at warn.
    const closed = await stack.logs.waitFor(
      (r) => r.device === 'leaver' && String(r.msg).startsWith('device disconnected'),
    )
    expect(closed).toMatchObject({
      level: 40,
      reason: 'device_removed',
      msg: 'device disconnected by the gateway: the device is no longer configured',
    })
    // The added device connects.
    const newcomer = await device('newcomer')
    expect(newcomer.connected).toBe(true)
    // A new SUBSCRIBE to the forbidden filter is refused.
    expect(await subscribeGranted(reader, { 'alerts/#': { qos: 1 } })).toEqual([128])
  })

  it('a broken policy is refused with a clear error and the old one stays in force', async () => {
    const before = await readFile(stack.configFile, 'utf8')
    await editConfig((config) => {
      const policies = config.policies as { rules: Array<Record<string, unknown>> }
      policies.rules.push({ who: 'everyone', topic: 'bad/#/filter', action: 'both' })
    })
    await expect(async () => stack.gateway.reload(await loadConfig(stack.configFile))).rejects.toThrow(
      /rules\[\d+\].*bad\/#\/filter/,
    )
    await writeFile(stack.configFile, before, { mode: 0o600 })
    const writer = await device('writer')
    expect(await publishOutcome(writer, 'alerts/again', 'x')).toBe('acked')
    expect(await publishOutcome(writer, 'bad/anything/filter', 'x')).toBe('closed')
  })
})
