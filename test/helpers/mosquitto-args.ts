/** Options shared by the mosquitto_pub and mosquitto_sub wrappers. */
export interface MosquittoClientConnection {
  host: string
  port: number
  qos?: 0 | 1 | 2
  /** TLS with a CA file: add certFile/keyFile for mutual TLS. */
  caFile?: string
  certFile?: string
  keyFile?: string
  /** TLS-PSK; the key is hex. It goes on argv: fine for lab keys, never for real ones. */
  psk?: { identity: string; keyHex: string }
  tlsVersion?: 'tlsv1.2' | 'tlsv1.3'
  clientId?: string
  username?: string
  password?: string
}

/** argv for the connection options, in the order the man page lists them. Pure. */
export function connectionArgs(opts: MosquittoClientConnection): string[] {
  const args = ['-h', opts.host, '-p', String(opts.port)]
  if (opts.qos !== undefined) args.push('-q', String(opts.qos))
  if (opts.clientId !== undefined) args.push('-i', opts.clientId)
  if (opts.username !== undefined) args.push('-u', opts.username)
  if (opts.password !== undefined) args.push('-P', opts.password)
  if (opts.caFile !== undefined) args.push('--cafile', opts.caFile)
  if (opts.certFile !== undefined) args.push('--cert', opts.certFile)
  if (opts.keyFile !== undefined) args.push('--key', opts.keyFile)
  if (opts.psk !== undefined) args.push('--psk', opts.psk.keyHex, '--psk-identity', opts.psk.identity)
  if (opts.tlsVersion !== undefined) args.push('--tls-version', opts.tlsVersion)
  return args
}
