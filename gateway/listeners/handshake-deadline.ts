import type { Socket } from 'node:net'
import type { Server, TLSSocket } from 'node:tls'

/** Node's own handshake timeout, set past the deadline: a backstop only. */
export const nodeHandshakeTimeout = (deadlineMs: number) => deadlineMs + 1000

/**
 * Closes a TLS connection whose handshake has not finished `deadlineMs` after
 * its TCP connection was accepted, and reports it. Node's `handshakeTimeout`
 * alone is not enough: it only logs (the socket stays open), and it is an idle
 * timeout, which a client sending a byte now and then never reaches.
 * A connection is known by its remote address and port while it lives.
 */
export function enforceHandshakeDeadline(
  server: Server,
  deadlineMs: number,
  onTimeout: (remoteAddress: string) => void,
): void {
  const pending = new Map<string, NodeJS.Timeout>()
  const keyOf = (s: Socket) => `${s.remoteAddress}|${s.remotePort}`
  server.on('connection', (raw: Socket) => {
    const key = keyOf(raw)
    const remoteAddress = raw.remoteAddress ?? 'unknown'
    clearTimeout(pending.get(key))
    const timer = setTimeout(() => {
      pending.delete(key)
      // Closed meanwhile (a failed handshake, the client left): nothing to do.
      if (raw.destroyed) return
      onTimeout(remoteAddress)
      raw.destroy()
    }, deadlineMs)
    timer.unref()
    pending.set(key, timer)
  })
  server.on('secureConnection', (socket: TLSSocket) => {
    const key = keyOf(socket)
    clearTimeout(pending.get(key))
    pending.delete(key)
  })
  server.on('close', () => {
    for (const timer of pending.values()) clearTimeout(timer)
    pending.clear()
  })
}
