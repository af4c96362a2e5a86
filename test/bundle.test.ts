import { execFile } from 'node:child_process'
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { build } from 'esbuild'
import { beforeAll, describe, expect, it } from 'vitest'
import { debugOffWhenUnset } from '../scripts/bundle-plugins.mjs'
import { assertBuilt } from './cli/run-cli.js'
import { makeTempDir, removeDir } from './helpers/tmp.js'

const BIN = fileURLToPath(new URL('../dist/bin/', import.meta.url))

async function jsFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) out.push(...(await jsFiles(join(dir, entry.name), `${prefix}${entry.name}/`)))
    else if (entry.name.endsWith('.js')) out.push(`${prefix}${entry.name}`)
  }
  return out.sort()
}

/** The bundle scripts/bundle.mjs makes from tsc's output (dist/bin/), as `npm run build` leaves it. */
describe('the bundled CLI (dist/bin)', () => {
  let files: string[]

  beforeAll(async () => {
    assertBuilt()
    files = await jsFiles(BIN)
  })

  it('is ASCII throughout, so V8 keeps each file text it holds at one byte per character', async () => {
    const wide: string[] = []
    for (const file of files) {
      const bytes = await readFile(join(BIN, file))
      const at = bytes.findIndex((b) => b > 0x7f)
      if (at >= 0)
        wide.push(`${file} at byte ${at}: ${JSON.stringify(bytes.subarray(at - 20, at + 10).toString())}`)
    }
    expect(wide).toEqual([])
  })

  it('starts with the Node options the launchers give (`#!` line, npm run lab, the README)', async () => {
    const option = '--max-semi-space-size=2'
    const entry = await readFile(join(BIN, 'edge-gateway.js'), 'utf8')
    expect(entry.slice(0, entry.indexOf('\n'))).toBe(`#!/usr/bin/env -S node ${option}`)
    const root = fileURLToPath(new URL('../', import.meta.url))
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>
    }
    expect(pkg.scripts.lab).toContain(`node ${option} dist/bin/edge-gateway.js lab`)
    const readme = await readFile(join(root, 'README.md'), 'utf8')
    expect(readme).toContain(`node ${option} dist/bin/edge-gateway.js start --config`)
    // The systemd unit runs `node <script>`, not through the `#!` line: NODE_OPTIONS carries it.
    const unit = await readFile(join(root, 'deploy', 'edge-gateway.service'), 'utf8')
    expect(unit.split('\n')).toContain(`Environment="NODE_OPTIONS=--max-old-space-size=512 ${option}"`)
  })

  it('runs as a gateway with the old generation bounded as the launchers bound it (lab, README, systemd unit, bench)', async () => {
    const option = '--max-old-space-size=512'
    const heap = `NODE_OPTIONS=${option}`
    const root = fileURLToPath(new URL('../', import.meta.url))
    // The bench starts its gateways as the launchers do.
    expect(await readFile(join(root, 'bench', 'lib', 'gateway.mjs'), 'utf8')).toContain(
      `export const LAUNCHER_NODE_OPTIONS = '${option}'`,
    )
    const pkg = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>
    }
    expect(pkg.scripts.lab).toContain(`${heap} node `)
    expect(await readFile(join(root, 'README.md'), 'utf8')).toContain(`${heap} node `)
    const unit = await readFile(join(root, 'deploy', 'edge-gateway.service'), 'utf8')
    expect(unit.split('\n')).toContain(`Environment="${heap} --max-semi-space-size=2"`)
  })

  it('lists in contents.json every file it holds, with the packages in it', async () => {
    const contents = JSON.parse(await readFile(join(BIN, 'contents.json'), 'utf8')) as Record<
      string,
      { packages: string[]; packageFiles: string[]; project: string[] }
    >
    expect(Object.keys(contents).sort()).toEqual(files)
    expect(contents['edge-gateway.js']!.packages).toEqual(['commander'])
    expect(contents['edge-gateway.js']!.project).toContain('cli/main.js')
    const packages = Object.values(contents).flatMap((c) => c.packages)
    // pino-pretty stays outside: core/logger.ts loads it from node_modules only for a terminal.
    expect(packages).toContain('pino')
    expect(packages).not.toContain('pino-pretty')
    // Left out (scripts/bundle.mjs, unusedCodeOut): mqtt.js's WebSocket transport. Its SOCKS
    // support stays: MQTTJS_SOCKS_PROXY sends an mqtts connection through it.
    expect(packages).not.toContain('ws')
    expect(packages).toContain('socks')
    // rxjs from its ES module build, which lets the bundle keep only the operators used.
    const rxjs = Object.values(contents).flatMap((c) => c.packageFiles.filter((f) => f.startsWith('rxjs/')))
    expect(rxjs.length).toBeGreaterThan(0)
    expect(rxjs.filter((f) => !f.startsWith('rxjs/dist/esm/'))).toEqual([])
  })

  it("says what was left out if mqtt.js ever reaches for it, and keeps zod's English messages alone", async () => {
    const text = (await Promise.all(files.map((f) => readFile(join(BIN, f), 'utf8')))).join('\n')
    expect(text).toContain(
      'edge-gateway is built without the package ws (scripts/bundle.mjs): its cloud link speaks mqtts, not MQTT over WebSocket',
    )
    // zod's locale files each define a message table; English (the default) stays.
    expect(text).toContain('Invalid input')
    expect(text).not.toContain('Entrada inv')
  })
})

describe("the bundle's `debug` for mqtt.js and mqtt-packet (scripts/bundle-plugins.mjs)", () => {
  const root = fileURLToPath(new URL('../', import.meta.url))

  /**
   * Bundles, with the plugin, a module that sits where the plugin looks (a `node_modules/mqtt-packet`
   * folder) and hands its `debug` on, then runs it: what a logger is, with and without DEBUG.
   */
  async function loggerSeen(env: NodeJS.ProcessEnv): Promise<{ namespace: string; enabled: boolean }> {
    const dir = await makeTempDir('debug-off-')
    try {
      await mkdir(join(dir, 'node_modules', 'mqtt-packet'), { recursive: true })
      await writeFile(
        join(dir, 'node_modules', 'mqtt-packet', 'probe.js'),
        "module.exports = require('debug')\n",
      )
      await writeFile(
        join(dir, 'entry.js'),
        "const log = require('./node_modules/mqtt-packet/probe.js')('mqtt-packet:probe')\n" +
          'console.log(JSON.stringify({ namespace: log.namespace, enabled: log.enabled }))\n',
      )
      const out = join(dir, 'out.cjs')
      await build({
        entryPoints: [join(dir, 'entry.js')],
        outfile: out,
        bundle: true,
        platform: 'node',
        format: 'cjs',
        logLevel: 'silent',
        plugins: [debugOffWhenUnset(root)],
      })
      const { DEBUG: _unset, ...rest } = process.env
      const { stdout } = await promisify(execFile)(process.execPath, [out], { env: { ...rest, ...env } })
      return JSON.parse(stdout) as { namespace: string; enabled: boolean }
    } finally {
      await removeDir(dir)
    }
  }

  it('is a logger that does nothing when DEBUG is unset, and the debug package when it is set', async () => {
    expect(await loggerSeen({})).toEqual({ namespace: '', enabled: false })
    expect(await loggerSeen({ DEBUG: 'mqtt-packet:*' })).toEqual({
      namespace: 'mqtt-packet:probe',
      enabled: true,
    })
  })
})
