/**
 * Attacks from a LAN host that holds no credentials: sockets that never finish
 * a TLS handshake, and CONNECT packets announcing far more than they send.
 * Each runs until `ctx.deadline` (performance.now() ms) and registers every
 * socket with `ctx.track`, so the runner closes what is left.
 */
import { connect as tcpConnect } from 'node:net'
import { openFileLimits } from './monitor.mjs'
import { fixedHeader, openTcp, sleep, writeAll } from './wire.mjs'

/** File descriptors the attacker keeps for itself (IPC, other sockets) below its limit. */
const FD_RESERVE = 200

/**
 * (1) `count` TCP connections to the TLS-PSK port that never send a byte (no
 * ClientHello), opened `concurrency` at a time, held until the deadline.
 * Reports how many opened, how many the gateway closed and when the first was.
 */
export async function idleTls(ctx, { count: wanted, concurrency = 100 }) {
  // Node raises its own soft limit to the hard one at start; what is left is the hard limit.
  const limits = openFileLimits()
  const count = limits?.soft ? Math.min(wanted, limits.soft - FD_RESERVE) : wanted
  const r = {
    wanted,
    attackerFileLimits: limits,
    target: count,
    opened: 0,
    failed: 0,
    errors: {},
    closedByGateway: 0,
    firstClosedAfterMs: null,
  }
  const started = performance.now()
  let next = 0
  const openOne = () =>
    new Promise((resolve) => {
      const socket = tcpConnect({ host: '127.0.0.1', port: ctx.pskPort, localAddress: ctx.address })
      ctx.track(socket)
      let connected = false
      socket.once('connect', () => {
        connected = true
        r.opened++
        resolve()
      })
      socket.on('error', (err) => {
        if (!connected) {
          r.failed++
          r.errors[err.code ?? err.message] = (r.errors[err.code ?? err.message] ?? 0) + 1
          resolve()
        }
      })
      socket.once('close', () => {
        if (!connected || ctx.closing) return
        r.closedByGateway++
        r.firstClosedAfterMs ??= Math.round(performance.now() - started)
      })
      setTimeout(resolve, 5_000).unref()
    })
  const worker = async () => {
    while (next < count && performance.now() < ctx.deadline) {
      next++
      await openOne()
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  r.openMs = Math.round(performance.now() - started)
  await sleep(Math.max(0, ctx.deadline - performance.now()))
  r.stillOpenAtEnd = r.opened - r.closedByGateway
  return r
}

/** The first bytes of a CONNECT (MQTT 3.1.1, clean session) whose client id announces 65,535 bytes. */
function connectStart(remaining) {
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 60, 0xff, 0xff])
  return Buffer.concat([fixedHeader(0x10, remaining), variable])
}

/**
 * (2) `connections` sockets on the plain port, each announcing a CONNECT of
 * `announcedBytes` and then sending `sendBytes` of it (64 KiB writes, as fast
 * as the gateway reads), held open until the deadline.
 */
export async function bigConnect(ctx, { connections, announcedBytes, sendBytes }) {
  const chunk = Buffer.alloc(64 * 1024, 0x61)
  const one = async () => {
    const c = { written: 0, closedByGateway: false, closedAfterBytes: null, error: null }
    let socket
    try {
      socket = await openTcp(ctx.tcpPort, ctx.address)
    } catch (err) {
      c.error = err.message
      return c
    }
    ctx.track(socket)
    socket.once('close', () => {
      if (ctx.closing) return
      c.closedByGateway = true
      c.closedAfterBytes = c.written
    })
    socket.on('data', () => undefined)
    const first = connectStart(announcedBytes)
    const pastDeadline = sleep(Math.max(0, ctx.deadline - performance.now())).then(() => false)
    let ok = await Promise.race([writeAll(socket, first), pastDeadline])
    if (ok) c.written += first.length
    while (ok && c.written < sendBytes && performance.now() < ctx.deadline) {
      const part = chunk.subarray(0, Math.min(chunk.length, sendBytes - c.written))
      ok = await Promise.race([writeAll(socket, part), pastDeadline])
      if (ok) c.written += part.length
    }
    await pastDeadline
    return c
  }
  const each = await Promise.all(Array.from({ length: connections }, one))
  return {
    connections,
    announcedBytes,
    sendBytes,
    bytesWritten: each.reduce((a, c) => a + c.written, 0),
    closedByGateway: each.filter((c) => c.closedByGateway).length,
    closedAfterBytes: each.map((c) => c.closedAfterBytes),
    errors: each.filter((c) => c.error).map((c) => c.error),
  }
}
