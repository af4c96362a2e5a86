import { connect as tcpConnect } from 'node:net'
import { connect as tlsConnect } from 'node:tls'
import { CONNACK, connectPacket, PacketParser } from './mqtt-wire.mjs'

/** The TLS-PSK suite both systems are driven with (TLS 1.2, as constrained devices mostly speak). */
export const PSK_CIPHER = 'PSK-AES128-GCM-SHA256'

/**
 * Opens a socket to an endpoint with Nagle off: `tcp`, `psk` (TLS 1.2 PSK with
 * `psk: { identity, keyHex }`) or `mtls` (`tls: { ca, cert, key, servername }`).
 * Resolves once the TCP or TLS handshake is done.
 */
export function openSocket(endpoint, timeoutMs = 10_000) {
  return new Promise((resolve, reject) => {
    const { host, port } = endpoint
    // Each device its own loopback address when the caller gives one (a LAN host per device).
    const local = endpoint.localAddress ? { localAddress: endpoint.localAddress } : {}
    let socket
    const ready = () => {
      clearTimeout(timer)
      socket.setNoDelay(true)
      socket.off('error', fail)
      resolve(socket)
    }
    const fail = (err) => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    if (endpoint.transport === 'tcp') {
      socket = tcpConnect({ host, port, ...local }, ready)
    } else if (endpoint.transport === 'psk') {
      const psk = Buffer.from(endpoint.psk.keyHex, 'hex')
      socket = tlsConnect(
        {
          host,
          port,
          ...local,
          minVersion: 'TLSv1.2',
          maxVersion: 'TLSv1.2',
          ciphers: PSK_CIPHER,
          pskCallback: () => ({ identity: endpoint.psk.identity, psk }),
          checkServerIdentity: () => undefined,
        },
        ready,
      )
    } else if (endpoint.transport === 'mtls') {
      socket = tlsConnect({ host, port, ...endpoint.tls, rejectUnauthorized: true }, ready)
    } else {
      reject(new Error(`Expected transport tcp, psk or mtls, got ${String(endpoint.transport)}`))
      return
    }
    const timer = setTimeout(
      () => fail(new Error(`no connection to ${host}:${port} within ${timeoutMs} ms`)),
      timeoutMs,
    )
    socket.once('error', fail)
  })
}

/**
 * An MQTT session over `openSocket`: resolves after a CONNACK with return
 * code 0, with `{ socket, setHandler }`; `setHandler(fn)` receives every later
 * packet as `fn(type, flags, body)`.
 */
export async function connectMqtt(endpoint, options, timeoutMs = 10_000) {
  const socket = await openSocket(endpoint, timeoutMs)
  let handler = null
  const parser = new PacketParser((type, flags, body) => handler?.(type, flags, body))
  socket.on('data', (chunk) => parser.push(chunk))
  // After the handshake an error only ends the session: callers watch 'close'.
  socket.on('error', () => undefined)
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`no CONNACK within ${timeoutMs} ms`)), timeoutMs)
    const onClose = () => done(new Error('connection closed before CONNACK'))
    const onError = (err) => done(err)
    function done(err) {
      clearTimeout(timer)
      socket.off('close', onClose)
      socket.off('error', onError)
      handler = null
      if (err) {
        socket.destroy()
        reject(err)
      } else resolve()
    }
    handler = (type, _flags, body) => {
      if (type !== CONNACK) return
      const code = body[1]
      done(code === 0 ? undefined : new Error(`CONNACK refused the connection with return code ${code}`))
    }
    socket.once('close', onClose)
    socket.once('error', onError)
    socket.write(connectPacket(options))
  })
  return {
    socket,
    setHandler(fn) {
      handler = fn
    },
  }
}
