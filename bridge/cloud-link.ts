import { readFile } from 'node:fs/promises'
import { isIP } from 'node:net'
import {
  checkServerIdentity,
  type PeerCertificate,
  type SecureVersion,
  connect as tlsConnect,
} from 'node:tls'
import mqtt, { type IClientOptions, type IConnackPacket, type MqttClient } from 'mqtt'
import { BehaviorSubject } from 'rxjs'
import type { CloudConfig } from '../config/index.js'
import type { Logger } from '../core/logger.js'
import type { Metrics } from '../core/metrics.js'
import { settledWithin } from '../core/settled-within.js'
import { Backoff } from './backoff.js'
import { CloudSession } from './cloud-session.js'
import { BridgeError } from './errors.js'
import { limitInboundPackets, MAX_CLOUD_PACKET_BYTES } from './inbound-size.js'
import { describeLinkError, type LinkPhase, linkErrorMessage } from './link-errors.js'

/**
 * TLS name options for the cloud broker's `servername` (or host): a DNS name is sent as SNI and
 * checked against the certificate; an IP address is never sent as SNI (RFC 6066 forbids it, and
 * Node warns with DEP0123) but is still what the certificate must name.
 */
export function tlsNameOptions(
  host: string,
  servername: string | undefined,
):
  | { servername: string }
  | { checkServerIdentity: (host: string, cert: PeerCertificate) => Error | undefined } {
  const name = servername ?? host
  if (isIP(name) === 0) return { servername: name }
  return { checkServerIdentity: (_host, cert) => checkServerIdentity(name, cert) }
}

/** Why the link makes no connection while its gate is closed. */
const GATE_CLOSED = 'the tunnel is not in place: no connection is made around it'

export type LinkState =
  | { status: 'stopped' }
  | { status: 'connecting'; attempt: number }
  | { status: 'connected'; since: number }
  | { status: 'waiting'; retryInMs: number; cause: string }

/** What the bridge adds to each connection: its Will, its subscriptions, and what to do on messages. */
export interface LinkHooks {
  /** Made fresh for each connection (it is signed, with a timestamp). */
  will?: () => { topic: string; payload: Buffer; retain: boolean }
  /** Subscribed at QoS 1 on every connection. */
  subscriptions?: readonly string[]
  onMessage?: (topic: string, payload: Buffer) => void
  /** Runs when a session is up, before it is handed to the uplink. */
  onSession?: (session: CloudSession) => void
  /** The broker sent a packet over MAX_CLOUD_PACKET_BYTES: the connection is closed (and made again). */
  onOversize?: (packetBytes: number, limit: number) => void
  /**
   * Connections are made only while it is open (the WireGuard tunnel in place: its interface up,
   * the cloud's address routed through it); while it is closed, traffic to the cloud could leave
   * around the tunnel. `cut` ends the live one.
   */
  gate?: { readonly isOpen: boolean; opened(): Promise<void> }
}

/**
 * A clean end (DISCONNECT once every PUBLISH in flight is acknowledged) within `ms`, else the
 * connection is cut: mqtt.js's end(false) waits for those acknowledgements without a bound, and a
 * later end(true) does not cut that wait short, so a broker that hangs would hold it until the
 * keepalive gives up. Resolves true for a clean end.
 */
async function endWithin(client: MqttClient, ms: number): Promise<boolean> {
  const clean = await settledWithin(client.endAsync(false), ms)
  if (!clean) client.stream.destroy()
  return clean
}

/** What a connection presents and trusts: the CA bundle, the client certificate and its key (PEM). */
export interface TlsMaterial {
  ca: Buffer
  cert: Buffer
  key: Buffer
}

/** How a candidate connection (`tryCandidate`) ended: up, or not, with the reason. */
export type CandidateResult = { ok: true } | { ok: false; cause: string }

/**
 * The gateway's connection to the cloud broker: MQTT 5 (or 3.1.1) over mutual TLS with
 * certificate checks always on. Each connection is a fresh mqtt.js client with
 * automatic reconnect off; this class reconnects with capped, jittered backoff
 * and publishes the live session (or null) on `session$`.
 *
 * A certificate rotation (bridge/rotation.ts) opens a second, candidate connection with the new
 * certificate beside the live one (`tryCandidate`), under the other of two client ids so the broker
 * takes over no session and publishes no Will; once it is up the link adopts it: the uplink moves
 * to it, and the old connection gets a clean DISCONNECT once its PUBLISHes in flight had time to be
 * acknowledged (what is not is sent again from the queue with the same gw-seq).
 */
export class CloudLink {
  readonly session$ = new BehaviorSubject<CloudSession | null>(null)
  readonly state$ = new BehaviorSubject<LinkState>({ status: 'stopped' })
  private client: MqttClient | undefined
  private timer: NodeJS.Timeout | undefined
  private stopped = true
  private attempt = 0
  private readonly backoff: Backoff
  private readonly target: string
  /** The material of the live connection and of every reconnect; replaced by an adopted candidate. */
  private material: TlsMaterial | undefined
  /** The two client ids a rotation alternates between: `clientId`, then `clientId` + "-b". */
  private readonly clientIds: readonly [string, string]
  private clientIdIndex = 0
  /** Clients that were replaced by a candidate: their close is theirs alone. */
  private readonly retired = new WeakSet<MqttClient>()
  /** Retired clients not closed yet (stop closes them too). */
  private readonly draining = new Set<MqttClient>()
  /** Retired clients whose messages are no longer handled: their successor is subscribed. */
  private readonly deaf = new WeakSet<MqttClient>()
  /** A candidate connection being tried (stop ends it). */
  private candidate: MqttClient | undefined
  /** Bumped when a candidate is adopted or the link stops: a reconnect begun before gives up. */
  private generation = 0
  /** Connections closed for an oversize packet from the broker, with why (logged when they close). */
  private readonly oversize = new WeakMap<MqttClient, Error>()
  /** Each connection's session once it is established. */
  private readonly sessionOf = new WeakMap<MqttClient, CloudSession>()
  /** A connect waits for the gate to open. */
  private awaitingGate = false
  /** Why the link cut its own connection (the gate closed): said when it closes. */
  private cutFor: string | undefined
  /**
   * Set when a connection was closed for an oversize packet: the next CONNACK does not reset the
   * backoff, so a broker that sends one again on every connection (a retained message over the
   * limit on an MQTT 3.1.1 link) is reconnected to ever more slowly, not every initialDelayMs.
   */
  private holdBackoff = false
  /**
   * Whether the cloud broker takes retained messages. Learned from a CONNACK that says it does not
   * (MQTT 5 `Retain Available` 0, or a refusal 0x9A "Retain not supported", which a broker gives to
   * a CONNECT with a retained Will): from then on the Will, the control messages and device
   * messages go up without the retain flag, instead of the broker refusing every connection.
   */
  private retainAvailable = true

  constructor(
    private readonly config: CloudConfig,
    clientId: string,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    private readonly hooks: LinkHooks = {},
  ) {
    this.backoff = new Backoff(config.reconnect.initialDelayMs, config.reconnect.maxDelayMs)
    this.target = `${config.host}:${config.port}`
    this.clientIds = [clientId, `${clientId.slice(0, 126)}-b`]
    metrics.declare('cloud_connect_attempts_total')
    metrics.declare('cloud_disconnects_total')
    metrics.declare('cloud_retain_cleared_total')
  }

  /** The client id the link connects with now. */
  get clientId(): string {
    return this.clientIds[this.clientIdIndex] as string
  }

  async start(): Promise<void> {
    this.material = await this.readTlsMaterial()
    this.stopped = false
    this.connect()
  }

  private async readTlsMaterial(): Promise<TlsMaterial> {
    const read = async (label: string, file: string) => {
      try {
        return await readFile(file)
      } catch (err) {
        throw new BridgeError('BRIDGE_ERR_TLS_FILES', `cannot read ${label} ${file}`, { cause: err })
      }
    }
    return {
      ca: await read('cloud.caFile', this.config.caFile),
      cert: await read('cloud.certFile', this.config.certFile),
      key: await read('cloud.keyFile', this.config.keyFile),
    }
  }

  private willFor(will: NonNullable<IClientOptions['will']>): NonNullable<IClientOptions['will']> {
    return { ...will, qos: 1, retain: will.retain && this.retainAvailable }
  }

  /** Where the link connects: `host:port`. */
  get address(): string {
    return this.target
  }

  /** False once the broker said it takes no retained messages. */
  get retainsMessages(): boolean {
    return this.retainAvailable
  }

  /** The broker said it takes no retained messages: said once, and remembered for this process. */
  private noRetain(how: string): void {
    if (!this.retainAvailable) return
    this.retainAvailable = false
    this.logger.warn(
      { cloud: this.target },
      `the cloud broker at ${this.target} does not take retained messages (${how}): the gateway's Will, its binding and status, and device messages go up without the retain flag (counted in cloud_retain_cleared_total)`,
    )
  }

  /** The TLS side of every connection to the broker (the link's, a candidate's, a trust probe's). */
  private tlsOptions(tls: TlsMaterial) {
    return {
      host: this.config.host,
      port: this.config.port,
      ...tlsNameOptions(this.config.host, this.config.servername),
      ca: tls.ca,
      cert: tls.cert,
      key: tls.key,
      // Never configurable: the cloud link is useless if anyone can pose as the broker.
      rejectUnauthorized: true,
      minVersion: this.config.minVersion as SecureVersion,
    }
  }

  private createClient(tls: TlsMaterial, clientId: string): MqttClient {
    const options: IClientOptions & { minVersion: string } & ReturnType<typeof tlsNameOptions> = {
      protocol: 'mqtts',
      ...this.tlsOptions(tls),
      protocolVersion: this.config.protocolVersion,
      clientId,
      clean: true,
      keepalive: this.config.keepaliveSeconds,
      connectTimeout: this.config.connectTimeoutMs,
      reconnectPeriod: 0,
      queueQoSZero: false,
      // No 65,536-Buffer number cache in the MQTT codec (shared with aedes): see gateway/mqtt-codec.ts.
      writeCache: false,
      // MQTT 5: the broker must not send more (MQTT-3.1.2-24); watchPacketSizes holds it to that.
      ...(this.config.protocolVersion === 5 && { properties: { maximumPacketSize: MAX_CLOUD_PACKET_BYTES } }),
      ...(this.hooks.will && { will: this.willFor(this.hooks.will()) }),
    }
    const client = mqtt.connect(options)
    // Every connection, a rotation's candidate too, from its first byte.
    limitInboundPackets(client, MAX_CLOUD_PACKET_BYTES, (bytes) => {
      this.oversize.set(
        client,
        Object.assign(
          new Error(
            `the cloud broker sent a packet of ${bytes} bytes, over the ${MAX_CLOUD_PACKET_BYTES} the gateway takes`,
          ),
          { code: 'CLOUD_PACKET_TOO_LARGE' },
        ),
      )
      this.holdBackoff = true
      const session = this.sessionOf.get(client)
      if (session) session.closedForInbound = true
      this.hooks.onOversize?.(bytes, MAX_CLOUD_PACKET_BYTES)
    })
    return client
  }

  private connect(): void {
    if (this.stopped || !this.material) return
    const gate = this.hooks.gate
    if (gate && !gate.isOpen) {
      // One wait at a time; the connection is made once it opens (a stop meanwhile: none).
      if (!this.awaitingGate) {
        this.awaitingGate = true
        const generation = this.generation
        this.state$.next({ status: 'waiting', retryInMs: 0, cause: GATE_CLOSED })
        void gate.opened().then(() => {
          this.awaitingGate = false
          // A candidate adopted meanwhile is the live connection already (or a stop wants none).
          if (generation !== this.generation) return
          this.connect()
        })
      }
      return
    }
    this.cutFor = undefined
    this.attempt++
    this.metrics.increment('cloud_connect_attempts_total')
    this.state$.next({ status: 'connecting', attempt: this.attempt })
    const client = this.createClient(this.material, this.clientId)
    this.client = client
    const connection = this.attach(client)
    client.on('connect', (connack) => connection.established(connack))
  }

  /**
   * The handlers of a connection the link runs: `established` makes its session live (at its
   * CONNACK, or at adoption for a candidate); its close makes the link reconnect, unless it was
   * retired in favour of a candidate.
   */
  private attach(client: MqttClient): {
    established: (connack: IConnackPacket, onSubscribed?: () => void) => void
  } {
    let session: CloudSession | undefined
    let closed = false
    // The last error mqtt.js reported for this connection; logged once, when it closes.
    let failure: (Error & { code?: string | number }) | undefined

    const established = (connack: IConnackPacket, onSubscribed?: () => void) => {
      // A connection retired while it was reconnecting: its CONNACK must not make it live again.
      if (this.retired.has(client)) return
      if (this.holdBackoff) this.holdBackoff = false
      else this.backoff.reset()
      this.attempt = 0
      const stream = client.stream as { setNoDelay?: (on: boolean) => void }
      stream.setNoDelay?.(true)
      if (connack.properties?.retainAvailable === false) this.noRetain('its CONNACK says Retain Available 0')
      session = new CloudSession(
        client,
        this.config.protocolVersion === 5,
        connack.properties?.maximumPacketSize,
        this.retainAvailable ? undefined : () => this.metrics.increment('cloud_retain_cleared_total'),
      )
      this.sessionOf.set(client, session)
      const subscriptions = this.hooks.subscriptions ?? []
      if (subscriptions.length > 0) {
        client.subscribe([...subscriptions], { qos: 1 }, (err, granted) => {
          const refused = (granted ?? []).filter((g) => g.qos >= 0x80).map((g) => g.topic)
          if (err || refused.length > 0) {
            this.logger.error(
              { cloud: this.target, err: err?.message, refused },
              'cloud broker refused the downlink subscriptions; commands will not arrive',
            )
          }
          onSubscribed?.()
        })
      } else {
        onSubscribed?.()
      }
      this.hooks.onSession?.(session)
      this.logger.info({ cloud: this.target, clientId: this.clientId }, 'cloud link up')
      this.state$.next({ status: 'connected', since: Date.now() })
      this.session$.next(session ?? null)
    }
    client.on('message', (topic, payload) => {
      // A retired connection is heard until its successor's subscriptions are granted, so no command
      // falls between the two; a copy that arrives on both is refused as replayed by its nonce.
      if (!this.deaf.has(client)) this.hooks.onMessage?.(topic, payload)
    })
    client.on('error', (err) => {
      failure = err
      // MQTT 5 reason code 0x9A in a CONNACK: the retained Will was refused; the next attempt has none.
      if ((err as { code?: unknown }).code === 0x9a && session === undefined) {
        this.noRetain('it refused the CONNECT with 0x9A, Retain not supported')
        this.holdBackoff = false
      }
      this.logger.debug(
        { cloud: this.target, err: linkErrorMessage(err), code: (err as { code?: unknown }).code },
        'cloud connection error (logged with its cause when the connection closes)',
      )
    })
    client.on('close', () => {
      if (closed) return
      closed = true
      failure = this.oversize.get(client) ?? failure
      // Fail whatever this client still holds; the queue re-sends it on the next session.
      client.end(true)
      if (this.retired.has(client)) return
      const established = session !== undefined
      const phase: LinkPhase = established ? 'established' : 'set-up'
      if (established && !this.stopped) {
        this.metrics.increment('cloud_disconnects_total')
        this.session$.next(null)
      }
      if (this.stopped) return
      const delay = this.backoff.next()
      const cut = this.cutFor
      this.cutFor = undefined
      const cause =
        cut ??
        (failure
          ? describeLinkError(failure, this.target, phase)
          : `the cloud broker at ${this.target} closed the connection ${established ? 'after set-up' : 'during set-up'}`)
      this.state$.next({ status: 'waiting', retryInMs: delay, cause })
      // One line per failure: what went wrong, and when the next attempt is.
      this.logger.warn(
        {
          cloud: this.target,
          ...(failure && { err: linkErrorMessage(failure), code: failure.code }),
          phase,
          retryInMs: delay,
          ...(!established && { attempt: this.attempt }),
        },
        established
          ? `cloud link down: ${cause}; reconnecting in ${delay} ms`
          : `${cause}; retrying in ${delay} ms (attempt ${this.attempt} failed)`,
      )
      this.timer = setTimeout(() => void this.reconnect(), delay)
    })
    return { established }
  }

  /**
   * The next attempt, with `cloud.caFile` read again: a CA bundle replaced on disk (the old CA and
   * the new one together, while the broker changes its certificate) verifies the broker from the
   * next connection on, without a restart. A file that cannot be read now keeps the last one read.
   * The client certificate and key stay those in use: a rotation (`tryCandidate`) replaces them.
   */
  private async reconnect(): Promise<void> {
    const tls = this.material
    if (!tls) return
    const generation = this.generation
    const ca = await this.currentCa(tls.ca)
    // A candidate adopted (or a stop) meanwhile: the link has a connection, or wants none.
    if (generation !== this.generation || this.stopped) return
    this.material = { ...tls, ca }
    this.connect()
  }

  private async currentCa(previous: Buffer): Promise<Buffer> {
    let ca = previous
    try {
      ca = await readFile(this.config.caFile)
    } catch (err) {
      this.logger.warn(
        { cloud: this.target, caFile: this.config.caFile, err: (err as Error).message },
        'cannot read cloud.caFile again: connecting with the CA bundle read before',
      )
    }
    if (!ca.equals(previous)) {
      this.logger.info(
        { cloud: this.target, caFile: this.config.caFile },
        'cloud.caFile changed: the broker is verified with the new CA bundle from this connection on',
      )
    }
    return ca
  }

  /**
   * Whether the cloud broker's certificate verifies under `ca` alone: a TLS handshake (no MQTT
   * CONNECT) with the link's name check and client certificate, closed at once. A rotation asks it
   * before a CA bundle overlap ends, so that the gateway never keeps only CAs that cannot verify
   * the broker (it could not be reached to correct that). Refused while the gate is closed.
   */
  async probeTrust(ca: Buffer, timeoutMs: number): Promise<CandidateResult> {
    const current = this.material
    if (this.stopped || !current) return { ok: false, cause: 'the cloud link is stopped' }
    if (this.hooks.gate && !this.hooks.gate.isOpen) return { ok: false, cause: GATE_CLOSED }
    return new Promise<CandidateResult>((resolve) => {
      const socket = tlsConnect(this.tlsOptions({ ...current, ca }))
      const done = (result: CandidateResult) => {
        clearTimeout(timer)
        socket.removeAllListeners()
        socket.on('error', () => undefined)
        socket.destroy()
        resolve(result)
      }
      const timer = setTimeout(
        () => done({ ok: false, cause: `no TLS handshake within ${timeoutMs} ms` }),
        timeoutMs,
      )
      timer.unref()
      socket.once('secureConnect', () => done({ ok: true }))
      socket.once('error', (err) => done({ ok: false, cause: describeLinkError(err, this.target, 'set-up') }))
      socket.once('close', () =>
        done({
          ok: false,
          cause: `the cloud broker at ${this.target} closed the connection during the TLS handshake`,
        }),
      )
    })
  }

  /**
   * A candidate connection with `cert` and `key` beside the live one, under the other client id.
   * Resolves `{ ok: false, cause }` when the broker refuses it or it is not up within `deadlineMs`
   * (the link goes on as it was); else runs `beforeAdopt` and adopts it: it becomes the live
   * session (with the subscriptions, the key binding and "online" of any new session), every later
   * reconnect uses its material, and the connection it replaced is heard until the candidate's
   * subscriptions are granted, then closed with a clean DISCONNECT. A candidate that is up is
   * adopted even if the old connection dropped meanwhile.
   */
  async tryCandidate(
    cert: Buffer,
    key: Buffer,
    deadlineMs: number,
    beforeAdopt: () => void,
  ): Promise<CandidateResult> {
    const current = this.material
    if (this.stopped || !current) return { ok: false, cause: 'the cloud link is stopped' }
    if (this.hooks.gate && !this.hooks.gate.isOpen) return { ok: false, cause: GATE_CLOSED }
    if (this.candidate) return { ok: false, cause: 'another candidate connection is being tried' }
    // A connection still closing under the other client id would be taken over (and its Will sent).
    await Promise.all([...this.draining].map((c) => this.closeRetired(c)))
    const material: TlsMaterial = { ca: await this.currentCa(current.ca), cert, key }
    if (this.stopped) return { ok: false, cause: 'the cloud link was stopped' }
    // The gate may have closed during the waits above (cut() found no candidate to end then).
    if (this.hooks.gate && !this.hooks.gate.isOpen) return { ok: false, cause: GATE_CLOSED }
    const index = this.clientIdIndex === 0 ? 1 : 0
    const clientId = this.clientIds[index] as string
    let candidate: MqttClient
    try {
      candidate = this.createClient(material, clientId)
      this.candidate = candidate
    } catch (err) {
      return { ok: false, cause: `the new certificate and key cannot be used: ${(err as Error).message}` }
    }
    const outcome = await new Promise<{ connack: IConnackPacket } | { cause: string }>((resolve) => {
      let failure: Error | undefined
      const timer = setTimeout(() => resolve({ cause: `no CONNACK within ${deadlineMs} ms` }), deadlineMs)
      timer.unref()
      candidate.once('connect', (connack) => {
        clearTimeout(timer)
        resolve({ connack })
      })
      candidate.on('error', (err) => {
        failure = err
      })
      candidate.once('close', () => {
        clearTimeout(timer)
        failure = this.oversize.get(candidate) ?? failure
        resolve({
          cause: failure
            ? describeLinkError(failure, this.target, 'set-up')
            : `the cloud broker at ${this.target} closed the connection during set-up`,
        })
      })
    })
    this.candidate = undefined
    const gateClosed = this.hooks.gate !== undefined && !this.hooks.gate.isOpen
    if ('cause' in outcome || this.stopped || gateClosed) {
      candidate.removeAllListeners()
      candidate.on('error', () => undefined)
      candidate.end(true)
      const cause =
        'cause' in outcome ? outcome.cause : this.stopped ? 'the cloud link was stopped' : GATE_CLOSED
      return { ok: false, cause }
    }
    candidate.removeAllListeners('close')
    candidate.removeAllListeners('error')
    candidate.removeAllListeners('connect')
    beforeAdopt()
    const old = this.client
    if (old) {
      this.retired.add(old)
      this.draining.add(old)
    }
    this.generation++
    if (this.timer) clearTimeout(this.timer)
    this.timer = undefined
    this.material = material
    this.clientIdIndex = index
    this.client = candidate
    this.attach(candidate).established(outcome.connack, () => {
      if (old) void this.closeRetired(old)
    })
    return { ok: true }
  }

  /**
   * Closes a retired connection: a clean DISCONNECT, so the broker drops its Will. When that does
   * not go through within 2 s the connection is cut, the broker publishes the Will ("offline"), and
   * the live session announces itself again (key binding and "online", both retained, on top).
   */
  private async closeRetired(client: MqttClient): Promise<void> {
    if (!this.draining.delete(client)) return
    this.deaf.add(client)
    const forced = client.connected && !(await endWithin(client, 2000))
    client.end(true)
    const live = this.session$.value
    if (forced && live && !this.stopped) this.hooks.onSession?.(live)
  }

  /**
   * Ends the live connection, and a candidate being tried, at once (the gate closed: its packets
   * might leave around the tunnel). What was in flight is sent again on the next session; the next
   * connection is made once the gate opens.
   */
  cut(why: string): void {
    this.candidate?.end(true)
    // Retired connections still closing (up to 2 s for a clean DISCONNECT) go at once too.
    for (const retired of this.draining) retired.stream.destroy()
    const client = this.client
    if (!client || this.stopped || client.disconnecting || client.disconnected) return
    this.cutFor = why
    this.logger.warn({ cloud: this.target }, `cloud link cut: ${why}`)
    client.stream.destroy()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.generation++
    this.candidate?.end(true)
    await Promise.all([...this.draining].map((c) => this.closeRetired(c)))
    if (this.timer) clearTimeout(this.timer)
    const client = this.client
    this.client = undefined
    this.session$.next(null)
    this.state$.next({ status: 'stopped' })
    if (!client) return
    // A clean DISCONNECT when connected, so the broker discards the Will ("offline, connection lost");
    // cut after 2 s (endWithin), or at once when the link is already down; what was in flight is sent
    // again from the queue after the next start.
    if (client.connected) await endWithin(client, 2000)
    await client.endAsync(true).catch(() => undefined)
  }
}
