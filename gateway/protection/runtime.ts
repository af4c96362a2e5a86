import { join } from 'node:path'
import type { GatewayConfig } from '../../config/index.js'
import type { Logger } from '../../core/logger.js'
import { NonceJournal } from '../../core/nonce-journal.js'
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
  /**
   * One-time CONNECT token nonces accepted, each remembered on disk (before the
   * CONNACK) until its token could no longer be accepted, so a restart or a
   * crash does not make a token replayable.
   */
  tokenNonces: NonceJournal
  tokenWindowSeconds: number
  failuresBeforeDisconnect: number
  /**
   * Per device id, the kid (hex) it was last heard under (a payload or a token): during a key
   * overlap, what the gateway sends it is protected under the key it is known to hold.
   */
  lastKid: Map<string, string>
  close(): Promise<void>
}

/** Token nonces remembered at most (each until its timestamp plus the window); beyond it tokens are refused. */
export const MAX_TOKEN_NONCES = 100_000

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
  const sequence = await GatewaySequence.open(join(stateDir, 'gateway-sequence'), {
    logger: logger.child({ module: 'gateway-sequence' }),
  })
  const tokenFile = join(stateDir, 'token-nonces')
  const tokenNonces = await NonceJournal.open(tokenFile, { maxEntries: MAX_TOKEN_NONCES })
  const ahead = tokenNonces.floorAheadWarning('token nonces')
  if (ahead !== undefined) logger.warn({ file: tokenFile }, ahead)
  const lastKid = new Map<string, string>()
  return {
    requirements: new ProtectionRequirements(lan.protection),
    opener: new PayloadOpener(guard, lan.payload.maxBytes, lastKid),
    lastKid,
    sequence,
    tokenNonces,
    tokenWindowSeconds: lan.payload.tokenWindowSeconds,
    failuresBeforeDisconnect: lan.payload.failuresBeforeDisconnect,
    close: async () => {
      await tokenNonces.close()
      await store.close()
    },
  }
}
