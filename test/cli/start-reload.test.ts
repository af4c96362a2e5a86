import type { ChildProcess } from 'node:child_process'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { freePort } from '../helpers/ports.js'
import { signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice, subscribeGranted } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { absentCloud, startGatewayCli } from './run-cli.js'

/** `edge-gateway start` reloads devices and policies when the config file changes and on SIGHUP. */
describe('edge-gateway start: reload on file change and SIGHUP', () => {
  let dir: string
  let configFile: string
  let config: Record<string, unknown>
  let port: number
  let logs: Array<Record<string, unknown>> = []
  let child: ChildProcess

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-reload-')
    port = await freePort()
    config = {
      gateway: { id: 'gw-reload' },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port }] },
      devices: [{ id: 'dev', username: 'dev', passwordHash: await hashPassword('reload-password') }],
      policies: {
        rules: [
          { name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' },
          { name: 'news', who: 'everyone', topic: 'news/#', action: 'subscribe' },
        ],
      },
      // Nothing listens there: the LAN side runs and reloads without the cloud.
      cloud: await absentCloud(dir),
    }
    configFile = join(dir, 'gateway.yaml')
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    ;({ child, logs } = await startGatewayCli(configFile))
  })

  afterAll(async () => {
    if (child) await terminate(child)
    await removeDir(dir)
  })

  const isReload = (l: Record<string, unknown>) => String(l.msg).startsWith('reloaded devices and policies: ')
  const rules = () => (config.policies as { rules: Array<{ name: string }> }).rules

  it('a changed policy file is applied to a connected device without disconnecting it', async () => {
    const client = await connectDevice(port, {
      username: 'dev',
      password: 'reload-password',
      clientId: 'dev',
    })
    let closed = false
    client.on('close', () => {
      closed = true
    })
    expect(await subscribeGranted(client, { 'news/today': { qos: 0 } })).toEqual([0])
    ;(config.policies as { rules: unknown[] }).rules = rules().filter((r) => r.name !== 'news')
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    await waitUntil(() => logs.some((l) => isReload(l)), 10_000, 'reload on change')
    expect(await subscribeGranted(client, { 'news/today': { qos: 0 } })).toEqual([128])
    expect(logs.find((l) => l.event === 'subscription_revoked')).toMatchObject({
      device: 'dev',
      topic: 'news/today',
    })
    expect(closed).toBe(false)
    await client.endAsync()
  })

  it('a broken file is refused and the old policy stays; SIGHUP reloads the fixed file', async () => {
    const good = await readFile(configFile, 'utf8')
    await writeFile(configFile, `${good}\n  - this is: [not valid\n`, { mode: 0o600 })
    await waitUntil(
      () => logs.some((l) => l.msg?.toString().startsWith('reload refused')),
      10_000,
      'refused reload',
    )
    const refused = logs.find((l) => l.msg?.toString().startsWith('reload refused'))!
    expect(refused.level).toBe(50)
    expect(String(refused.err)).toContain(configFile)

    const client = await connectDevice(port, {
      username: 'dev',
      password: 'reload-password',
      clientId: 'dev',
    })
    expect(await subscribeGranted(client, { 'devices/dev/#': { qos: 0 } })).toEqual([0])

    ;(config.policies as { rules: unknown[] }).rules = [
      ...rules(),
      { name: 'news-again', who: 'everyone', topic: 'news/#', action: 'subscribe' },
    ]
    // Write without triggering the watcher's debounce first, then ask by signal.
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    const reloadsBefore = logs.filter((l) => isReload(l)).length
    signalPid(child.pid, 'SIGHUP')
    await waitUntil(() => logs.filter((l) => isReload(l)).length > reloadsBefore, 10_000, 'reload on SIGHUP')
    expect(await subscribeGranted(client, { 'news/today': { qos: 0 } })).toEqual([0])
    await client.endAsync()
  })

  it('the reload log line names the devices added and removed', async () => {
    const devices = config.devices as Array<Record<string, unknown>>
    config.devices = [
      { ...devices[0], id: 'dev2', username: 'dev2' },
      { ...devices[0], id: 'dev3', username: 'dev3' },
    ]
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    const reloadsBefore = logs.filter(isReload).length
    signalPid(child.pid, 'SIGHUP')
    // The write may trigger the file watcher too; one of the reloads applies the change.
    const applied = () =>
      logs
        .filter(isReload)
        .slice(reloadsBefore)
        .find((l) => l.devices === 2)
    await waitUntil(() => applied() !== undefined, 10_000, 'reload with the new devices')
    expect(applied()).toMatchObject({
      level: 30,
      devicesAdded: ['dev2', 'dev3'],
      devicesRemoved: ['dev'],
      devices: 2,
      msg: 'reloaded devices and policies: devices: 2 added (dev2, dev3), 1 removed (dev), 2 configured; 0 connection(s) closed, 0 subscription(s) revoked',
    })
  })
})
