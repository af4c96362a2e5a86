import { mkdir } from 'node:fs/promises'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CloudLink } from '../../bridge/cloud-link.js'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'
import { type LabPki, mintLabPki } from '../../pki/index.js'
import { labLinkConfig } from '../helpers/cloud-link-config.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { freePort } from '../helpers/ports.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { waitUntil } from '../integration/harness.js'

/** The link's log records, parsed. */
class Records extends Writable {
  readonly lines: Array<Record<string, unknown>> = []
  override _write(chunk: Buffer, _encoding: string, done: () => void): void {
    for (const line of chunk.toString('utf8').split('\n')) {
      if (line.trim()) this.lines.push(JSON.parse(line) as Record<string, unknown>)
    }
    done()
  }
  warnings(): Array<Record<string, unknown>> {
    return this.lines.filter((r) => r.level === 40)
  }
}

/** A TCP relay to the broker whose client-side sockets can be reset (RST), as a middlebox or a crash would. */
class ResettingRelay {
  private constructor(
    private readonly server: Server,
    private readonly clients: Set<Socket>,
    readonly port: number,
  ) {}

  static async start(target: number): Promise<ResettingRelay> {
    const clients = new Set<Socket>()
    const server = createServer((client) => {
      clients.add(client)
      const upstream = connect({ host: '127.0.0.1', port: target })
      client.pipe(upstream).pipe(client)
      const closeBoth = () => {
        clients.delete(client)
        client.destroy()
        upstream.destroy()
      }
      client.on('close', closeBoth).on('error', closeBoth)
      upstream.on('close', closeBoth).on('error', closeBoth)
    })
    const port = await new Promise<number>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ host: '127.0.0.1', port: 0 }, () => {
        const address = server.address()
        resolve(typeof address === 'object' && address ? address.port : 0)
      })
    })
    return new ResettingRelay(server, clients, port)
  }

  /** Resets every connection the relay holds; returns how many. */
  reset(): number {
    const n = this.clients.size
    for (const c of this.clients) c.resetAndDestroy()
    return n
  }

  close(): Promise<void> {
    for (const c of this.clients) c.destroy()
    return new Promise((resolve) => this.server.close(() => resolve()))
  }
}

describe('cloud link logs: one line per failure, named by when it happened', () => {
  let dir: string
  let pki: LabPki
  let cloud: CloudMosquitto
  let relay: ResettingRelay
  const links: CloudLink[] = []

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-link-logs-')
    pki = await mintLabPki(join(dir, 'pki'))
    await mkdir(join(dir, 'cloud'), { mode: 0o700 })
    cloud = await CloudMosquitto.start({
      dir: join(dir, 'cloud'),
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
    })
    relay = await ResettingRelay.start(cloud.port)
  })

  afterAll(async () => {
    await Promise.all(links.map((l) => l.stop()))
    await relay?.close()
    await cloud?.stop()
    await removeDir(dir)
  })

  function startLink(port: number, records: Records, metrics = new Metrics()): CloudLink {
    const link = new CloudLink(
      labLinkConfig(pki, port),
      `link-logs-${links.length}`,
      createLogger({ level: 'debug', destination: records }),
      metrics,
    )
    links.push(link)
    return link
  }

  it('each failed connection attempt is logged once, with its cause and the retry', async () => {
    const port = await freePort()
    const records = new Records()
    const metrics = new Metrics()
    const link = startLink(port, records, metrics)
    await link.start()
    await waitUntil(() => records.warnings().length >= 4, 10_000, 'four failed attempts')
    await link.stop()
    const attempts = metrics.get('cloud_connect_attempts_total')
    const warnings = records.warnings()
    // One warning per failed attempt, numbered 1, 2, 3...; at most the last attempt was still
    // under way when the link stopped (and a stopped link logs nothing).
    expect([0, 1]).toContain(attempts - warnings.length)
    warnings.forEach((w, i) => {
      expect(w).toMatchObject({ phase: 'set-up', attempt: i + 1, code: 'ECONNREFUSED' })
      expect(w.msg).toBe(
        `the cloud broker at 127.0.0.1:${port} refused the connection (nothing listening?); retrying in ${w.retryInMs} ms (attempt ${i + 1} failed)`,
      )
    })
    // The raw error is at debug only: no second line at info or above.
    expect(records.lines.filter((r) => (r.level as number) >= 30 && !('retryInMs' in r))).toEqual([])
  })

  it('a reset of an established link is logged once as a reset of that link, not as a set-up failure', async () => {
    const records = new Records()
    const metrics = new Metrics()
    const link = startLink(relay.port, records, metrics)
    await link.start()
    await waitUntil(() => link.state$.value.status === 'connected', 10_000, 'link up')
    expect(relay.reset()).toBe(1)
    await waitUntil(() => records.warnings().length >= 1, 10_000, 'the reset logged')
    await waitUntil(
      () => records.lines.filter((r) => r.msg === 'cloud link up').length === 2,
      10_000,
      'link up again',
    )
    const warnings = records.warnings()
    expect(warnings).toHaveLength(1)
    expect(warnings[0]).toMatchObject({ phase: 'established', code: 'ECONNRESET', err: 'read ECONNRESET' })
    expect(warnings[0]!.msg).toBe(
      `cloud link down: the established connection to the cloud broker at 127.0.0.1:${relay.port} was reset (read ECONNRESET); reconnecting in ${warnings[0]!.retryInMs} ms`,
    )
    expect(JSON.stringify(records.lines)).not.toContain('during set-up')
    expect(metrics.get('cloud_disconnects_total')).toBe(1)
  })
})
