import { setTimeout as sleep } from 'node:timers/promises'
import type { AuthenticateError, AuthenticateHandler, Client } from 'aedes'
import type { Logger } from '../../core/logger.js'
import type { SecurityEventName, SecurityEvents } from '../../core/security-events.js'
import { TOKEN_MAX_BYTES } from '../../crypto/token.js'
import type { AccessControl } from '../access-control.js'
import type { Attempt } from '../auth/lockout.js'
import { PasswordCheckAbandoned, verifyAgainstDummy } from '../auth/password.js'
import { RefusalFloor } from '../auth/refusal-floor.js'
import { isAcceptableClientId } from '../client-id.js'
import {
  type ConnectFacts,
  connectFactsOf,
  principalFor,
  sessionOf,
  setSession,
  type TransportContext,
  transportOf,
} from '../connection-context.js'
import { checkConnectToken } from '../protection/connect-token.js'
import { markOpened } from '../protection/opened.js'
import type { ProtectionRuntime } from '../protection/runtime.js'
import type { Device, DeviceRegistry } from '../registry.js'
import { capPendingSubscribes } from './subscribe-qos-cap.js'

export interface AuthenticateDeps {
  access: AccessControl
  security: SecurityEvents
  logger: Logger
  protection: ProtectionRuntime
  /** A refused CONNECT is answered no sooner than this after it arrived (ms). */
  refusalDelayMs: number
  /** Connections one device may hold at once (`lan.maxConnectionsPerDevice`); one more is refused. */
  connections?: DeviceConnections
}

/**
 * Connections each device holds, counted from its authentication to the close of its connection
 * (so CONNECTs that arrive together are counted as they pass, not when the broker registers them).
 */
export class DeviceConnections {
  private readonly counts = new Map<string, number>()

  constructor(readonly max: number) {}

  count(device: string): number {
    return this.counts.get(device) ?? 0
  }

  /**
   * Counts `client`'s connection for `device` until it closes; false when the device holds `max`
   * already, unless this CONNECT takes over one of its client ids (that connection closes).
   */
  admit(device: string, client: Client): boolean {
    const conn = client.conn as unknown as { destroyed?: boolean; once(event: 'close', f: () => void): void }
    if (conn.destroyed) return true
    const current = (client as unknown as { broker?: { clients?: Record<string, Client> } }).broker
      ?.clients?.[client.id]
    const takeover = current !== undefined && sessionOf(current)?.device.id === device
    const n = this.count(device)
    if (n >= this.max && !takeover) return false
    this.counts.set(device, n + 1)
    conn.once('close', () => {
      const left = this.count(device) - 1
      if (left > 0) this.counts.set(device, left)
      else this.counts.delete(device)
    })
    return true
  }
}

/** Checks a one-time CONNECT token for a device; 'ok' or why not. */
export type TokenCheck = (device: Device, token: Buffer, clientId: string) => Promise<'ok' | string>

/** Checks a password against a device's hash (default: the hash itself, no cache). */
export type PasswordCheck = (device: Device, password: Buffer) => Promise<boolean>

const noWork = async () => undefined

const checkHash: PasswordCheck = (device, password) =>
  device.password ? device.password(password) : verifyAgainstDummy(password)

/** A COSE_Mac0 token is a 4-element CBOR array (0x84); no UTF-8 text password starts with that byte. */
const looksLikeToken = (password: Buffer) => password[0] === 0x84

/** CONNACK return codes used here (MQTT 3.1.1 §3.2.2.3). */
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

export type Verdict =
  | { ok: true; device: Device }
  | { ok: false; returnCode: number; event: SecurityEventName; message: string; device?: string }

const refuse = (returnCode: number, event: SecurityEventName, message: string, device?: string): Verdict => ({
  ok: false,
  returnCode,
  event,
  message,
  ...(device !== undefined && { device }),
})

/**
 * Decides who a connecting client is. The transport identity (PSK identity or
 * certificate) and the CONNECT username must name the same device; the client
 * id must be one the device may use. Anything else is refused: there is no
 * anonymous access.
 */
export async function decide(
  registry: DeviceRegistry,
  transport: TransportContext,
  clientId: string,
  username: string | undefined,
  password: Buffer | undefined,
  facts: Pick<ConnectFacts, 'emptyClientId' | 'clean'> = { emptyClientId: false, clean: true },
  tokenCheck?: TokenCheck,
  passwordCheck: PasswordCheck = checkHash,
  /** The work done for a password given with an unknown username (a decoy scrypt run unless told otherwise). */
  unknownUserWork: (password: Buffer) => Promise<unknown> = verifyAgainstDummy,
): Promise<Verdict> {
  if (facts.emptyClientId && !facts.clean) {
    return refuse(
      IDENTIFIER_REJECTED,
      'client_id_refused',
      'empty client id with a persistent session (MQTT-3.1.3-8)',
    )
  }
  const transportDevice =
    transport.pskIdentity !== undefined
      ? registry.byPsk(transport.pskIdentity)
      : transport.certificateCommonName !== undefined
        ? registry.byCertificate(transport.certificateCommonName)
        : undefined
  if (transport.certificateCommonName !== undefined && !transportDevice) {
    return refuse(NOT_AUTHORIZED, 'auth_unknown_certificate', 'certificate names no device')
  }
  let userDevice: Device | undefined
  if (username !== undefined) {
    userDevice = registry.byUser(username)
    if (!userDevice) {
      if (password) await unknownUserWork(password)
      return transportDevice
        ? refuse(NOT_AUTHORIZED, 'auth_identity_mismatch', 'username names no device', transportDevice.id)
        : refuse(BAD_USERNAME_OR_PASSWORD, 'auth_unknown_user', 'unknown username')
    }
    if (password !== undefined && userDevice.payload && tokenCheck && looksLikeToken(password)) {
      const outcome = await tokenCheck(userDevice, password, clientId)
      if (outcome !== 'ok') {
        return refuse(
          BAD_USERNAME_OR_PASSWORD,
          'auth_bad_token',
          `one-time token refused (${outcome})`,
          userDevice.id,
        )
      }
    } else if (password !== undefined) {
      const ok = await passwordCheck(userDevice, password)
      if (!ok) return refuse(BAD_USERNAME_OR_PASSWORD, 'auth_bad_password', 'wrong password', userDevice.id)
    } else if (!transportDevice) {
      return refuse(
        BAD_USERNAME_OR_PASSWORD,
        'auth_missing_credentials',
        'username without password',
        userDevice.id,
      )
    }
  }
  if (transportDevice && userDevice && transportDevice !== userDevice) {
    return refuse(
      NOT_AUTHORIZED,
      'auth_identity_mismatch',
      `transport identity of device ${transportDevice.id} used with the username of device ${userDevice.id}`,
      transportDevice.id,
    )
  }
  const device = transportDevice ?? userDevice
  if (!device) return refuse(NOT_AUTHORIZED, 'auth_missing_credentials', 'no credentials presented')
  // A server-assigned id (empty client id, clean session) cannot collide with anyone's session.
  if (!facts.emptyClientId && (!isAcceptableClientId(clientId) || !device.clientIdAllowed(clientId))) {
    return refuse(
      IDENTIFIER_REJECTED,
      'client_id_refused',
      'client id not allowed for this device',
      device.id,
    )
  }
  return { ok: true, device }
}

/**
 * What a CONNECT tries to prove, for the lockout: the transport's identity
 * (PSK, certificate) when there is one, else a token or a password under the
 * username. A CONNECT with neither claims nothing (its client id is no identity).
 */
export function attemptOf(
  transport: TransportContext,
  username: string | undefined,
  password: Buffer | undefined,
): Attempt {
  const address = transport.remoteAddress
  if (transport.pskIdentity !== undefined) return { kind: 'psk', identity: transport.pskIdentity, address }
  if (transport.certificateCommonName !== undefined)
    return { kind: 'certificate', identity: transport.certificateCommonName, address }
  if (username === undefined) return { kind: 'none', address }
  if (password !== undefined && looksLikeToken(password) && password.length <= TOKEN_MAX_BYTES)
    return { kind: 'token', identity: username, address }
  return { kind: 'password', identity: username, address }
}

/** Whether the client still waits for its CONNACK (its connection is open). */
function stillThere(client: Client): boolean {
  const conn = (client as unknown as { conn?: { destroyed?: boolean } }).conn
  return !client.closed && conn?.destroyed !== true
}

/** The pause a client's answer waits at least (the lockout's slow-down), set during the check. */
const holds = new WeakMap<Client, number>()
const holdFor = (client: Client, ms: number) => holds.set(client, ms)

function refusal(returnCode: number, message: string): AuthenticateError {
  const err = new Error(message) as AuthenticateError
  err.returnCode = returnCode
  return err
}

async function authenticate(
  deps: AuthenticateDeps,
  client: Client,
  username: string | undefined,
  password: Buffer | undefined,
): Promise<Verdict> {
  const { access } = deps
  const transport = transportOf(client)
  const facts = connectFactsOf(client) ?? { emptyClientId: false, clean: true }
  const attempt = attemptOf(transport, username, password)
  const lock = access.lockout.check(attempt)
  if (lock.locked) {
    return refuse(
      NOT_AUTHORIZED,
      'auth_locked_out',
      `password attempts locked after repeated failures (${lock.scope === 'address' ? 'from this address' : 'for this username from this address'}), ${Math.ceil(lock.retryAfterMs / 1000)} s left`,
    )
  }
  // A failing identity or address is slowed: its answer waits this long at least (below).
  holdFor(client, lock.delayMs)

  const verdict = await decide(
    access.registry,
    transport,
    client.id,
    username,
    password,
    facts,
    (device, token, id) => checkConnectToken(deps.protection, device, token, id),
    // A client that closed while its check waited for a slot is not worth an scrypt run.
    (device, secret) => access.passwords.check(device, secret, () => stillThere(client)),
    // With a refusal floor, an unknown username is answered at the same moment as a wrong password
    // without a decoy scrypt run, which would take a password-check slot from the real devices.
    deps.refusalDelayMs > 0 ? noWork : verifyAgainstDummy,
  )
  if (!verdict.ok) {
    for (const key of access.lockout.fail({ ...attempt, known: verdict.device !== undefined })) {
      deps.security.report(
        'auth_locked_out',
        {
          ...(verdict.device !== undefined && { device: verdict.device }),
          lockKey: key.startsWith('addr:') ? 'address' : 'identity',
          credential: attempt.kind,
          clientId: client.id.slice(0, 128),
          remoteAddress: transport.remoteAddress,
        },
        'too many failed authentications: locked',
      )
    }
    return verdict
  }
  access.lockout.succeed(attempt)

  // A Will is a PUBLISH the device asks for in advance: the same policy applies, at CONNECT.
  if (facts.will) {
    const principal = principalFor(verdict.device, client.id, username)
    const will = facts.will
    const decision = access.engine.decide(principal, {
      action: 'publish',
      topic: will.topic,
      qos: will.qos ?? 0,
      retain: will.retain ?? false,
      payloadBytes: will.payload?.length ?? 0,
    })
    if (!decision.allowed) {
      return refuse(
        NOT_AUTHORIZED,
        'will_denied',
        `Will on a topic the device may not publish to (${decision.reason})`,
        verdict.device.id,
      )
    }
    // A Will on a protected topic is opened now: one that fails to open refuses the CONNECT.
    const mode = deps.protection.requirements.modeFor(will.topic)
    if (mode !== 'none') {
      const payload = Buffer.from(will.payload ?? Buffer.alloc(0))
      const opened = await deps.protection.opener.open(
        access.registry,
        verdict.device,
        mode,
        payload,
        will.topic,
      )
      if (!opened.ok) {
        return refuse(
          NOT_AUTHORIZED,
          'will_rejected',
          `Will payload refused (${opened.failure})`,
          verdict.device.id,
        )
      }
      will.payload = opened.plaintext
      markOpened(opened.plaintext)
    }
  }
  return verdict
}

export function createAuthenticate(deps: AuthenticateDeps): AuthenticateHandler {
  const floor = new RefusalFloor({ floorMs: deps.refusalDelayMs })
  return (client: Client, username, password, done) => {
    const transport = transportOf(client)
    const arrived = performance.now()
    /** Waits until `ms` after the CONNECT arrived (at once if that has passed). */
    const until = async (ms: number) => {
      const wait = ms - (performance.now() - arrived)
      if (wait > 0) await sleep(wait)
    }
    // Refusals leave at one moment after arrival, whatever work the check took (an unknown user,
    // a scrypt hash, a Mosquitto $7$ hash or a token), so timing does not tell usernames apart;
    // the lockout's slow-down is a floor too, not a pause added before the check. The floor rises
    // above lan.lockout.refusalDelayMs while checks run slower than it (gateway/auth/refusal-floor.ts).
    const refuseAtFloor = async (err: AuthenticateError) => {
      await until(Math.max(floor.current(), holds.get(client) ?? 0))
      done(err, false)
    }
    authenticate(deps, client, username, password).then(
      async (verdict) => {
        floor.record(performance.now() - arrived)
        if (verdict.ok) await until(holds.get(client) ?? 0)
        const connections = deps.connections
        if (verdict.ok && connections && !connections.admit(verdict.device.id, client)) {
          const max = connections.max
          deps.security.report(
            'connection_refused',
            {
              device: verdict.device.id,
              clientId: client.id,
              listener: transport.listener,
              remoteAddress: transport.remoteAddress,
              reason: 'device_connections',
              limit: max,
            },
            `CONNECT refused with CONNACK 3: the device holds ${max} connection(s) already (lan.maxConnectionsPerDevice)`,
          )
          return refuseAtFloor(refusal(SERVER_UNAVAILABLE, 'too many connections for this device'))
        }
        if (verdict.ok) {
          setSession(client, {
            device: verdict.device,
            transport,
            principal: principalFor(verdict.device, client.id, username),
          })
          capPendingSubscribes(deps.access, client)
          deps.logger.info(
            { device: verdict.device.id, clientId: client.id, listener: transport.listener },
            'device connected',
          )
          return done(null, true)
        }
        const will = connectFactsOf(client)?.will
        deps.security.report(
          verdict.event,
          {
            ...(verdict.device !== undefined && { device: verdict.device }),
            clientId: client.id.slice(0, 128),
            ...(username !== undefined && { username: username.slice(0, 128) }),
            ...(transport.pskIdentity !== undefined && { pskIdentity: transport.pskIdentity }),
            ...(transport.certificateCommonName !== undefined && {
              certificate: transport.certificateCommonName,
            }),
            ...((verdict.event === 'will_denied' || verdict.event === 'will_rejected') &&
              will && { topic: will.topic }),
            listener: transport.listener,
            remoteAddress: transport.remoteAddress,
            returnCode: verdict.returnCode,
          },
          `CONNECT refused: ${verdict.message}`,
        )
        return refuseAtFloor(refusal(verdict.returnCode, verdict.message))
      },
      (cause: unknown) => {
        if (cause instanceof PasswordCheckAbandoned) {
          // No one reads the answer: no event, no lockout count, no refusal delay.
          deps.logger.debug({ clientId: client.id, listener: transport.listener }, cause.message)
          return done(refusal(SERVER_UNAVAILABLE, cause.message), false)
        }
        deps.logger.error({ err: cause, clientId: client.id }, 'authentication failed internally')
        return refuseAtFloor(refusal(SERVER_UNAVAILABLE, 'authentication unavailable'))
      },
    )
  }
}
