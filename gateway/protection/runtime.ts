import { join } from 'node:path'
import { LRUCache } from 'lru-cache'
import type { GatewayConfig } from '../../config/index.js'
import type { Logger } from '../../core/logger.js'
import { ReplayGuard } from '../../crypto/replay-guard.js'
import { FileReplayStore } from '../../crypto/replay-store.js'
import { GatewaySequence } from './gateway-sequence.js'
import { PayloadOpener } from './payload-opener.js'
import { ProtectionRequirements } from './requirements.js'

/** Everything the hooks need for payload protection, made once per gateway. */
export interface ProtectionRuntime {
  requirements: ProtectionRequirements
  opener: PayloadOpener
  /** The gateway's sender sequence for gateway-to-device messages. */
  sequence: GatewaySequence
  /** One-time CONNECT token nonces seen, remembered for twice the window (bounded). */
  tokenNonces: LRUCache<string, true>
  tokenWindowSeconds: number
  failuresBeforeDisconnect: number
  close(): Promise<void>
}

export async function createProtectionRuntime(
  lan: GatewayConfig['lan'],
  stateDir: string,
  logger: Logger,
): Promise<ProtectionRuntime> {
  const store = new FileReplayStore(join(stateDir, 'replay-windows'), {
    // `component`, not `module`: the logger given already carries `module` (one key per line).
    logger: logger.child({ component: 'replay-store' }),
  })
  const guard = await ReplayGuard.open(store)
  return {
    requirements: new ProtectionRequirements(lan.protection),
    opener: new PayloadOpener(guard, lan.payload.maxBytes),
    sequence: new GatewaySequence(join(stateDir, 'gateway-sequence')),
    tokenNonces: new LRUCache<string, true>({ max: 100_000, ttl: 2 * lan.payload.tokenWindowSeconds * 1000 }),
    tokenWindowSeconds: lan.payload.tokenWindowSeconds,
    failuresBeforeDisconnect: lan.payload.failuresBeforeDisconnect,
    close: () => store.close(),
  }
}
