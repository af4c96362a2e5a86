import { execFile } from 'node:child_process'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { copyFile, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { dirname, join, posix } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mintLabPki } from '../pki/index.js'
import { assertBuilt } from './cli/run-cli.js'
import { makeTempDir, removeDir } from './helpers/tmp.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))

interface PackResult {
  files: Array<{ path: string }>
}

interface PackageJson {
  license: string
  files: string[]
  bin: Record<string, string>
  scripts: Record<string, string>
}

interface LockEntry {
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  devDependencies?: Record<string, string>
}

const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson

function run(
  command: string,
  args: string[],
  cwd: string,
  timeoutMs: number,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 32 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0
        resolve({ code, stdout, stderr })
      },
    )
  })
}

/** `npm pack --dry-run --json` in `cwd`: the paths the package would hold. */
async function packList(cwd: string, scripts: boolean, timeoutMs: number): Promise<string[]> {
  const args = ['pack', '--dry-run', '--json', ...(scripts ? [] : ['--ignore-scripts'])]
  const out = await run('npm', args, cwd, timeoutMs)
  if (out.code !== 0) throw new Error(`npm ${args.join(' ')} exited with ${out.code}:\n${out.stderr}`)
  const [result] = JSON.parse(out.stdout) as PackResult[]
  return result!.files.map((f) => f.path).sort()
}

/**
 * A checkout as a fresh clone has it: the files git tracks (and new ones not
 * ignored), no dist/, the repository's node_modules linked in.
 */
async function cleanCheckout(): Promise<string> {
  const dir = await makeTempDir('edge-gw-clean-checkout-')
  const listed = await run(
    'git',
    ['ls-files', '-z', '--cached', '--others', '--exclude-standard'],
    ROOT,
    30_000,
  )
  if (listed.code !== 0) throw new Error(`git ls-files failed: ${listed.stderr}`)
  for (const path of listed.stdout.split('\0').filter(Boolean)) {
    // A tracked file deleted in the working tree is not part of the checkout being tested.
    if (!existsSync(join(ROOT, path))) continue
    await mkdir(dirname(join(dir, path)), { recursive: true })
    await copyFile(join(ROOT, path), join(dir, path))
  }
  await symlink(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir')
  return dir
}

/** Where Node would find `name` from the lock entry at `from` (`node_modules/a/node_modules/b`, or '' for the root). */
function resolveInLock(packages: Record<string, LockEntry>, from: string, name: string): string | undefined {
  let base = from
  for (;;) {
    const candidate = base === '' ? `node_modules/${name}` : `${base}/node_modules/${name}`
    if (packages[candidate]) return candidate
    if (base === '') return undefined
    const at = base.lastIndexOf('/node_modules/')
    base = at === -1 ? '' : base.slice(0, at)
  }
}

/**
 * What gets published: `npm pack` on the built tree (dist/ from `npm run
 * build`, which `npm test` runs first), then on a clean checkout, where the
 * `prepack` script has to build dist/ itself.
 */
describe('the npm package', () => {
  let files: string[]
  const dirs: string[] = []

  beforeAll(async () => {
    assertBuilt()
    files = await packList(ROOT, false, 60_000)
  }, 70_000)

  afterAll(async () => {
    for (const dir of dirs) await removeDir(dir)
  })

  it('holds the built CLI, its bin target, LICENSE, README, docs and the systemd unit, and nothing else', () => {
    expect(files).toContain('dist/cli/main.js')
    expect(files).toContain(posix.normalize(pkg.bin['edge-gateway']!))
    expect(files).toEqual(
      expect.arrayContaining([
        'LICENSE',
        'README.md',
        'package.json',
        'docs/configuration.md',
        'deploy/edge-gateway.service',
        'deploy/edge-gateway.service.d/vpn.conf',
        'deploy/edge-gateway.service.d/vpn-watch.conf',
      ]),
    )
    // No tests, bench, state (lab-state/, keys, queues, logs) or sources outside dist/.
    const unexpected = files.filter(
      (f) => !['LICENSE', 'README.md', 'package.json'].includes(f) && !/^(dist|docs|deploy)\//.test(f),
    )
    expect(unexpected).toEqual([])
    expect(files.filter((f) => /\.(pem|key|psk|log)$|(^|\/)(test|lab-state|state)\//.test(f))).toEqual([])
  })

  it('names in `files` only what exists, and each entry ships something', () => {
    for (const entry of pkg.files) {
      expect(existsSync(join(ROOT, entry)), `package.json files names ${entry}, which does not exist`).toBe(
        true,
      )
      const shipped = statSync(join(ROOT, entry)).isDirectory()
        ? files.some((f) => f.startsWith(`${entry}/`))
        : files.includes(entry)
      expect(shipped, `${entry} is in files but npm pack ships nothing of it`).toBe(true)
    }
  })

  it('carries the Apache License 2.0 the package declares, with its copyright line', async () => {
    expect(pkg.license).toBe('Apache-2.0')
    const text = await readFile(join(ROOT, 'LICENSE'), 'utf8')
    expect(text.startsWith('Copyright 2026 The edge-gateway authors\n')).toBe(true)
    expect(text).toContain('Apache License\n                           Version 2.0, January 2004')
    expect(text).toContain('END OF TERMS AND CONDITIONS')
  })

  it('ships no source map whose sources are missing: each source is in the package or inlined', async () => {
    const maps = files.filter((f) => f.endsWith('.map'))
    expect(maps.length).toBeGreaterThan(0)
    const incomplete: string[] = []
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(await readFile(join(ROOT, map), 'utf8')) as {
        sources: string[]
        sourcesContent?: Array<string | null>
      }
      sources.forEach((source, i) => {
        const shipped = files.includes(posix.join(posix.dirname(map), source))
        if (!shipped && typeof sourcesContent?.[i] !== 'string') incomplete.push(`${map}: ${source}`)
      })
    }
    expect(incomplete).toEqual([])
  })

  it('is built by prepack on a clean checkout, which has no dist/', async () => {
    const dir = await cleanCheckout()
    dirs.push(dir)
    expect(existsSync(join(dir, 'dist'))).toBe(false)
    const clean = await packList(dir, true, 180_000)
    expect(clean).toContain('dist/cli/main.js')
    expect(clean.filter((f) => f.endsWith('.map')).length).toBeGreaterThan(0)
    const outsideDist = (list: string[]) => list.filter((f) => !f.startsWith('dist/'))
    expect(outsideDist(clean)).toEqual(outsideDist(files))
  }, 200_000)

  it('installs from its tarball alone, offline: no dependency to fetch, and the installed CLI checks a config', async () => {
    // The CLI is one bundle (scripts/bundle.mjs): what it runs is in dist/bin, so the package
    // depends on nothing a Pi would have to fetch, resolve afresh or run install scripts for.
    expect((pkg as { dependencies?: Record<string, string> }).dependencies ?? {}).toEqual({})
    const dir = await makeTempDir('edge-gw-offline-install-')
    dirs.push(dir)
    const packed = await run(
      'npm',
      ['pack', '--ignore-scripts', '--silent', '--pack-destination', dir],
      ROOT,
      120_000,
    )
    expect(packed.code, packed.stderr).toBe(0)
    const tarball = join(dir, packed.stdout.trim().split('\n').pop()!)
    const prefix = join(dir, 'prefix')
    const installed = await run(
      'npm',
      [
        'install',
        '--global',
        '--prefix',
        prefix,
        '--offline',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        tarball,
      ],
      dir,
      120_000,
    )
    expect(installed.code, installed.stderr).toBe(0)
    expect(await readdir(join(prefix, 'lib', 'node_modules'))).toEqual(['edge-gateway'])
    expect(existsSync(join(prefix, 'lib', 'node_modules', 'edge-gateway', 'node_modules'))).toBe(false)

    // A config checked by the installed command: its schema (zod), YAML, policies and key files load.
    const pki = await mintLabPki(join(dir, 'pki'))
    await writeFile(
      join(dir, 'gateway.yaml'),
      [
        'gateway: { id: offline-1 }',
        'lan: { listeners: [{ type: tcp, host: 127.0.0.1, port: 1883 }] }',
        'devices: []',
        `cloud: { host: 127.0.0.1, caFile: ${pki.caFile}, certFile: ${pki.clientCertFile}, keyFile: ${pki.clientKeyFile}, topics: [{ local: devices/, cloud: gw/ }] }`,
        '',
      ].join('\n'),
    )
    const check = await run(
      process.execPath,
      [
        join(prefix, 'lib', 'node_modules', 'edge-gateway', pkg.bin['edge-gateway']!),
        'policy',
        'check',
        '-c',
        join(dir, 'gateway.yaml'),
      ],
      dir,
      60_000,
    )
    expect(check, check.stderr).toMatchObject({
      code: 0,
      stdout: 'ok: 0 device(s), 1 rule(s), denied PUBLISH: disconnect\n',
    })
  }, 300_000)

  it('has a lock file that npm install leaves as it is (every dependency of every locked package is in it)', async () => {
    const lockText = await readFile(join(ROOT, 'package-lock.json'), 'utf8')
    const { packages } = JSON.parse(lockText) as { packages: Record<string, LockEntry> }
    const missing: string[] = []
    for (const [at, entry] of Object.entries(packages)) {
      const deps = {
        ...entry.dependencies,
        ...entry.optionalDependencies,
        ...(at === '' ? entry.devDependencies : {}),
      }
      for (const name of Object.keys(deps)) {
        if (resolveInLock(packages, at, name) === undefined) missing.push(`${at || '(root)'} -> ${name}`)
      }
    }
    // A missing entry (biome's optional platform packages were) is what npm install adds on a fresh clone.
    expect(missing).toEqual([])

    // And npm itself, asked to bring the lock up to date from package.json, writes the same bytes.
    const dir = await makeTempDir('edge-gw-lock-')
    dirs.push(dir)
    await copyFile(join(ROOT, 'package.json'), join(dir, 'package.json'))
    await writeFile(join(dir, 'package-lock.json'), lockText)
    const out = await run(
      'npm',
      ['install', '--package-lock-only', '--ignore-scripts', '--offline', '--no-audit', '--no-fund'],
      dir,
      60_000,
    )
    expect(out.code, out.stderr).toBe(0)
    expect(await readFile(join(dir, 'package-lock.json'), 'utf8')).toBe(lockText)
  }, 70_000)
})
