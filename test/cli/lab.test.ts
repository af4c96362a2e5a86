import { createServer } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import { onLines, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { spawnCli } from './run-cli.js'

/** Finds a base port with the two ports after it free too (the lab uses three in a row). */
async function threeFreePorts(): Promise<number> {
  const tryListen = (port: number) =>
    new Promise<boolean>((resolve) => {
      const server = createServer()
      server.once('error', () => resolve(false))
      server.listen({ host: '127.0.0.1', port }, () => server.close(() => resolve(true)))
    })
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20_000 + Math.floor(Math.random() * 40_000)
    if ((await tryListen(base)) && (await tryListen(base + 1)) && (await tryListen(base + 2))) return base
  }
  throw new Error('no three consecutive free ports on 127.0.0.1')
}

describe('edge-gateway lab', () => {
  let dir: string | undefined

  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it('starts on loopback and prints messages arriving at the cloud side within 10 seconds', async () => {
    dir = await makeTempDir('edge-gw-lab-')
    const base = await threeFreePorts()
    const started = Date.now()
    const child = spawnCli(['lab', '--state-dir', dir, '--base-port', String(base), '--duration', '60'])
    const lines: string[] = []
    let firstArrivalMs: number | undefined
    onLines(child.stdout, (line) => {
      lines.push(line)
      if (firstArrivalMs === undefined && line.startsWith('cloud <- gateways/'))
        firstArrivalMs = Date.now() - started
    })
    const stderr: string[] = []
    onLines(child.stderr, (line) => stderr.push(line))
    try {
      const deadline = started + 10_000
      while (firstArrivalMs === undefined && Date.now() < deadline && child.exitCode === null) {
        await new Promise((r) => setTimeout(r, 50))
      }
      const context = `stdout:\n${lines.join('\n')}\nstderr:\n${stderr.join('\n')}`
      expect(firstArrivalMs, context).toBeDefined()
      expect(firstArrivalMs!, context).toBeLessThanOrEqual(10_000)
      const output = lines.join('\n')
      expect(output).toContain(`LAN TLS-PSK:                   127.0.0.1:${base + 1}`)
      expect(output).toContain('VPN: off in lab mode')
      expect(output).toMatch(
        /mosquitto_pub -h 127\.0\.0\.1 -p \d+ --psk [0-9a-f]{32} --psk-identity lab-psk /,
      )
      expect(output).toMatch(/^cloud <- gateways\/lab\/devices\/lab-(psk|pass)\/telemetry \{"n":1,/m)
      // The embedded cloud checked the gateway's key binding and the signature of each message.
      expect(output).toMatch(
        /^cloud <- \$gw\/lab\/binding: key binding for gateway lab verified against the lab CA$/m,
      )
      expect(output).toMatch(/signature verified, device lab-(psk|pass), gw-seq \d+\)$/m)
      expect(output).not.toMatch(/REFUSED/)
    } finally {
      const exit = await terminate(child)
      // Ctrl-C (SIGTERM here) stops it cleanly.
      expect(exit.code).toBe(0)
      expect(lines.at(-1)).toBe('edge-gateway lab: stopped')
    }
  })
})
