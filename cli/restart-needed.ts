import { isDeepStrictEqual } from 'node:util'
import type { GatewayConfig } from '../config/index.js'

/**
 * What a reload applies (cli/app.ts `reload`): devices, policies and the Mosquitto files
 * (loadAccess), the password pepper file (read again with them) and lan.deviceRate.
 * lan.passwordChecks is sized at start only.
 */
const RELOADED = new Set(['devices', 'policies', 'mosquitto', 'lan.deviceRate', 'lan.passwordPepperFile'])
/** Sections compared one key down, so that a change is named `lan.protection`, not `lan`. */
const BY_KEY = new Set(['lan', 'cloud'])

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v)

const keysOf = (a: Record<string, unknown>, b: Record<string, unknown>) =>
  [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()

/**
 * The config paths that differ between the config the gateway runs with and the one a reload read,
 * and that a reload does not apply (the listeners, payload protection, the cloud, the tunnel...):
 * they take effect at the next restart, which the reload log says, rather than seeming applied.
 */
export function restartNeeded(running: Readonly<GatewayConfig>, next: Readonly<GatewayConfig>): string[] {
  const a = running as unknown as Record<string, unknown>
  const b = next as unknown as Record<string, unknown>
  const changed: string[] = []
  for (const key of keysOf(a, b)) {
    if (RELOADED.has(key)) continue
    const before = a[key]
    const after = b[key]
    if (BY_KEY.has(key) && isRecord(before) && isRecord(after)) {
      for (const sub of keysOf(before, after)) {
        const path = `${key}.${sub}`
        if (!RELOADED.has(path) && !isDeepStrictEqual(before[sub], after[sub])) changed.push(path)
      }
    } else if (!isDeepStrictEqual(before, after)) {
      changed.push(key)
    }
  }
  return changed
}
