/**
 * Which config values an error message may quote. In the gateway config a value is quoted only
 * when the key it sits under is in ECHOED_KEYS and no key on its path is in SECRET_KEYS; anything
 * else, a key added later included, is described by its type alone ("a string"). Other zod-checked
 * files (policies, the cloud tools' config) quote anything not at or under a secret key.
 * test/config/secret-values.test.ts walks the schema: every key is secret, echoed, or a mapping or
 * list, and each secret key is tried.
 */

/** Keys that hold, or could be handed by mistake, secret material: nothing at or under them is quoted. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  // devices[]: a plain password pasted for its hash, an inline PSK or master secret.
  'passwordHash',
  'psk',
  'payloadKey',
  'secretFile',
  // Paths to private keys (TLS listeners, PSKs, the cloud client key, the signing key); a
  // pasted key would land here.
  'keyFile',
  'signing',
  // vpn: the WireGuard private and preshared keys; a private key looks exactly like a public one.
  'privateKeyFile',
  'presharedKeyFile',
  'publicKey',
  // mosquitto: its password and PSK files.
  'passwordFile',
  'pskFile',
  // lan: the password pepper's file. Its path is no secret, but a pepper pasted here would be.
  'passwordPepperFile',
  // observability: the bearer token's file; a token pasted here would be one.
  'tokenFile',
])

/** Keys whose values are names, numbers, addresses, public paths or choices: quoting them helps. */
export const ECHOED_KEYS: ReadonlySet<string> = new Set([
  'aclFile',
  'addresses',
  'aead',
  'allowedIps',
  'burst',
  'cacheEntries',
  'caFile',
  'certFile',
  'clientId',
  'clientIds',
  'cloud',
  'commonName',
  'concurrency',
  'connectTimeoutMs',
  'deniedPublish',
  'deviceShare',
  'deadlineSeconds',
  'durability',
  'endpoint',
  'failuresBeforeDisconnect',
  'file',
  'floodDisconnectAfter',
  'groups',
  'healthyHandshakeSeconds',
  'host',
  'id',
  'identity',
  'identityHint',
  'implementation',
  'issuerCaFile',
  'inflight',
  'initialDelayMs',
  'interfaceName',
  'intervalSeconds',
  'keepaliveSeconds',
  'kid',
  'leadDays',
  'level',
  'listen',
  'listenPort',
  'local',
  'lockSeconds',
  'mac',
  'manage',
  'maxAgeSeconds',
  'maxBytes',
  'maxDelayMs',
  'maxEntries',
  'connectMs',
  'handshakeMs',
  'maxConnectBytes',
  'maxConnectionsPerDevice',
  'maxOutboundBytes',
  'maxPacketBytes',
  'maxPerClient',
  'maxSubscriptionsPerClient',
  'maxTopicBytes',
  'maxFailures',
  'maxMessages',
  'maxVersion',
  'memoryMiB',
  'messagesPerSecond',
  'minVersion',
  'mode',
  'mtu',
  'name',
  'netns',
  'persistentKeepalive',
  'pollMs',
  'port',
  'prefix',
  'pretty',
  'protocolVersion',
  'publicKeyFile',
  'quotaBytes',
  'perAddress',
  'refusalDelayMs',
  'sealFor',
  'servername',
  'signingKeyFile',
  'stateDir',
  'store',
  'tokenWindowSeconds',
  'topic',
  'total',
  'type',
  'until',
  'username',
  'warnDays',
  'windowSeconds',
])

const keysOf = (path: ReadonlyArray<PropertyKey>) =>
  path.filter((part): part is string => typeof part === 'string')

/** No key on `path` (a zod issue path) is a secret key: the default for every zod-checked file. */
export function notUnderSecretKey(path: ReadonlyArray<PropertyKey>): boolean {
  return !keysOf(path).some((key) => SECRET_KEYS.has(key))
}

/**
 * Whether a gateway config error may quote the value at `path`: under no secret key, and the
 * key it sits under is in ECHOED_KEYS. Fails closed: a key in neither list is not quoted.
 */
export function mayQuoteValueAt(path: ReadonlyArray<PropertyKey>): boolean {
  const nearest = keysOf(path).at(-1)
  return notUnderSecretKey(path) && nearest !== undefined && ECHOED_KEYS.has(nearest)
}
