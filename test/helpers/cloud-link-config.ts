import { type CloudConfig, cloudSchema } from '../../config/schema.js'
import type { LabPki } from '../../pki/index.js'

/**
 * A cloud link's config for a broker on 127.0.0.1:`port` that trusts the lab PKI: its client
 * certificate, quick retries (100 to 300 ms) so a test sees reconnects soon.
 */
export function labLinkConfig(pki: LabPki, port: number): CloudConfig {
  return cloudSchema.parse({
    host: '127.0.0.1',
    port,
    caFile: pki.caFile,
    certFile: pki.clientCertFile,
    keyFile: pki.clientKeyFile,
    reconnect: { initialDelayMs: 100, maxDelayMs: 300 },
    topics: [{ local: 'devices/', cloud: 'gw/' }],
  })
}
