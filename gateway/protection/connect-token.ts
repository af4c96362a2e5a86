import { trustedNow } from '../../core/clock-floor.js'
import { checkToken } from '../../crypto/token.js'
import { type Device, payloadKeysFor } from '../registry.js'
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
  nowMs = Date.now(),
): Promise<'ok' | string> {
  const nowSeconds = Math.floor(nowMs / 1000)
  if (!device.payload) return 'no_payload_key'
  let named: Buffer | undefined
  const result = checkToken(
    (kid) => {
      named = kid
      // Retirement on the clock floor too: an ended overlap stays ended if the clock steps back.
      return payloadKeysFor(device, kid, Math.max(nowMs, trustedNow()))?.context
    },
    token,
    clientId,
    nowSeconds,
    protection.tokenWindowSeconds,
  )
  if ('failure' in result) {
    if (result.failure !== 'unknown_kid') return result.failure
    return named && device.payloadPrevious?.kid.equals(named) ? 'retired_kid' : 'wrong_device'
  }
  const key = `${result.kid.toString('hex')}:${result.nonce.toString('hex')}`
  // A token is accepted while the gateway's clock is within the window of its timestamp, so only
  // until timestamp + window: remember it that long. The expiry depends on the signed timestamp
  // alone, so a replay brings the expiry the first use had, whatever the clock did since
  // (NonceJournal's floor refuses it once that key is forgotten).
  const expiresAt = (result.timestamp + protection.tokenWindowSeconds + 1) * 1000
  const outcome = await protection.tokenNonces.remember(key, expiresAt, nowMs)
  if (outcome === 'replayed') return 'replayed'
  if (outcome === 'full') return 'nonce_memory_full'
  protection.lastKid.set(device.id, result.kid.toString('hex'))
  return 'ok'
}
