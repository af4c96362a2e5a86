/**
 * `observability.tokenFile`: every request to /metrics, /healthz and the status page must carry the
 * file's bearer token. A request without it or with another gets 401, counted and logged as the
 * security event `observability_refused` with the address, never with what was presented; an empty
 * or short token file stops the start (test/cli/config-errors.test.ts), so it cannot turn the check
 * off. A real `edge-gateway start`, its cloud away (absentCloud): the HTTP side does not need it.
 */
import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { hashPassword } from '../../gateway/index.js'
import { writeSecretFile } from '../../pki/index.js'
import { freePort } from '../helpers/ports.js'
import { terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { waitUntil } from '../integration/harness.js'
import { absentCloud, type StartedGateway, startGatewayCli } from './run-cli.js'

describe('observability.tokenFile: a bearer token on every request', () => {
  let dir: string
  let gateway: StartedGateway
  let httpPort: number
  const token = randomBytes(32).toString('hex')
  const get = (path: string, authorization?: string) =>
    fetch(`http://127.0.0.1:${httpPort}${path}`, {
      headers: authorization === undefined ? {} : { authorization },
    })

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-obs-token-')
    httpPort = await freePort()
    // White space around the token in the file is not part of it (a trailing newline from `echo`).
    await writeSecretFile(join(dir, 'metrics.token'), `  ${token}\n`)
    const config = {
      gateway: { id: 'gw-token', stateDir: join(dir, 'state') },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: await freePort() }] },
      devices: [{ id: 'good', username: 'good', passwordHash: await hashPassword('a-password-long-enough') }],
      cloud: await absentCloud(dir),
      observability: { listen: `127.0.0.1:${httpPort}`, tokenFile: 'metrics.token' },
    }
    await writeFile(join(dir, 'gateway.yaml'), stringify(config), { mode: 0o600 })
    gateway = await startGatewayCli(join(dir, 'gateway.yaml'))
  }, 60_000)

  afterAll(async () => {
    if (gateway) await terminate(gateway.child)
    if (dir) await removeDir(dir)
  })

  it('answers the token holder, refuses anyone else with 401 and reports each refusal with the address', async () => {
    const refused = [
      await get('/metrics'),
      await get('/healthz', 'Bearer '),
      await get('/', `Bearer ${token.slice(0, -1)}x`),
      await get('/metrics', `Bearer ${token}${token}`),
      await get('/metrics', token),
    ]
    expect(refused.map((r) => r.status)).toEqual([401, 401, 401, 401, 401])
    expect(await refused[0]!.text()).toBe('a bearer token is needed\n')

    const metrics = await get('/metrics', `Bearer ${token}`)
    expect(metrics.status).toBe(200)
    const text = await metrics.text()
    expect(text).toContain('security_events_total{event="observability_refused"} 5')
    expect((await get('/healthz', `Bearer ${token}`)).status).toBe(503) // the cloud is away
    expect((await get('/', `Bearer ${token}`)).status).toBe(200)

    const events = gateway.logs.filter((l) => l.event === 'observability_refused')
    expect(events.map((l) => [l.reason, l.path, l.remoteAddress, l.security])).toEqual([
      ['no_token', '/metrics', '127.0.0.1', true],
      ['no_token', '/healthz', '127.0.0.1', true],
      ['wrong_token', '/', '127.0.0.1', true],
      ['wrong_token', '/metrics', '127.0.0.1', true],
      ['no_token', '/metrics', '127.0.0.1', true],
    ])
    const logText = JSON.stringify(gateway.logs)
    expect(logText).not.toContain(token.slice(0, 16))
  })

  it('checks the token before the method: a POST without it is a 401, reported like the others', async () => {
    const before = gateway.logs.filter((l) => l.event === 'observability_refused').length
    const post = await fetch(`http://127.0.0.1:${httpPort}/metrics`, { method: 'POST', body: 'x' })
    expect(post.status).toBe(401)
    await waitUntil(
      () => gateway.logs.filter((l) => l.event === 'observability_refused').length > before,
      5_000,
      'the refusal reported',
    )
    expect(
      (
        await fetch(`http://127.0.0.1:${httpPort}/metrics`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}` },
        })
      ).status,
    ).toBe(405)
  })

  it('drops a client that dribbles its headers once they took 5 s (checked every second)', async () => {
    const socket = connect(httpPort, '127.0.0.1')
    await once(socket, 'connect')
    const started = Date.now()
    socket.write('GET /metrics HTTP/1.1\r\nHost: x\r\n')
    let reply = ''
    socket.on('data', (chunk: Buffer) => {
      reply += chunk.toString()
    })
    // One header byte every 200 ms, never the blank line that ends them; bounded at 20 s.
    const dribble = setInterval(() => {
      if (!socket.destroyed && Date.now() - started < 20_000) socket.write('X')
    }, 200)
    try {
      await once(socket, 'close')
    } finally {
      clearInterval(dribble)
    }
    const heldMs = Date.now() - started
    expect(reply).toMatch(/^HTTP\/1\.1 408 /)
    // 5 s of headers, then at most one check interval (1 s): not Node's default 30 s.
    expect(heldMs).toBeGreaterThanOrEqual(5_000)
    expect(heldMs).toBeLessThan(8_000)
  }, 30_000)
})
