import { describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { z } from 'zod'
import { cloudToolSchema } from '../../cli/cloud-config.js'
import { formatIssue } from '../../config/format-issue.js'
import { ConfigError, configSchema, parseConfig } from '../../config/index.js'
import { ECHOED_KEYS, mayQuoteValueAt, SECRET_KEYS } from '../../config/secret-keys.js'
import { schemaKeys } from './schema-keys.js'

const source = { file: '/etc/edge-gateway/gateway.yaml', baseDir: '/etc/edge-gateway' }
const NOT_SHOWN = '(value not shown, it may be secret)'
const CLOUD_KEY = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='

/** Secret material as an operator might paste it where a path or a hash belongs. */
const PLAIN_PASSWORD = 'hunter2-correct-horse-battery'
const PSK_HEX = '1f2e3d4c5b6a79880716253443526170'
const MASTER_SECRET_HEX = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff'
const PEM_KEY =
  '-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ7dZ0qTtUq8n3mXxVv1b0KjZ1ZrFqPRIVATEPART\n-----END PRIVATE KEY-----\n'
const WG_PRIVATE_KEY = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
/** A wrong-typed value: quoted, it would show as these digits. */
const NUMBER = 7391846502

/** Every section that holds a secret key, each present once, schema-valid. */
const base = {
  gateway: { id: 'gw-1' },
  lan: {
    listeners: [
      { type: 'tcp', port: 1883 },
      { type: 'tls', port: 8883, certFile: 'lan.pem', keyFile: 'lan.key', caFile: 'devices-ca.pem' },
    ],
  },
  devices: [
    {
      id: 'dev',
      username: 'dev',
      passwordHash: '$scrypt$ln=14,r=8,p=1$c2FsdA$aGFzaA',
      psk: {
        identity: 'dev-r2',
        keyFile: 'keys/dev-r2.psk',
        previous: { identity: 'dev', keyFile: 'keys/dev.psk', until: '2026-12-31T00:00:00Z' },
      },
      payloadKey: {
        kid: '01',
        secretFile: 'keys/dev.secret',
        previous: { kid: '02', secretFile: 'keys/dev-old.secret', until: '2026-12-31T00:00:00Z' },
      },
    },
  ],
  mosquitto: { passwordFile: 'mosquitto/passwd', pskFile: 'mosquitto/psk', aclFile: 'mosquitto/acl' },
  observability: { listen: '10.0.0.5:9464', tokenFile: 'keys/metrics.token' },
  cloud: {
    host: '10.78.0.2',
    caFile: 'pki/ca.pem',
    certFile: 'pki/client.pem',
    keyFile: 'pki/client.key',
    signing: { keyFile: 'state/signing.key' },
    topics: [{ local: 'devices/', cloud: 'gw/' }],
  },
  vpn: {
    interfaceName: 'wg0',
    privateKeyFile: 'wg/private.key',
    addresses: ['10.78.0.1/30'],
    peer: {
      publicKey: CLOUD_KEY,
      presharedKeyFile: 'wg/preshared.key',
      endpoint: '192.0.2.1:51820',
      allowedIps: ['10.78.0.2/32'],
    },
  },
}

/** `lan.listeners[]` is the tls listener (index 1); every other list holds one entry. */
function concrete(path: string): string {
  return path.replace('lan.listeners[]', 'lan.listeners[1]').replaceAll('[]', '[0]')
}

function withValueAt(path: string, value: unknown): unknown {
  const config = structuredClone(base) as Record<string, unknown>
  const parts = concrete(path)
    .split(/\.|\[(\d+)\]/)
    .filter((p) => p !== undefined && p !== '')
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p))
  let node = config as Record<PropertyKey, unknown>
  for (const part of parts.slice(0, -1)) node = node[part] as Record<PropertyKey, unknown>
  node[parts.at(-1)!] = value
  return config
}

function schemaErrorOf(config: unknown): string {
  try {
    parseConfig(stringify(config), source)
  } catch (err) {
    if (err instanceof ConfigError && err.code === 'CONFIG_ERR_SCHEMA') return err.message
    throw err
  }
  throw new Error('expected CONFIG_ERR_SCHEMA')
}

const keys = schemaKeys(configSchema)
/** Every schema path at or under a secret key. */
const secretPaths = keys
  .filter((k) => k.path.split(/\.|\[\]/).some((key) => SECRET_KEYS.has(key)))
  .map((k) => k.path)

/** For each path at or under a secret key: the message after the path, for the wrong-typed NUMBER. */
const WRONG_TYPE: Record<string, string> = {
  'lan.listeners[].keyFile': `expected string, got a number ${NOT_SHOWN}`,
  'lan.passwordPepperFile': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].passwordHash': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].psk': `expected object, got a number ${NOT_SHOWN}`,
  'devices[].psk.identity': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].psk.keyFile': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].psk.previous': `expected object, got a number ${NOT_SHOWN}`,
  'devices[].psk.previous.identity': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].psk.previous.keyFile': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].psk.previous.until': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].payloadKey': `expected object, got a number ${NOT_SHOWN}`,
  'devices[].payloadKey.kid': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].payloadKey.secretFile': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].payloadKey.aead': `Invalid option: expected one of "AES-CCM-16-64-128"|"A128GCM"|"A256GCM"|"ChaCha20/Poly1305", got a number ${NOT_SHOWN}`,
  'devices[].payloadKey.mac': `Invalid option: expected one of "HMAC 256/64"|"HMAC 256/256", got a number ${NOT_SHOWN}`,
  'devices[].payloadKey.previous': `expected object, got a number ${NOT_SHOWN}`,
  'devices[].payloadKey.previous.kid': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].payloadKey.previous.secretFile': `expected string, got a number ${NOT_SHOWN}`,
  'devices[].payloadKey.previous.until': `expected string, got a number ${NOT_SHOWN}`,
  'mosquitto.passwordFile': `expected string, got a number ${NOT_SHOWN}`,
  'mosquitto.pskFile': `expected string, got a number ${NOT_SHOWN}`,
  'cloud.keyFile': `expected string, got a number ${NOT_SHOWN}`,
  'cloud.signing': `expected object, got a number ${NOT_SHOWN}`,
  'cloud.signing.keyFile': `expected string, got a number ${NOT_SHOWN}`,
  'vpn.privateKeyFile': `expected string, got a number ${NOT_SHOWN}`,
  'vpn.peer.publicKey': `expected string, got a number ${NOT_SHOWN}`,
  'vpn.peer.presharedKeyFile': `expected string, got a number ${NOT_SHOWN}`,
  'observability.tokenFile': `expected string, got a number ${NOT_SHOWN}`,
}

const PATH_NOT_SECRET = `the path of a file holding the secret, not the secret itself, got a string ${NOT_SHOWN}`

/** For each path ending at a secret key: the secret itself where it does not belong, and the message. */
const SECRET_ITSELF: Record<string, [string, string]> = {
  'devices[].passwordHash': [
    PLAIN_PASSWORD,
    `a hash written by \`edge-gateway device hash-password\`, got a string ${NOT_SHOWN}`,
  ],
  'devices[].psk': [PSK_HEX, `expected object, got a string ${NOT_SHOWN}`],
  'devices[].psk.keyFile': [PSK_HEX, PATH_NOT_SECRET],
  'devices[].psk.previous.keyFile': [PSK_HEX, PATH_NOT_SECRET],
  'devices[].payloadKey': [MASTER_SECRET_HEX, `expected object, got a string ${NOT_SHOWN}`],
  'devices[].payloadKey.secretFile': [MASTER_SECRET_HEX, PATH_NOT_SECRET],
  'devices[].payloadKey.previous.secretFile': [MASTER_SECRET_HEX, PATH_NOT_SECRET],
  'lan.listeners[].keyFile': [PEM_KEY, PATH_NOT_SECRET],
  // A 32-byte pepper pasted for the path of its file.
  'lan.passwordPepperFile': [MASTER_SECRET_HEX, PATH_NOT_SECRET],
  'cloud.keyFile': [PEM_KEY, PATH_NOT_SECRET],
  'cloud.signing': [PEM_KEY, `expected object, got a string ${NOT_SHOWN}`],
  'cloud.signing.keyFile': [PEM_KEY, PATH_NOT_SECRET],
  'mosquitto.passwordFile': [`dev:$7$101$${'A'.repeat(16)}$${'B'.repeat(88)}\n`, PATH_NOT_SECRET],
  'mosquitto.pskFile': [`dev:${PSK_HEX}\n`, PATH_NOT_SECRET],
  'vpn.privateKeyFile': [WG_PRIVATE_KEY, PATH_NOT_SECRET],
  'observability.tokenFile': [MASTER_SECRET_HEX, PATH_NOT_SECRET],
  'vpn.peer.presharedKeyFile': [WG_PRIVATE_KEY, PATH_NOT_SECRET],
  'vpn.peer.publicKey': [
    `${WG_PRIVATE_KEY.slice(0, 40)}#typo`,
    `a WireGuard public key (44 characters of base64), got a string ${NOT_SHOWN}`,
  ],
}

describe('config errors never quote a secret (docs/security.md)', () => {
  it('the base config is valid, so each case below fails on its one value only', () => {
    expect(configSchema.safeParse(base).error?.issues).toBeUndefined()
  })

  it('every key of the schema is classified: secret, quoted, or a mapping or list (never quoted)', () => {
    const unclassified = keys.filter(
      (k) => !SECRET_KEYS.has(k.key) && !ECHOED_KEYS.has(k.key) && !k.container,
    )
    expect(unclassified.map((k) => k.path)).toEqual([])
    expect([...SECRET_KEYS].filter((key) => ECHOED_KEYS.has(key))).toEqual([])
    const names = new Set(keys.map((k) => k.key))
    expect([...SECRET_KEYS, ...ECHOED_KEYS].filter((key) => !names.has(key))).toEqual([])
  })

  it('a key named like a secret is a secret key (the public-key paths are reviewed exceptions)', () => {
    const reviewedPublic = new Set([
      'publicKeyFile',
      'signingKeyFile',
      'tokenWindowSeconds',
      // lan.passwordChecks: how many scrypt runs at once and how many devices are remembered.
      'passwordChecks',
    ])
    const secretLooking = keys
      .map((k) => k.key)
      .filter((key) => /secret|passw|psk|private|preshared|token|credential|key$|keyfile$/i.test(key))
    expect([
      ...new Set(secretLooking.filter((key) => !SECRET_KEYS.has(key) && !reviewedPublic.has(key))),
    ]).toEqual([])
  })

  it('tries every path at or under a secret key', () => {
    expect(Object.keys(WRONG_TYPE).sort()).toEqual([...secretPaths].sort())
    const endingAtSecret = secretPaths.filter((path) => SECRET_KEYS.has(path.split('.').at(-1)!))
    expect(Object.keys(SECRET_ITSELF).sort()).toEqual(endingAtSecret.sort())
  })

  for (const [path, tail] of Object.entries(WRONG_TYPE)) {
    it(`${path}: a wrong-typed value is named by path and expected form, not quoted`, () => {
      const message = schemaErrorOf(withValueAt(path, NUMBER))
      expect(message).toBe(`${source.file}: ${concrete(path)}: ${tail}`)
      expect(message).not.toContain(String(NUMBER))
    })
  }

  for (const [path, [secret, tail]] of Object.entries(SECRET_ITSELF)) {
    it(`${path}: the secret itself is refused without being quoted`, () => {
      const message = schemaErrorOf(withValueAt(path, secret))
      expect(message).toBe(`${source.file}: ${concrete(path)}: ${tail}`)
      for (const line of secret.split('\n').filter((l) => l.length > 4)) {
        expect(message).not.toContain(line.slice(0, 12))
      }
    })
  }

  it('a key no list names (added later) is not quoted; a scalar where a mapping belongs is not quoted', () => {
    const schema = z.strictObject({
      apiToken: z.string().min(64),
      cloud: z.strictObject({ host: z.string() }),
    })
    const input = { apiToken: 'tok-3f9a1c77e2', cloud: 'tok-3f9a1c77e2' }
    const lines = (schema.safeParse(input).error?.issues ?? []).map((issue) =>
      formatIssue(issue, input, mayQuoteValueAt),
    )
    expect(lines).toEqual([
      `apiToken: Too small: expected string to have >=64 characters, got a string ${NOT_SHOWN}`,
      `cloud: expected object, got a string ${NOT_SHOWN}`,
    ])
  })

  it("other zod-checked files (the cloud tools' config) quote nothing at or under a secret key", () => {
    const input = {
      broker: { host: 'cloud', caFile: 'ca.pem', certFile: 'c.pem', keyFile: NUMBER, port: 'eighty' },
      recipients: [{ kid: 'k1', privateKeyFile: NUMBER }],
    }
    const lines = (cloudToolSchema.safeParse(input).error?.issues ?? []).map((issue) =>
      formatIssue(issue, input),
    )
    expect(lines).toEqual([
      'broker.port: expected number, got "eighty" (string)',
      `broker.keyFile: expected string, got a number ${NOT_SHOWN}`,
      `recipients[0].privateKeyFile: expected string, got a number ${NOT_SHOWN}`,
    ])
  })

  it('values under keys that hold nothing secret are still quoted', () => {
    expect(schemaErrorOf(withValueAt('cloud.port', 'eighty'))).toBe(
      `${source.file}: cloud.port: expected number, got "eighty" (string)`,
    )
    expect(schemaErrorOf(withValueAt('devices[].clientIds', ['a/b']))).toBe(
      `${source.file}: devices[0].clientIds[0]: no "+", "#", "/" or control characters, got "a/b" (string)`,
    )
  })
})
