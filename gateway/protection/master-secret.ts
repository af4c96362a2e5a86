import { readFile } from 'node:fs/promises'
import type { GatewayConfig } from '../../config/index.js'
import { Alg, type MasterSecretConfig } from '../../crypto/types.js'
import { GatewayError } from '../errors.js'

type PayloadKeyConfig = NonNullable<GatewayConfig['devices'][number]['payloadKey']>

const AEAD = {
  'AES-CCM-16-64-128': Alg.AES_CCM_16_64_128,
  A128GCM: Alg.A128GCM,
  A256GCM: Alg.A256GCM,
  'ChaCha20/Poly1305': Alg.CHACHA20_POLY1305,
} as const
const MAC = { 'HMAC 256/64': Alg.HMAC_256_64, 'HMAC 256/256': Alg.HMAC_256_256 } as const

/**
 * A device's `payloadKey` as the crypto code takes it: the master secret read
 * from its file (16 or 32 bytes of hex) and the algorithm names mapped to COSE
 * ids. Used by the gateway and by the simulator, so both read keys alike.
 */
export async function readMasterSecretConfig(key: PayloadKeyConfig): Promise<MasterSecretConfig> {
  const text = (await readFile(key.secretFile, 'utf8')).trim()
  if (!/^([0-9a-fA-F]{2}){16}$|^([0-9a-fA-F]{2}){32}$/.test(text)) {
    throw new GatewayError(
      'GW_ERR_BAD_PSK_FILE',
      `${key.secretFile}: expected a master secret of 16 or 32 bytes as hex`,
    )
  }
  return {
    kid: Buffer.from(key.kid, 'hex'),
    masterSecret: Buffer.from(text, 'hex'),
    aead: AEAD[key.aead],
    mac: MAC[key.mac],
  }
}
