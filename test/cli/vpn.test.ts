import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { formatTunnelStatus } from '../../cli/actions/vpn.js'
import { resolveCloudAddress } from '../../cli/vpn-tunnel.js'
import type { VpnConfig } from '../../config/index.js'
import type { TunnelState } from '../../vpn/health-state.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { runCli } from './run-cli.js'

const CLOUD_KEY = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='

function oneLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n')
  expect(lines).toHaveLength(1)
  return lines[0]!
}

/** `edge-gateway vpn ...`: arguments, config errors and key files (no interface is created here). */
describe('edge-gateway vpn', () => {
  let dir: string
  let base: Record<string, unknown>
  const vpnSection = (extra: Record<string, unknown> = {}) => ({
    interfaceName: 'wgcli0',
    privateKeyFile: 'keys/wg.key',
    addresses: ['10.78.0.1/30'],
    peer: {
      publicKey: CLOUD_KEY,
      presharedKeyFile: 'keys/wg.psk',
      endpoint: '203.0.113.5:51820',
      allowedIps: ['10.78.0.2/32'],
    },
    ...extra,
  })

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-vpn-cli-')
    base = {
      gateway: { id: 'gw-1' },
      lan: { listeners: [{ type: 'tcp', port: 0 }] },
      devices: [{ id: 'd', username: 'd', passwordHash: '$scrypt$x' }],
      cloud: {
        host: '10.78.0.2',
        caFile: 'ca.pem',
        certFile: 'client.pem',
        keyFile: 'client.key',
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
    }
  })

  afterAll(async () => {
    await removeDir(dir)
  })

  async function configFile(name: string, vpn: unknown): Promise<string> {
    const file = join(dir, name)
    await writeFile(file, stringify(vpn === undefined ? base : { ...base, vpn }))
    return file
  }

  it('has --help on every subcommand', async () => {
    for (const sub of ['keys', 'up', 'down', 'mode', 'status']) {
      const result = await runCli(['vpn', sub, '--help'])
      expect(result.code).toBe(0)
      expect(result.stdout).toContain(`Usage: edge-gateway vpn ${sub} [options]`)
      expect(result.stdout).toContain('-c, --config <file>')
    }
    expect((await runCli(['vpn', 'status', '--help'])).stdout).toContain('--json')
  })

  it('refuses a missing --config and an unknown subcommand with exit 2', async () => {
    const missing = await runCli(['vpn', 'status'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain("error: required option '-c, --config <file>' not specified")
    const unknown = await runCli(['vpn', 'restart', '--config', 'x.yaml'])
    expect(unknown.code).toBe(2)
    expect(unknown.stderr).toContain("error: unknown command 'restart'")
  })

  it('refuses a config without a vpn section, in one line, exit 2', async () => {
    const file = await configFile('no-vpn.yaml', undefined)
    for (const sub of ['keys', 'up', 'down', 'status']) {
      const result = await runCli(['vpn', sub, '--config', file])
      expect(result.code).toBe(2)
      expect(oneLine(result.stderr)).toBe(
        `edge-gateway: ${file} has no vpn section; add one (docs/vpn.md) to use \`edge-gateway vpn\` [VPN_ERR_BAD_CONFIG]`,
      )
    }
  })

  it('refuses a config error before touching anything (cloud.host outside the tunnel)', async () => {
    const file = join(dir, 'outside.yaml')
    await writeFile(
      file,
      stringify({ ...base, cloud: { ...(base.cloud as object), host: '10.9.9.9' }, vpn: vpnSection() }),
    )
    const result = await runCli(['vpn', 'up', '--config', file])
    expect(result.code).toBe(2)
    expect(oneLine(result.stderr)).toBe(
      `edge-gateway: ${file}: cloud.host: The cloud broker address 10.9.9.9 is not inside vpn.peer.allowedIps (10.78.0.2/32): it would be routed outside the tunnel; add its tunnel prefix to allowedIps [CONFIG_ERR_CROSS_FIELD]`,
    )
  })

  it('mode prints what the config asks of the tunnel (the installer chooses the unit drop-in by it)', async () => {
    const off = await runCli(['vpn', 'mode', '--config', await configFile('mode-off.yaml', undefined)])
    expect(off).toMatchObject({ code: 0, stdout: 'off\n' })
    const managed = await runCli([
      'vpn',
      'mode',
      '--config',
      await configFile('mode-managed.yaml', vpnSection()),
    ])
    expect(managed).toMatchObject({ code: 0, stdout: 'managed\n' })
    const system = await configFile('mode-system.yaml', {
      interfaceName: 'wgcli0',
      manage: false,
      peer: { publicKey: CLOUD_KEY, allowedIps: ['10.78.0.2/32'] },
    })
    expect(await runCli(['vpn', 'mode', '--config', system])).toMatchObject({ code: 0, stdout: 'system\n' })
  })

  it('up and down refuse a tunnel the system manages', async () => {
    const file = await configFile('system.yaml', {
      interfaceName: 'wgcli0',
      manage: false,
      peer: { publicKey: CLOUD_KEY, allowedIps: ['10.78.0.2/32'] },
    })
    for (const sub of ['up', 'down']) {
      const result = await runCli(['vpn', sub, '--config', file])
      expect(result.code).toBe(2)
      expect(oneLine(result.stderr)).toBe(
        `edge-gateway: vpn.manage is false: the system manages wgcli0, so \`edge-gateway vpn ${sub}\` does not touch it (use wg-quick or systemd-networkd, or set vpn.manage to true) [VPN_ERR_BAD_CONFIG]`,
      )
    }
  })

  it('up says to run `vpn keys` when the key file is missing', async () => {
    const file = await configFile('nokey.yaml', vpnSection({ privateKeyFile: 'keys/none.key' }))
    const result = await runCli(['vpn', 'up', '--config', file])
    expect(result.code).toBe(2)
    expect(oneLine(result.stderr)).toBe(
      `edge-gateway: The private key file ${join(dir, 'keys/none.key')} does not exist; create it with \`edge-gateway vpn keys\` [VPN_ERR_KEY_FILE_MISSING]`,
    )
  })

  it('keys writes the key pair and the preshared key 0600, prints the public key, and keeps them on a second run', async () => {
    const file = await configFile('keys.yaml', vpnSection())
    const first = await runCli(['vpn', 'keys', '--config', file])
    expect(first.stderr).toBe(
      [
        `private key written to ${join(dir, 'keys/wg.key')} (mode 0600)`,
        `preshared key written to ${join(dir, 'keys/wg.psk')} (mode 0600): copy this file to the cloud side securely; it is never printed`,
        "public key (the cloud side's [Peer] PublicKey):",
        '',
      ].join('\n'),
    )
    expect(first.code).toBe(0)
    expect(first.stdout).toMatch(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=\n$/)
    for (const name of ['keys/wg.key', 'keys/wg.psk']) {
      expect((await stat(join(dir, name))).mode & 0o777).toBe(0o600)
    }
    const privateKey = (await readFile(join(dir, 'keys/wg.key'), 'utf8')).trim()
    expect(first.stdout).not.toContain(privateKey)
    expect(first.stderr).not.toContain(privateKey)
    const second = await runCli(['vpn', 'keys', '--config', file])
    expect(second.code).toBe(0)
    expect(second.stdout).toBe(first.stdout)
    expect(second.stderr).toContain(`private key kept in ${join(dir, 'keys/wg.key')}`)
    const replaced = await runCli(['vpn', 'keys', '--config', file, '--overwrite'])
    expect(replaced.code).toBe(0)
    expect(replaced.stdout).not.toBe(first.stdout)
  })

  it('start refuses a vpn key file readable by others', async () => {
    for (const name of ['ca.pem', 'client.pem']) await writeFile(join(dir, name), 'x\n')
    await writeFile(join(dir, 'client.key'), 'x\n', { mode: 0o600 })
    await writeFile(join(dir, 'open.key'), 'x\n', { mode: 0o644 })
    const file = await configFile(
      'open.yaml',
      vpnSection({ privateKeyFile: 'open.key', peer: { ...vpnSection().peer, presharedKeyFile: undefined } }),
    )
    const result = await runCli(['start', '--config', file])
    expect(result.code).toBe(2)
    expect(oneLine(result.stderr)).toBe(
      `edge-gateway: ${file}: vpn.privateKeyFile: ${join(dir, 'open.key')} has mode 0644; a key file must be 0600 or tighter (chmod 600 ${join(dir, 'open.key')}) [CONFIG_ERR_SECRET_FILE]`,
    )
  })

  it('down refuses a tunnel whose owner record names a running gateway, unless --force', async () => {
    const file = await configFile('owned.yaml', vpnSection({ interfaceName: 'wgown9' }))
    await mkdir(join(dir, 'state', 'vpn'), { recursive: true })
    // A process this test starts stands for the running gateway the record names.
    const owner = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)'], { stdio: 'ignore' })
    try {
      await writeFile(join(dir, 'state', 'vpn', 'wgown9.owner'), `${owner.pid}\n`, { mode: 0o600 })
      const refused = await runCli(['vpn', 'down', '--config', file])
      expect(refused.code).toBe(1)
      expect(oneLine(refused.stderr)).toBe(
        `edge-gateway: the gateway running as pid ${owner.pid} brought wgown9 up and sends the cloud link through it: stop that gateway (\`systemctl stop edge-gateway\`), which brings its tunnel down; or pass --force, and that gateway stops with VPN_ERR_TUNNEL_LOST (its service manager starts it and the tunnel again) [VPN_ERR_TUNNEL_IN_USE]`,
      )
      expect(refused.stdout).toBe('')
      // A record as a gateway writes it: its PID and its start time (field 22 of /proc/<pid>/stat).
      const stat = await readFile(`/proc/${owner.pid}/stat`, 'utf8')
      const started = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
      await writeFile(join(dir, 'state', 'vpn', 'wgown9.owner'), `${owner.pid} ${started}\n`, { mode: 0o600 })
      expect(await runCli(['vpn', 'down', '--config', file])).toMatchObject({ code: 1, stdout: '' })
      // The same PID with another start time is a process that took the PID over since: not the owner.
      await writeFile(join(dir, 'state', 'vpn', 'wgown9.owner'), `${owner.pid} 1\n`, { mode: 0o600 })
      expect(await runCli(['vpn', 'down', '--config', file])).toMatchObject({
        code: 0,
        stdout: 'tunnel wgown9 down\n',
      })
      await writeFile(join(dir, 'state', 'vpn', 'wgown9.owner'), `${owner.pid}\n`, { mode: 0o600 })
      // --force goes on (the interface is not there, which down takes as done).
      expect(await runCli(['vpn', 'down', '--force', '--config', file])).toMatchObject({
        code: 0,
        stdout: 'tunnel wgown9 down\n',
      })
    } finally {
      owner.kill('SIGKILL')
      await once(owner, 'exit')
    }
    // The same record once its process is gone: a leftover, not an owner.
    expect(await runCli(['vpn', 'down', '--config', file])).toMatchObject({
      code: 0,
      stdout: 'tunnel wgown9 down\n',
    })
  })

  it('status of an interface that does not exist: not healthy, exit 1, as text and JSON', async () => {
    const file = await configFile('status.yaml', vpnSection({ interfaceName: 'wgnone9' }))
    const text = await runCli(['vpn', 'status', '--config', file])
    expect(text.code).toBe(1)
    expect(text.stdout).toBe(
      [
        'interface  wgnone9',
        'up         no',
        'healthy    no (interface wgnone9 does not exist)',
        'handshake  never',
        'received   0 bytes',
        'sent       0 bytes',
        'endpoint   none',
        '',
      ].join('\n'),
    )
    const json = await runCli(['vpn', 'status', '--json', '--config', file])
    expect(json.code).toBe(1)
    expect(JSON.parse(json.stdout)).toMatchObject({
      interfaceName: 'wgnone9',
      up: false,
      healthy: false,
      handshakeAgeMs: null,
      reason: 'interface wgnone9 does not exist',
    })
  })
})

describe('formatTunnelStatus', () => {
  it('prints a healthy tunnel', () => {
    const state: TunnelState = {
      interfaceName: 'wg0',
      up: true,
      missing: false,
      pollFailed: false,
      inPlace: true,
      handshakeAgeMs: 12_345,
      lastReceiveAgeMs: 800,
      rxBytes: 1024,
      txBytes: 2048,
      endpoint: '203.0.113.5:51820',
      healthy: true,
      reason: null,
      checkedAt: 0,
    }
    expect(formatTunnelStatus(state)).toBe(
      [
        'interface  wg0',
        'up         yes',
        'healthy    yes',
        'handshake  12.3 s ago',
        'received   1024 bytes',
        'sent       2048 bytes',
        'endpoint   203.0.113.5:51820',
        '',
      ].join('\n'),
    )
  })
})

describe('resolveCloudAddress', () => {
  const vpn = { peer: { allowedIps: ['10.78.0.0/30'] } } as unknown as VpnConfig

  it('returns an IP inside the tunnel as it is', async () => {
    expect(await resolveCloudAddress('10.78.0.2', vpn)).toBe('10.78.0.2')
  })

  it('resolves a name and refuses it when an address is outside the tunnel', async () => {
    expect(await rejectionOf(resolveCloudAddress('localhost', vpn))).toMatchObject({
      code: 'VPN_ERR_CLOUD_OUTSIDE_TUNNEL',
    })
  })

  it('refuses a name that does not resolve, saying what to do', async () => {
    const err = await rejectionOf(resolveCloudAddress('no-such-host.invalid', vpn))
    expect(err).toMatchObject({ code: 'VPN_ERR_BAD_CONFIG' })
    expect((err as Error).message).toMatch(
      /^Cannot resolve cloud.host "no-such-host.invalid" to check that it is inside the tunnel \(\w+\); use the cloud broker's tunnel address, and cloud.servername for its certificate name$/,
    )
  })
})
