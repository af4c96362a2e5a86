/**
 * Bringing a tunnel up inside a test namespace when something is missing or in the way: tools,
 * privilege, the interface name, and the `vpn up` / `vpn down` path across processes (PID file).
 */
import { mkdir, stat, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { TunnelConfig } from '../../vpn/config.js'
import { VpnError } from '../../vpn/errors.js'
import { readTunnelSample } from '../../vpn/health.js'
import { createKeys } from '../../vpn/keys.js'
import { run } from '../../vpn/run.js'
import { bringDown, bringUp, type Tunnel } from '../../vpn/tunnel.js'
import { findBinary } from '../helpers/binaries.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { NetnsLab, requireLab } from './netns.js'

const CLOUD_TUNNEL_IP = '10.78.0.2'

const lab = new NetnsLab()
let dir: string | undefined
let ns: string
let base: Omit<TunnelConfig, 'interfaceName'>
const tunnels: Tunnel[] = []
/** PATH directories holding only some tools. */
const paths = { empty: '', ipOnly: '', noWireguardGo: '', noNetAdmin: '' }

async function binDir(name: string, links: Record<string, string>): Promise<string> {
  const path = join(dir!, name)
  await mkdir(path)
  for (const [tool, target] of Object.entries(links)) await symlink(target, join(path, tool))
  return path
}

async function linkNames(): Promise<string> {
  return (await lab.exec(ns, 'ip', ['-o', 'link', 'show'])).stdout
}

beforeAll(async () => {
  await requireLab(['ip', 'wg', 'wireguard-go', 'setpriv'])
  dir = await makeTempDir('vpn-setup')
  ns = await lab.addNamespace('st')
  const cloud = await createKeys({ privateKeyFile: join(dir, 'cloud.key') })
  await createKeys({ privateKeyFile: join(dir, 'gateway.key') })
  base = {
    implementation: 'wireguard-go',
    privateKeyFile: join(dir, 'gateway.key'),
    addresses: ['10.78.0.1/30'],
    peer: { publicKey: cloud.publicKey, endpoint: '10.77.0.2:51821', allowedIps: [`${CLOUD_TUNNEL_IP}/32`] },
  }
  const ip = await findBinary('ip', 'install iproute2')
  const wg = await findBinary('wg', 'install wireguard-tools')
  const setpriv = await findBinary('setpriv', 'install util-linux')
  paths.empty = await binDir('empty', {})
  paths.ipOnly = await binDir('ip-only', { ip })
  paths.noWireguardGo = await binDir('no-wireguard-go', { ip, wg })
  // An `ip` that runs without CAP_NET_ADMIN, and so does everything it starts (ip netns exec ...).
  paths.noNetAdmin = join(dir, 'no-net-admin')
  await mkdir(paths.noNetAdmin)
  await writeFile(
    join(paths.noNetAdmin, 'ip'),
    `#!/bin/sh\nexec ${setpriv} --inh-caps -net_admin --bounding-set -net_admin ${ip} "$@"\n`,
    { mode: 0o755 },
  )
})

afterAll(async () => {
  const errors: unknown[] = []
  for (const tunnel of tunnels) await tunnel.down().catch((err: unknown) => errors.push(err))
  await lab.cleanup().catch((err: unknown) => errors.push(err))
  if (dir !== undefined) await removeDir(dir)
  if (errors.length > 0) throw new AggregateError(errors, 'tunnel setup e2e cleanup failed')
})

describe('missing tools', () => {
  it.each([
    ['ip', 'empty', 'VPN_ERR_IP_NOT_FOUND', 'iproute2'],
    ['wg', 'ipOnly', 'VPN_ERR_WG_NOT_FOUND', 'wireguard-tools'],
    ['wireguard-go', 'noWireguardGo', 'VPN_ERR_WG_GO_NOT_FOUND', 'wireguard-go'],
  ] as const)(
    'without %s the error names the Debian package, and nothing is left behind',
    async (tool, path, code, pkg) => {
      const name = lab.name('wgm')
      const err = await rejectionOf(
        bringUp(
          { ...base, interfaceName: name },
          { netns: ns, cloudAddress: CLOUD_TUNNEL_IP, env: { PATH: paths[path] } },
        ),
      )
      expect(err).toBeInstanceOf(VpnError)
      expect(err).toMatchObject({ code })
      expect((err as Error).message).toContain(
        `\`${tool}\` was not found in PATH (${paths[path]}): install the Debian package ${pkg} (apt-get install ${pkg})`,
      )
      expect(await linkNames()).not.toContain(name)
      expect(await lab.pids(ns)).toEqual([])
    },
  )
})

describe('missing privilege', () => {
  it.each(['auto', 'wireguard-go'] as const)(
    'without CAP_NET_ADMIN (%s) the error names the capability, and nothing is left behind',
    async (implementation) => {
      const name = lab.name('wgp')
      const err = await rejectionOf(
        bringUp(
          { ...base, implementation, interfaceName: name },
          {
            netns: ns,
            cloudAddress: CLOUD_TUNNEL_IP,
            env: { PATH: `${paths.noNetAdmin}:${process.env.PATH ?? ''}` },
          },
        ),
      )
      expect(err).toMatchObject({ code: 'VPN_ERR_NO_PRIVILEGE' })
      expect((err as Error).message).toMatch(
        /was refused \(Operation not permitted\): managing WireGuard interfaces needs CAP_NET_ADMIN; run as root or grant it \(systemd: AmbientCapabilities=CAP_NET_ADMIN\)$/,
      )
      expect(await linkNames()).not.toContain(name)
      expect(await lab.pids(ns)).toEqual([])
    },
  )

  it('a namespace that does not exist is named', async () => {
    const err = await rejectionOf(run('wg', ['--version'], { netns: `eg-none-${lab.id}` }))
    expect(err).toMatchObject({
      code: 'VPN_ERR_NETNS_NOT_FOUND',
      message: `Network namespace "eg-none-${lab.id}" does not exist`,
    })
  })
})

describe('implementation and interface', () => {
  it('auto uses kernel WireGuard when the kernel has it, else wireguard-go', async () => {
    const probe = lab.name('wgk')
    const kernelHasWireGuard = await run('ip', [
      '-n',
      ns,
      'link',
      'add',
      'dev',
      probe,
      'type',
      'wireguard',
    ]).then(
      () => true,
      () => false,
    )
    if (kernelHasWireGuard) await run('ip', ['-n', ns, 'link', 'del', 'dev', probe])
    const tunnel = await bringUp(
      { ...base, implementation: 'auto', interfaceName: lab.name('wga') },
      { netns: ns, cloudAddress: CLOUD_TUNNEL_IP },
    )
    tunnels.push(tunnel)
    expect(tunnel.implementation).toBe(kernelHasWireGuard ? 'kernel' : 'wireguard-go')
    expect(tunnel.pid === null).toBe(kernelHasWireGuard)

    // The same name again: refused, and the first one is untouched.
    const err = await rejectionOf(
      bringUp({ ...base, interfaceName: tunnel.interfaceName }, { netns: ns, cloudAddress: CLOUD_TUNNEL_IP }),
    )
    expect(err).toMatchObject({ code: 'VPN_ERR_INTERFACE_EXISTS' })
    expect(await linkNames()).toContain(tunnel.interfaceName)

    await tunnel.down()
    await tunnel.down()
    expect(await linkNames()).not.toContain(tunnel.interfaceName)
    expect(await lab.pids(ns)).toEqual([])
  })

  it('a detached wireguard-go is brought down from its PID file, as `vpn down` does in another process', async () => {
    const pidFile = join(dir!, 'wg.pid')
    const logFile = join(dir!, 'wireguard-go.log')
    const tunnel = await bringUp(
      { ...base, interfaceName: lab.name('wgd') },
      { netns: ns, cloudAddress: CLOUD_TUNNEL_IP, pidFile, detached: true, logFile },
    )
    expect((await stat(pidFile)).mode & 0o777).toBe(0o600)
    expect((await stat(logFile)).mode & 0o777).toBe(0o600)
    expect(await lab.pids(ns)).toEqual([tunnel.pid])

    await bringDown({ interfaceName: tunnel.interfaceName }, { netns: ns, pidFile })
    expect(await linkNames()).not.toContain(tunnel.interfaceName)
    expect(await lab.pids(ns)).toEqual([])
    await expect(stat(pidFile)).rejects.toMatchObject({ code: 'ENOENT' })
    // Again: nothing there is fine.
    await bringDown({ interfaceName: tunnel.interfaceName }, { netns: ns, pidFile })
  })

  it('a wireguard-go killed with SIGKILL: down() removes the control socket it left, health sees no interface', async () => {
    const tunnel = await bringUp(
      { ...base, interfaceName: lab.name('wgs') },
      { netns: ns, cloudAddress: CLOUD_TUNNEL_IP },
    )
    tunnels.push(tunnel)
    const socket = `/var/run/wireguard/${tunnel.interfaceName}.sock`
    process.kill(tunnel.pid!, 'SIGKILL')
    for (let i = 0; i < 50 && (await lab.pids(ns)).length > 0; i++) await sleep(50)
    // (Any `wg` call would also remove it: wg unlinks a socket that refuses connections.)
    await expect(stat(socket)).resolves.toBeTruthy()
    await tunnel.down()
    await expect(stat(socket)).rejects.toMatchObject({ code: 'ENOENT' })
    expect(await readTunnelSample(tunnel.interfaceName, undefined, { netns: ns })).toEqual({
      present: false,
      linkUp: false,
      peer: null,
      error: null,
    })
  })
})
