/**
 * deploy/edge-gateway.service, as systemd reads it: `systemd-analyze verify` accepts it, and
 * `systemd-analyze security --offline=true` rates its exposure "OK" (under 2.0): alone, and with
 * the drop-in that gives a managed WireGuard tunnel CAP_NET_ADMIN. The unit's claims that the
 * rest of the product relies on (reload is SIGHUP, the only writable folders) are read from it.
 */
import { execFile } from 'node:child_process'
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { builtCli } from '../cli/run-cli.js'
import { findBinary } from '../helpers/binaries.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const run = promisify(execFile)
const DEPLOY = fileURLToPath(new URL('../../deploy/', import.meta.url))
const HINT =
  'systemd-analyze is in Debian\'s "systemd" package: apt-get install systemd (npm run test:setup does)'

/** The exposure level systemd-analyze prints on its last line. */
async function exposure(analyze: string, unit: string): Promise<number> {
  const { stdout } = await run(analyze, ['security', '--offline=true', '--threshold=20', unit])
  const level = /Overall exposure level for edge-gateway\.service: (\d+\.\d+) (\w+)/.exec(stdout)
  if (!level) throw new Error(`no exposure level in: ${stdout.slice(-300)}`)
  expect(level[2]).toBe('OK')
  return Number(level[1])
}

/** The values of `key` in the unit text, in order. */
const values = (text: string, key: string) =>
  text
    .split('\n')
    .filter((l) => l.startsWith(`${key}=`))
    .map((l) => l.slice(key.length + 1))

describe('deploy/edge-gateway.service: a hardened unit systemd accepts', () => {
  let dir: string
  let analyze: string
  let unit: string

  beforeAll(async () => {
    analyze = await findBinary('systemd-analyze', HINT)
    dir = await makeTempDir('edge-gw-unit-')
    unit = await readFile(join(DEPLOY, 'edge-gateway.service'), 'utf8')
  })
  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it('passes systemd-analyze verify (with ExecStart pointing at the built CLI, as an install makes it)', async () => {
    const alone = join(dir, 'verify')
    await mkdir(alone)
    const local = unit.replace(
      /^ExecStart=\/usr\/bin\/edge-gateway /m,
      `ExecStart=${process.execPath} ${builtCli()} `,
    )
    await writeFile(join(alone, 'edge-gateway.service'), local)
    const { stderr } = await run(analyze, ['verify', join(alone, 'edge-gateway.service')])
    expect(stderr.split('\n').filter((l) => l.includes('edge-gateway.service'))).toEqual([])
  })

  it('rates "OK" under 2.0: 1.3 alone, 1.7 with either tunnel drop-in', async () => {
    const alone = join(dir, 'alone')
    await mkdir(alone)
    await copyFile(join(DEPLOY, 'edge-gateway.service'), join(alone, 'edge-gateway.service'))
    expect(await exposure(analyze, join(alone, 'edge-gateway.service'))).toBeLessThanOrEqual(1.4)
    // A drop-in folder beside the unit is read with it: each drop-in as the installer puts it alone.
    for (const dropIn of ['vpn.conf', 'vpn-watch.conf']) {
      const withIt = join(dir, `with-${dropIn}`)
      await mkdir(join(withIt, 'edge-gateway.service.d'), { recursive: true })
      await copyFile(join(DEPLOY, 'edge-gateway.service'), join(withIt, 'edge-gateway.service'))
      await copyFile(
        join(DEPLOY, 'edge-gateway.service.d', dropIn),
        join(withIt, 'edge-gateway.service.d', dropIn),
      )
      expect(await exposure(analyze, join(withIt, 'edge-gateway.service')), dropIn).toBeLessThan(2.0)
    }
  })

  it('says what the product relies on: SIGHUP reload, restart on failure, no capability, writable state and config only, a cache folder of its own', async () => {
    expect(values(unit, 'ExecReload')).toEqual(['/bin/kill -HUP $MAINPID'])
    // `systemctl help edge-gateway` opens the project's own install guide, where the installer puts it.
    expect(values(unit, 'Documentation')).toEqual([
      'file:///opt/edge-gateway/lib/node_modules/edge-gateway/docs/install.md',
    ])
    expect(values(unit, 'Restart')).toEqual(['on-failure'])
    expect(values(unit, 'User')).toEqual(['edge-gateway'])
    expect(values(unit, 'NoNewPrivileges')).toEqual(['yes'])
    expect(values(unit, 'ProtectSystem')).toEqual(['strict'])
    expect(values(unit, 'ReadWritePaths')).toEqual(['/var/lib/edge-gateway /etc/edge-gateway'])
    expect(values(unit, 'CapabilityBoundingSet')).toEqual([''])
    // Node's compile cache (Node 22 and later) in the unit's own cache folder, which systemd makes
    // writable for the service alone; the installer's --uninstall removes it.
    expect(values(unit, 'Environment')).toContain('NODE_COMPILE_CACHE=/var/cache/edge-gateway')
    expect(values(unit, 'CacheDirectory')).toEqual(['edge-gateway'])
    expect(values(unit, 'CacheDirectoryMode')).toEqual(['0700'])
    const dropIn = await readFile(join(DEPLOY, 'edge-gateway.service.d', 'vpn.conf'), 'utf8')
    expect(values(dropIn, 'CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN'])
    expect(values(dropIn, 'AmbientCapabilities')).toEqual(['CAP_NET_ADMIN'])
    // The gateway stops its own wireguard-go after its last words through the tunnel.
    expect(values(dropIn, 'KillMode')).toEqual(['mixed'])
    // Watching a system tunnel: `wg show` needs CAP_NET_ADMIN, and nothing else (no tun device).
    const watch = await readFile(join(DEPLOY, 'edge-gateway.service.d', 'vpn-watch.conf'), 'utf8')
    expect(values(watch, 'CapabilityBoundingSet')).toEqual(['CAP_NET_ADMIN'])
    expect(values(watch, 'AmbientCapabilities')).toEqual(['CAP_NET_ADMIN'])
    expect(values(watch, 'PrivateDevices')).toEqual([])
    expect(values(watch, 'DeviceAllow')).toEqual([])
  })
})
