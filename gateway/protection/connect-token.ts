import { checkToken } from '../../crypto/token.js'
import type { Device } from '../registry.js'
import type { ProtectionRuntime } from './runtime.js'

/**
 * Checks a one-time CONNECT token (COSE_Mac0 in the password field) for the
 * device named by the username: right key, right client id, within the window,
 * and never seen before. Returns 'ok' or the reason for refusal.
 */
export function checkConnectToken(
  protection: ProtectionRuntime,
  device: Device,
  token: Buffer,
  clientId: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): 'ok' | string {
  const keys = device.payload
  if (!keys) return 'no_payload_key'
  const result = checkToken(
    (kid) => (kid.equals(keys.kid) ? keys.context : undefined),
    token,
    clientId,
    nowSeconds,
    protection.tokenWindowSeconds,
  )
  if ('failure' in result) return result.failure === 'unknown_kid' ? 'wrong_device' : result.failure
  const key = `${result.kid.toString('hex')}:${result.nonce.toString('hex')}`
  if (protection.tokenNonces.has(key)) return 'replayed'
  protection.tokenNonces.set(key, true)
  return 'ok'
}
