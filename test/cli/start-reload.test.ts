import type { ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { constants } from 'node:fs'
import { mkdir, open, readFile, rename, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { freePort } from '../helpers/ports.js'
import { exitOf, onLines, signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice, pskConnack, subscribeGranted } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { absentCloud, spawnCli, startGatewayCli } from './run-cli.js'

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
    // A policy change is applied by the reload: nothing waits for a restart.
    expect(logs.find((l) => isReload(l))?.restartNeeded).toEqual([])
    expect(logs.some((l) => l.event === 'reload_needs_restart')).toBe(false)
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

  it('a change a reload does not apply (payload protection, the cloud) is named in a warning, not silently ignored', async () => {
    const before = logs.length
    const changed = {
      ...config,
      lan: {
        ...(config.lan as object),
        protection: [{ topic: 'devices/+/sealed/#', mode: 'sealed' }],
        passwordChecks: { memoryMiB: 32 },
      },
      cloud: { ...(config.cloud as object), reconnect: { initialDelayMs: 2000, maxDelayMs: 5000 } },
    }
    await writeFile(configFile, stringify(changed), { mode: 0o600 })
    signalPid(child.pid, 'SIGHUP')
    const warned = () => logs.slice(before).find((l) => l.event === 'reload_needs_restart')
    await waitUntil(() => warned() !== undefined, 10_000, 'the warning')
    expect(warned()).toMatchObject({
      level: 40,
      restartNeeded: ['cloud.reconnect', 'lan.passwordChecks', 'lan.protection'],
      msg: 'not applied by a reload, changed in the config: cloud.reconnect, lan.passwordChecks, lan.protection; they take effect at the next restart (systemctl restart edge-gateway)',
    })
    // Back as it started: no warning on the next reload.
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    const back = logs.length
    signalPid(child.pid, 'SIGHUP')
    await waitUntil(() => logs.slice(back).some(isReload), 10_000, 'the reload back')
    expect(logs.slice(back).find(isReload)?.restartNeeded).toEqual([])
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

/** The files watched follow the config: a device a reload added has its key file watched too. */
describe('edge-gateway start: the key file of a device added by a reload', () => {
  let dir: string

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-follow-')
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('is watched: replacing it reloads, and the device connects with its new key', async () => {
    const port = await freePort()
    await mkdir(join(dir, 'keys'), { mode: 0o700 })
    const keyOf = (name: string) => join(dir, 'keys', `${name}.psk`)
    const key = (byte: number) => Buffer.alloc(32, byte)
    await writeFile(keyOf('a'), key(1).toString('hex'), { mode: 0o600 })
    const device = (id: string) => ({ id, psk: { identity: id, keyFile: keyOf(id) } })
    const config: Record<string, unknown> = {
      gateway: { id: 'gw-follow', stateDir: join(dir, 'state') },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ name: 'psk', type: 'tls-psk', host: '127.0.0.1', port }] },
      devices: [device('a')],
      cloud: await absentCloud(dir),
    }
    const configFile = join(dir, 'gateway.yaml')
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    const { child, logs } = await startGatewayCli(configFile)
    const connack = async (id: string, k: Buffer) => {
      const { code, socket } = await pskConnack(port, { identity: id, key: k }, id, '127.0.0.1')
      socket.destroy()
      return code
    }
    try {
      await writeFile(keyOf('b'), key(2).toString('hex'), { mode: 0o600 })
      config.devices = [device('a'), device('b')]
      await writeFile(configFile, stringify(config), { mode: 0o600 })
      await waitUntil(
        () => logs.some((l) => String(l.msg).includes('1 added (b)')),
        10_000,
        'the reload that adds b',
      )
      expect(await connack('b', key(2))).toBe(0)

      // As an editor or `device rotate` would: a new file renamed over the old one.
      const before = logs.length
      await writeFile(`${keyOf('b')}.new`, key(3).toString('hex'), { mode: 0o600 })
      await rename(`${keyOf('b')}.new`, keyOf('b'))
      await waitUntil(
        () => logs.slice(before).some((l) => l.why === `${keyOf('b')} changed`),
        10_000,
        "the reload on b's key file",
      )
      expect(await connack('b', key(3))).toBe(0)
      expect(await connack('b', key(2))).toBe('closed')
    } finally {
      await terminate(child)
    }
  }, 30_000)
})

/**
 * `systemctl reload` is SIGHUP. Node's default action for it ends the process, with a status systemd
 * counts as a clean exit (Restart=on-failure would not start it again): a SIGHUP while the gateway
 * starts becomes a reload once it is up, and one while it stops is ignored.
 */
describe('edge-gateway start: SIGHUP while starting and while stopping', () => {
  let dir: string

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-hup-')
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('a SIGHUP during start-up is a reload once the gateway is up; one during the stop changes nothing', async () => {
    const configFile = join(dir, 'gateway.yaml')
    const config = {
      gateway: { id: 'gw-hup', stateDir: join(dir, 'state') },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: await freePort() }] },
      devices: [{ id: 'dev', username: 'dev', passwordHash: await hashPassword('reload-password') }],
      cloud: await absentCloud(dir),
    }
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    const child = spawnCli(['start', '--config', configFile])
    const logs: Array<Record<string, unknown>> = []
    let hupAt = -1
    onLines(child.stdout, (line) => {
      const record = JSON.parse(line) as Record<string, unknown>
      logs.push(record)
      // The gateway's first log line comes from inside its start: signal then, before it is up.
      if (hupAt < 0) {
        hupAt = logs.length
        signalPid(child.pid, 'SIGHUP')
      }
    })
    try {
      await waitUntil(() => logs.some((l) => l.msg === 'edge gateway started'), 15_000, 'gateway start')
      const started = logs.findIndex((l) => l.msg === 'edge gateway started')
      // The signal reached it before it was up.
      expect(hupAt).toBeLessThanOrEqual(started)
      await waitUntil(
        () => logs.some((l) => l.why === 'SIGHUP during start-up'),
        10_000,
        'the reload the SIGHUP asked for',
      )
      expect(logs.find((l) => l.why === 'SIGHUP during start-up')?.msg).toMatch(
        /^reloaded devices and policies: /,
      )
    } finally {
      signalPid(child.pid, 'SIGTERM')
      signalPid(child.pid, 'SIGHUP')
    }
    const exit = await exitOf(child)
    expect(exit).toEqual({ code: 0, signal: null })
  }, 30_000)

  it('a SIGHUP before the config is read (the process only just launched) is a reload once it is up', async () => {
    // The config is a FIFO at first: the start's read of it waits for the test to write, so the
    // signal lands at a known point before the config was read, where `start` had no handler of
    // its own. A regular file then takes its place for the reload's read.
    const configFile = join(dir, 'early.yaml')
    await promisify(execFile)('mkfifo', ['-m', '600', configFile])
    const text = stringify({
      gateway: { id: 'gw-hup-early', stateDir: join(dir, 'state-early') },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: await freePort() }] },
      devices: [{ id: 'dev', username: 'dev', passwordHash: await hashPassword('reload-password') }],
      cloud: await absentCloud(dir),
    })
    await writeFile(join(dir, 'early.next'), text, { mode: 0o600 })
    const child = spawnCli(['start', '--config', configFile])
    const logs: Array<Record<string, unknown>> = []
    onLines(child.stdout, (line) => logs.push(JSON.parse(line) as Record<string, unknown>))
    const exited = exitOf(child)
    try {
      // Opening a FIFO to write returns once the gateway has opened it to read.
      const opening = open(configFile, 'w')
      const first = await Promise.race([opening, exited])
      if (!('writeFile' in first)) {
        // Ended before reading its config: a reader of our own lets the pending open return.
        await (await open(configFile, constants.O_RDONLY | constants.O_NONBLOCK)).close()
        await (await opening).close()
        expect.fail(`the gateway ended before it read its config: ${JSON.stringify(first)}`)
      }
      const writer = first
      signalPid(child.pid, 'SIGHUP')
      await rename(join(dir, 'early.next'), configFile)
      await writer.writeFile(text).catch(() => undefined)
      await writer.close()
      const ended = await Promise.race([
        exited,
        waitUntil(
          () => logs.some((l) => l.why === 'SIGHUP during start-up'),
          15_000,
          'the reload the SIGHUP asked for',
        ),
      ])
      expect(ended, 'the gateway ended on the SIGHUP that came before its config was read').toBeUndefined()
      expect(logs.find((l) => l.why === 'SIGHUP during start-up')).toMatchObject({
        msg: expect.stringMatching(/^reloaded devices and policies: /),
      })
    } finally {
      signalPid(child.pid, 'SIGTERM')
    }
    expect(await exited).toEqual({ code: 0, signal: null })
  }, 30_000)
})
