import type { AuthenticateError, AuthenticateHandler, Client } from 'aedes'
import type { Logger } from '../../core/logger.js'
import type { SecurityEventName, SecurityEvents } from '../../core/security-events.js'
import { verifyAgainstDummy, verifyPassword } from '../auth/password.js'
import { isAcceptableClientId } from '../client-id.js'
import { setSession, type TransportContext, transportOf } from '../connection-context.js'
import type { Device, DeviceRegistry } from '../registry.js'
import { devicePrefix } from '../topic-scope.js'

export interface AuthenticateDeps {
  registry: DeviceRegistry
  security: SecurityEvents
  logger: Logger
  devicePrefixTemplate: string
}

/** CONNACK return codes used here (MQTT 3.1.1 §3.2.2.3). */
const IDENTIFIER_REJECTED = 2
const SERVER_UNAVAILABLE = 3
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

type Verdict =
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
 * Decides who a connecting client is. The transport identity (PSK identity) and
 * the CONNECT username must name the same device; the client id must be one the
 * device may use. Anything else is refused: there is no anonymous access.
 */
export async function decide(
  registry: DeviceRegistry,
  transport: TransportContext,
  clientId: string,
  username: string | undefined,
  password: Buffer | undefined,
): Promise<Verdict> {
  const pskDevice = transport.pskIdentity !== undefined ? registry.byPsk(transport.pskIdentity) : undefined
  let userDevice: Device | undefined
  if (username !== undefined) {
    userDevice = registry.byUser(username)
    if (!userDevice) {
      if (password) await verifyAgainstDummy(password)
      return pskDevice
        ? refuse(NOT_AUTHORIZED, 'auth_identity_mismatch', 'username names no device', pskDevice.id)
        : refuse(BAD_USERNAME_OR_PASSWORD, 'auth_unknown_user', 'unknown username')
    }
    if (password !== undefined) {
      const ok = userDevice.passwordHash
        ? await verifyPassword(password, userDevice.passwordHash)
        : await verifyAgainstDummy(password)
      if (!ok) return refuse(BAD_USERNAME_OR_PASSWORD, 'auth_bad_password', 'wrong password', userDevice.id)
    } else if (!pskDevice) {
      return refuse(
        BAD_USERNAME_OR_PASSWORD,
        'auth_missing_credentials',
        'username without password',
        userDevice.id,
      )
    }
  }
  if (pskDevice && userDevice && pskDevice !== userDevice) {
    return refuse(
      NOT_AUTHORIZED,
      'auth_identity_mismatch',
      `PSK identity of device ${pskDevice.id} used with the username of device ${userDevice.id}`,
      pskDevice.id,
    )
  }
  const device = pskDevice ?? userDevice
  if (!device) return refuse(NOT_AUTHORIZED, 'auth_missing_credentials', 'no credentials presented')
  if (!isAcceptableClientId(clientId) || !device.clientIdAllowed(clientId)) {
    return refuse(
      IDENTIFIER_REJECTED,
      'client_id_refused',
      'client id not allowed for this device',
      device.id,
    )
  }
  return { ok: true, device }
}

export function createAuthenticate(deps: AuthenticateDeps): AuthenticateHandler {
  return (client: Client, username, password, done) => {
    const transport = transportOf(client)
    decide(deps.registry, transport, client.id, username, password).then(
      (verdict) => {
        if (verdict.ok) {
          setSession(client, {
            device: verdict.device,
            transport,
            topicPrefix: devicePrefix(deps.devicePrefixTemplate, verdict.device.id),
          })
          deps.logger.info(
            { device: verdict.device.id, clientId: client.id, listener: transport.listener },
            'device connected',
          )
          return done(null, true)
        }
        deps.security.report(
          verdict.event,
          {
            ...(verdict.device !== undefined && { device: verdict.device }),
            clientId: client.id.slice(0, 128),
            ...(username !== undefined && { username: username.slice(0, 128) }),
            ...(transport.pskIdentity !== undefined && { pskIdentity: transport.pskIdentity }),
            listener: transport.listener,
            remoteAddress: transport.remoteAddress,
            returnCode: verdict.returnCode,
          },
          `CONNECT refused: ${verdict.message}`,
        )
        const err = new Error(verdict.message) as AuthenticateError
        err.returnCode = verdict.returnCode
        done(err, false)
      },
      (cause: unknown) => {
        deps.logger.error({ err: cause, clientId: client.id }, 'authentication failed internally')
        const err = new Error('authentication unavailable') as AuthenticateError
        err.returnCode = SERVER_UNAVAILABLE
        done(err, false)
      },
    )
  }
}
