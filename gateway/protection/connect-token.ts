import { checkToken } from '../../crypto/token.js'
import type { Device } from '../registry.js'
import type { ProtectionRuntime } from './runtime.js'

/**
 * Checks a one-time CONNECT token (COSE_Mac0 in the password field) for the
 * device named by the username: right key, right client id, within the window,
 * and never seen before (the nonce is on disk before this resolves 'ok').
 * Returns 'ok' or the reason for refusal; rejects when the nonce cannot be
 * written (the CONNECT is then refused as the server being unavailable).
 */
export async function checkConnectToken(
  protection: ProtectionRuntime,
  device: Device,
  token: Buffer,
  clientId: string,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<'ok' | string> {
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
  // A token is accepted while its timestamp is within the window of the gateway's clock, so it
  // can be accepted at most until timestamp + window <= now + 2 × window: remember it that long.
  const expiresAt = (nowSeconds + 2 * protection.tokenWindowSeconds + 1) * 1000
  const outcome = await protection.tokenNonces.remember(key, expiresAt)
  if (outcome === 'replayed') return 'replayed'
  if (outcome === 'full') return 'nonce_memory_full'
  return 'ok'
}
