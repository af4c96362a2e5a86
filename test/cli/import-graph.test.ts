import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { generateHpkeKeyPair } from '../../crypto/hpke.js'
import { hashPassword } from '../../gateway/index.js'
import { mintLabPki } from '../../pki/index.js'
import {
  bundleFilesLoaded,
  bundlePackagesLoaded,
  filesLoaded,
  forbiddenLoads,
  inPackages,
  type LoadTrace,
  packagesLoaded,
  projectModules,
  traceCli,
} from '../helpers/load-trace/trace.js'
import { freePort } from '../helpers/ports.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

/** What only running a command may load: none of it for help, usage and the version. */
const HEAVY = [
  'aedes',
  'mqtt',
  'mqtt-packet',
  'rxjs',
  'node-forge',
  'zod',
  'yaml',
  'execa',
  'pino',
  '@hpke/core',
  '@hpke/chacha20poly1305',
  '@hpke/common',
  'lru-cache',
  'prom-client',
]

/**
 * What a gateway start never loads unless its config asks: the tunnel's and the cloud tools', and
 * pino-pretty (only for a terminal or log.pretty; the traced start logs JSON to a pipe).
 */
const NOT_AT_START = [
  'execa',
  'node-forge',
  '@hpke/core',
  '@hpke/chacha20poly1305',
  '@hpke/common',
  'pino-pretty',
  'prom-client',
]

/** The `vpn/` modules the config's `vpn` schema uses to check a section; the rest is tunnel code. */
const VPN_CONFIG_CHECKS = ['vpn/cidr.js', 'vpn/config.js', 'vpn/errors.js', 'vpn/names.js', 'vpn/secret.js']

/** `vpn/` tunnel code (bringing it up, watching it): the module's path, or undefined. */
function vpnTunnelCode(url: string): string | undefined {
  const path = /\/dist\/(vpn\/[^/]+\.js|cli\/vpn-tunnel\.js)$/.exec(url)?.[1]
  return path !== undefined && !VPN_CONFIG_CHECKS.includes(path) ? path : undefined
}

/** The dependencies of package.json a start loaded, sorted. */
function dependenciesLoaded(trace: LoadTrace): string[] {
  const dependencies = [
    '@hpke/chacha20poly1305',
    '@hpke/core',
    'aedes',
    'commander',
    'execa',
    'lru-cache',
    'mqtt',
    'node-forge',
    'pino',
    'pino-pretty',
    'prom-client',
    'rxjs',
    'yaml',
    'zod',
  ]
  return packagesLoaded(trace).filter((p) => dependencies.includes(p))
}

describe('edge-gateway loads only what a command needs', () => {
  const helpModules = [
    'bridge/dead-letter/reasons.js',
    'cli/commands/cloud.js',
    'cli/commands/deadletter.js',
    'cli/commands/device.js',
    'cli/commands/import-mosquitto.js',
    'cli/commands/lab.js',
    'cli/commands/policy.js',
    'cli/commands/simulate.js',
    'cli/commands/start.js',
    'cli/commands/status.js',
    'cli/commands/vpn.js',
    'cli/fail.js',
    'cli/launch-hup.js',
    'cli/main.js',
    'core/errors.js',
  ]

  for (const args of [
    ['--help'],
    ['--version'],
    ['start', '--help'],
    ['cloud', 'consume', '--help'],
    ['vpn', 'status', '--help'],
    ['device', 'simulate', '--help'],
    ['deadletter', 'retry', '--help'],
  ]) {
    it(`\`${args.join(' ')}\` loads commander and the command definitions, nothing else`, async () => {
      const trace = await traceCli(args)
      expect(trace.code).toBe(0)
      expect(trace.stdout.length).toBeGreaterThan(0)
      expect(trace.commonJsRecorded).toBe(true)
      expect(forbiddenLoads(trace, inPackages(HEAVY))).toEqual([])
      expect(packagesLoaded(trace)).toEqual(['commander'])
      expect(projectModules(trace)).toEqual(helpModules)
    })
  }

  it('the bundle users run (dist/bin/edge-gateway.js): `--help` loads its entry and commander, no chunk of a command', async () => {
    const trace = await traceCli(['--help'], { entry: 'bundle' })
    expect(trace.code).toBe(0)
    expect(trace.stdout).toContain('Usage: edge-gateway')
    expect(bundlePackagesLoaded(trace)).toEqual(['commander'])
    expect(bundleFilesLoaded(trace).filter((f) => !/^chunks\/chunk-/.test(f))).toEqual(['edge-gateway.js'])
  })

  it('a usage error (a missing required option) loads none of the heavy packages either', async () => {
    const trace = await traceCli(['start'])
    expect(trace.code).toBe(2)
    expect(trace.stderr).toContain("error: required option '-c, --config <file>' not specified")
    expect(trace.commonJsRecorded).toBe(true)
    expect(forbiddenLoads(trace, inPackages(HEAVY))).toEqual([])
  })

  describe('start', () => {
    let dir: string
    let base: Record<string, unknown>

    beforeAll(async () => {
      dir = await makeTempDir('edge-gw-import-graph-')
      const pki = await mintLabPki(join(dir, 'pki'))
      base = {
        gateway: { id: 'gw-imports', stateDir: join(dir, 'state') },
        log: { level: 'info', pretty: false },
        lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: await freePort() }] },
        devices: [{ id: 'dev', username: 'dev', passwordHash: await hashPassword('imports-password') }],
        policies: { rules: [{ name: 'own', who: 'everyone', topic: 'devices/%d/#', action: 'both' }] },
        cloud: {
          // Nothing listens here: the gateway starts and keeps retrying the cloud.
          host: '127.0.0.1',
          port: await freePort(),
          servername: 'localhost',
          caFile: pki.caFile,
          certFile: pki.clientCertFile,
          keyFile: pki.clientKeyFile,
          topics: [{ local: 'devices/', cloud: 'gw/' }],
        },
      }
    })

    afterAll(async () => {
      await removeDir(dir)
    })

    async function traceStart(
      name: string,
      config: Record<string, unknown>,
      entry: 'compiled' | 'bundle' = 'compiled',
    ): Promise<LoadTrace> {
      const file = join(dir, `${name}.yaml`)
      await writeFile(file, stringify(config), { mode: 0o600 })
      const trace = await traceCli(['start', '--config', file], { stopAfter: 'edge gateway started', entry })
      expect(trace.stdout).toContain('edge gateway started')
      expect(trace.code).toBe(0)
      // (The bundle holds every package but pino-pretty, so it loads no CommonJS file to record.)
      if (entry === 'compiled') expect(trace.commonJsRecorded).toBe(true)
      return trace
    }

    it('without a vpn section: no execa, no tunnel code, no HPKE, no node-forge', async () => {
      const trace = await traceStart('minimal', base)
      expect(forbiddenLoads(trace, inPackages(NOT_AT_START))).toEqual([])
      expect(forbiddenLoads(trace, vpnTunnelCode)).toEqual([])
      expect(dependenciesLoaded(trace)).toEqual([
        'aedes',
        'commander',
        'lru-cache',
        'mqtt',
        'pino',
        'rxjs',
        'yaml',
        'zod',
      ])
    })

    it('the bundle: the same packages, from a few dozen files instead of hundreds', async () => {
      const compiled = await traceStart('minimal-compiled', base)
      const bundled = await traceStart('minimal-bundle', base, 'bundle')
      expect(bundlePackagesLoaded(bundled).filter((p) => NOT_AT_START.includes(p))).toEqual([])
      expect(bundlePackagesLoaded(bundled)).toEqual(expect.arrayContaining(dependenciesLoaded(compiled)))
      // The start command's own chunk, loaded when the command runs; no other command's.
      const commands = bundleFilesLoaded(bundled).filter(
        (f) => f.startsWith('chunks/') && !f.startsWith('chunks/chunk-'),
      )
      expect(commands.map((f) => f.replace(/-[A-Z0-9]+\.js$/, ''))).toEqual(['chunks/start'])
      expect(filesLoaded(bundled)).toBeLessThan(40)
      expect(filesLoaded(compiled)).toBeGreaterThan(20 * filesLoaded(bundled))
    })

    it('log.pretty: the bundle loads pino-pretty from node_modules and prints for a person', async () => {
      const trace = await traceStart('pretty', { ...base, log: { level: 'info', pretty: true } }, 'bundle')
      expect(bundlePackagesLoaded(trace)).toContain('pino-pretty')
      expect(trace.stdout).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] .*INFO.*edge gateway started/m)
      expect(trace.stdout).not.toContain('"level":30')
    })

    it('sealing to an HPKE recipient (sealFor) still loads no HPKE library: the gateway seals with node:crypto', async () => {
      const recipient = await generateHpkeKeyPair()
      await writeFile(join(dir, 'analytics.pub'), `${recipient.publicKey.toString('hex')}\n`)
      const cloud = base.cloud as Record<string, unknown>
      const trace = await traceStart('sealed', {
        ...base,
        cloud: {
          ...cloud,
          recipients: [{ name: 'analytics', publicKeyFile: join(dir, 'analytics.pub') }],
          topics: [{ local: 'devices/', cloud: 'gw/', sealFor: 'analytics' }],
        },
      })
      expect(forbiddenLoads(trace, inPackages(NOT_AT_START))).toEqual([])
    })

    it('with a vpn section the tunnel code and execa are loaded (the trace sees what is used)', async () => {
      const trace = await traceStart('vpn', {
        ...base,
        vpn: {
          // The system's tunnel, watched only; the interface does not exist, so it is reported unhealthy.
          interfaceName: 'wgimports0',
          manage: false,
          peer: { publicKey: 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=', allowedIps: ['127.0.0.1/32'] },
          pollMs: 100,
        },
      })
      // vpn/run.js is imported by several vpn/ modules (health.js, tunnel.js, link.js): which chain
      // loads it first depends on timing and on Node's version (Node 24 goes through link.js), so
      // the chain is checked from run.js down and from cli/vpn-tunnel.js up.
      const execa = forbiddenLoads(trace, inPackages(['execa']))
      expect(execa).toHaveLength(1)
      expect(execa[0]).toMatch(
        /^execa: node_modules\/execa\/index\.js <- dist\/vpn\/run\.js( <- dist\/vpn\/[a-z-]+\.js)+ <- dist\/cli\/vpn-tunnel\.js <- dist\/cli\/vpn-runtime\.js <- dist\/cli\/app\.js <- dist\/cli\/actions\/start\.js <- dist\/cli\/commands\/start\.js <- dist\/cli\/main\.js$/,
      )
      expect(forbiddenLoads(trace, vpnTunnelCode)).toContain(
        'cli/vpn-tunnel.js: dist/cli/vpn-tunnel.js <- dist/cli/vpn-runtime.js <- dist/cli/app.js <- dist/cli/actions/start.js <- dist/cli/commands/start.js <- dist/cli/main.js',
      )
    })
  })
})
