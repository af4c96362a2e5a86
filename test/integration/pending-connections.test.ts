import { connect as netConnect, type Socket } from 'node:net'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { series } from '../../core/metrics.js'
import { LanFixture, PSK_DEVICE } from '../gateway/protocol/lan-fixture.js'
import { pskConnack } from './clients.js'

const PER_ADDRESS = 16
const TOTAL = 40
const HANDSHAKE_MS = 1500

interface Held {
  socket: Socket
  /** Resolves with ms from connect to close. */
  closed: Promise<number>
}

/** Polls (bounded) until `condition` holds. */
async function eventually(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

/** A TCP connection from `localAddress` that never sends a byte; resolves once established. */
function idle(port: number, localAddress: string): Promise<Held> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port, localAddress })
    socket.on('error', () => undefined)
    socket.once('connect', () => {
      const start = performance.now()
      resolve({
        socket,
        closed: new Promise((r) => socket.once('close', () => r(performance.now() - start))),
      })
    })
    socket.once('error', reject)
  })
}

/** The PSK device's CONNECT over TLS-PSK from `localAddress`: its CONNACK code, or 'closed'. */
const pskConnect = (port: number, localAddress: string, clientId: string) =>
  pskConnack(
    port,
    { identity: PSK_DEVICE.identity, key: Buffer.from(PSK_DEVICE.keyHex, 'hex') },
    clientId,
    localAddress,
  )

/**
 * lan.pendingConnections: connections accepted but not yet authenticated are
 * bounded per source address and in all; one past a bound is closed as it is
 * accepted (no TLS state is made for it), reported as `connection_refused`.
 * Authenticated devices do not count.
 */
describe('unauthenticated connections are bounded per address and in all', () => {
  let gw: LanFixture
  const held: Held[] = []
  const pending = () => gw.metrics.get('lan_pending_connections')
  const refusedCount = () => gw.metrics.get(series('security_events_total', { event: 'connection_refused' }))
  const refusedLines = (reason: string) =>
    gw.logs.events('connection_refused').filter((r) => r.reason === reason)

  beforeAll(async () => {
    gw = await LanFixture.start({
      pendingConnections: { perAddress: PER_ADDRESS, total: TOTAL },
      timeouts: { handshakeMs: HANDSHAKE_MS },
    })
  })

  afterEach(async () => {
    for (const h of held.splice(0)) h.socket.destroy()
    await eventually(async () => (await gw.connections()) === 0 && pending() === 0, 'no connection left')
  })

  afterAll(async () => {
    await gw?.stop()
  })

  it.each(['tls-psk', 'tcp', 'tls'] as const)(
    'on the %s listener, one address holds at most perAddress; the rest are closed at once; another address is served',
    async (type) => {
      const before = refusedLines('pending_per_address').length
      const address = type === 'tls-psk' ? '127.0.0.21' : type === 'tcp' ? '127.0.0.22' : '127.0.0.23'
      const opened = await Promise.all(
        Array.from({ length: PER_ADDRESS + 10 }, () => idle(gw.port(type), address)),
      )
      held.push(...opened)
      // The 10 past the bound are closed long before any handshake or CONNECT deadline.
      const closedAfter = await Promise.all(
        opened.map((h) =>
          Promise.race([h.closed, new Promise<number>((r) => setTimeout(() => r(-1), 1000))]),
        ),
      )
      const closedEarly = closedAfter.filter((ms) => ms >= 0)
      expect(closedEarly.length).toBe(10)
      for (const ms of closedEarly) expect(ms).toBeLessThan(HANDSHAKE_MS / 2)
      expect(await gw.connections()).toBe(PER_ADDRESS)
      expect(pending()).toBe(PER_ADDRESS)
      const lines = refusedLines('pending_per_address').slice(before)
      expect(lines.length).toBe(10)
      expect(lines[0]).toMatchObject({ remoteAddress: address, listener: expect.any(String) })
      // A device at another address is not affected.
      const device = await pskConnect(gw.port('tls-psk'), '127.0.0.30', `psk-dev-${type}`)
      expect(device.code).toBe(0)
      device.socket.destroy()
    },
  )

  it('the slots come back when the held connections close: the same address then connects', async () => {
    const opened = await Promise.all(
      Array.from({ length: PER_ADDRESS }, () => idle(gw.port('tls-psk'), '127.0.0.24')),
    )
    held.push(...opened)
    const blocked = await pskConnect(gw.port('tls-psk'), '127.0.0.24', 'psk-dev-blocked')
    expect(blocked.code).toBe('closed')
    // The handshake deadline closes the idle ones; their slots are given back.
    await Promise.all(opened.map((h) => h.closed))
    await eventually(() => pending() === 0, 'slots given back')
    const device = await pskConnect(gw.port('tls-psk'), '127.0.0.24', 'psk-dev-after')
    expect(device.code).toBe(0)
    device.socket.destroy()
  })

  it('authenticated devices give their slot back: an address with more devices than perAddress is served', async () => {
    const devices = []
    for (let i = 0; i < PER_ADDRESS + 4; i++) {
      const device = await pskConnect(gw.port('tls-psk'), '127.0.0.25', `psk-dev-many-${i}`)
      expect(device.code, `device ${i}`).toBe(0)
      devices.push(device.socket)
    }
    await eventually(() => pending() === 0, 'slots given back at authentication')
    expect(await gw.connections()).toBe(PER_ADDRESS + 4)
    for (const s of devices) s.destroy()
  })

  it('over every address at most `total` are held; past it `pending_total`', async () => {
    const before = refusedLines('pending_total').length
    const addresses = ['127.0.0.26', '127.0.0.27', '127.0.0.28']
    for (const address of addresses) {
      held.push(
        ...(await Promise.all(Array.from({ length: PER_ADDRESS }, () => idle(gw.port('tcp'), address)))),
      )
    }
    await eventually(
      () => refusedLines('pending_total').length - before === 3 * PER_ADDRESS - TOTAL,
      'refusals',
    )
    expect(await gw.connections()).toBe(TOTAL)
    expect(pending()).toBe(TOTAL)
    expect(refusedCount()).toBeGreaterThanOrEqual(3 * 10 + 3 * PER_ADDRESS - TOTAL)
  })
})
