import { access, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { writeSecretFile } from '../../pki/index.js'
import { mosquittoPub } from '../helpers/mosquitto-clients.js'
import { freePort } from '../helpers/ports.js'
import { terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { absentCloud, type StartedGateway, startGatewayCli } from './run-cli.js'

/**
 * A Raspberry Pi has no real-time clock: after a power cut it starts from the last time it saved,
 * and NTP corrects it later. A PSK replaced with an overlap that ended before the power cut must
 * stay retired meanwhile. Here a real gateway runs once on the real clock (and saves the time it
 * saw in `<stateDir>/clock`), then again under libfaketime three days behind, and a real
 * `mosquitto_pub` tries the retired PSK against it.
 */
const OLD = '0123456789abcdef0123456789abcdef'
const NEW = 'fedcba9876543210fedcba9876543210'
const LIBFAKETIME = ['x86_64-linux-gnu', 'aarch64-linux-gnu', 'arm-linux-gnueabihf'].map(
  (triplet) => `/usr/lib/${triplet}/faketime/libfaketime.so.1`,
)

async function libfaketime(): Promise<string> {
  for (const path of LIBFAKETIME) {
    if (
      await access(path).then(
        () => true,
        () => false,
      )
    )
      return path
  }
  throw new Error(
    `libfaketime is not installed (none of ${LIBFAKETIME.join(', ')}): apt-get install faketime (scripts/install-test-deps.sh does)`,
  )
}

const cleanup: Array<() => Promise<unknown>> = []
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c()
})

/** A state folder and a config: device `dev` rotated from PSK identity `dev` to `dev-r2`, the overlap over two days ago. */
async function site(): Promise<{ dir: string; file: string; port: number }> {
  const dir = await makeTempDir('edge-gw-clock-floor-')
  cleanup.push(() => removeDir(dir))
  await writeSecretFile(join(dir, 'keys', 'dev.psk'), `${OLD}\n`)
  await writeSecretFile(join(dir, 'keys', 'dev-r2.psk'), `${NEW}\n`)
  const port = await freePort()
  const until = new Date(Date.now() - 2 * 86_400_000).toISOString()
  const config = {
    gateway: { id: 'gw-clock', stateDir: join(dir, 'state') },
    log: { level: 'info', pretty: false },
    lan: { listeners: [{ name: 'psk', type: 'tls-psk', host: '127.0.0.1', port }] },
    devices: [
      {
        id: 'dev',
        clientIds: ['dev-*'],
        psk: {
          identity: 'dev-r2',
          keyFile: join(dir, 'keys', 'dev-r2.psk'),
          previous: { identity: 'dev', keyFile: join(dir, 'keys', 'dev.psk'), until },
        },
      },
    ],
    policies: { rules: [{ name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' }] },
    cloud: await absentCloud(dir),
  }
  const file = join(dir, 'gateway.yaml')
  await writeFile(file, stringify(config), { mode: 0o600 })
  return { dir, file, port }
}

async function start(file: string, behind?: string): Promise<StartedGateway> {
  const env: Record<string, string> =
    behind === undefined
      ? {}
      : {
          LD_PRELOAD: await libfaketime(),
          FAKETIME: behind,
          // The wall clock alone is set back, as NTP or fake-hwclock would; the monotonic clock runs on.
          FAKETIME_DONT_FAKE_MONOTONIC: '1',
        }
  const started = await startGatewayCli(file, 30_000, env)
  cleanup.push(() => terminate(started.child))
  return started
}

const publish = (port: number, identity: string, keyHex: string) =>
  mosquittoPub({
    host: '127.0.0.1',
    port,
    psk: { identity, keyHex },
    clientId: 'dev-1',
    topic: 'devices/dev/t',
    message: 'hi',
    qos: 1,
  })

describe('the clock floor across a restart with the clock set back', () => {
  it('without a saved time, a clock three days behind opens the ended overlap again (what the floor is for)', async () => {
    const { file, port } = await site()
    const gateway = await start(file, '-3d')
    // libfaketime took: the gateway logged a time three days back.
    expect(Number(gateway.logs[0]?.time)).toBeLessThan(Date.now() - 2.9 * 86_400_000)
    expect((await publish(port, 'dev', OLD)).code).toBe(0)
  })

  it('with the time the last run saw, the retired PSK stays refused, the new one works, and the start says why', async () => {
    const { dir, file, port } = await site()
    const first = await start(file)
    expect((await publish(port, 'dev', OLD)).code).not.toBe(0)
    const exit = await terminate(first.child)
    expect(exit.code).toBe(0)
    const saved = Number((await readFile(join(dir, 'state', 'clock'), 'utf8')).trim())
    expect(saved).toBeGreaterThan(Date.now() - 60_000)
    expect((await stat(join(dir, 'state', 'clock'))).mode & 0o777).toBe(0o600)

    const behind = await start(file, '-3d')
    const refused = await publish(port, 'dev', OLD)
    expect(refused.code, refused.stderr).not.toBe(0)
    expect((await publish(port, 'dev-r2', NEW)).code).toBe(0)
    expect(behind.logs.find((l) => l.module === 'clock')).toMatchObject({
      level: 40,
      lastSeen: new Date(saved).toISOString(),
      msg: expect.stringContaining('behind the time this gateway last saw'),
    })
    expect(behind.logs.find((l) => l.event === 'psk_retired_identity')).toMatchObject({
      pskIdentity: 'dev',
      device: 'dev',
    })
  })
})
