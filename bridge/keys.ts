import { createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { secretFileProblem } from '../config/secret-files.js'
import { writeSecretFile } from '../pki/files.js'
import { BridgeError } from './errors.js'

/** Key files are small; anything larger is not a key. */
const MAX_KEY_FILE_BYTES = 16 * 1024

async function readKeyFile(file: string, label: string): Promise<Buffer> {
  let bytes: Buffer
  try {
    bytes = await readFile(file)
  } catch (err) {
    throw new BridgeError('BRIDGE_ERR_KEY_FILE', `cannot read ${label} ${file}`, { cause: err })
  }
  if (bytes.length > MAX_KEY_FILE_BYTES) {
    throw new BridgeError('BRIDGE_ERR_KEY_FILE', `${label} ${file} is ${bytes.length} bytes; not a key file`)
  }
  return bytes
}

/**
 * The gateway's Ed25519 signing key: read from `file` (which must be 0600),
 * or made and written there (0600) on first start. `created` says which.
 */
export async function loadOrCreateSigningKey(file: string): Promise<{ key: KeyObject; created: boolean }> {
  const problem = await secretFileProblem(file)
  if (problem?.endsWith('does not exist')) {
    const { privateKey } = generateKeyPairSync('ed25519')
    await writeSecretFile(file, privateKey.export({ type: 'pkcs8', format: 'pem' }))
    return { key: privateKey, created: true }
  }
  if (problem) throw new BridgeError('BRIDGE_ERR_KEY_FILE', `cloud.signing.keyFile: ${problem}`)
  const key = parsePrivateKey(await readKeyFile(file, 'cloud.signing.keyFile'), file)
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new BridgeError(
      'BRIDGE_ERR_KEY_FILE',
      `cloud.signing.keyFile ${file} holds a ${key.asymmetricKeyType} key; the gateway signs with Ed25519`,
    )
  }
  return { key, created: false }
}

/** A PEM private key (PKCS#8, or the PKCS#1/SEC1 forms OpenSSL writes). */
export function parsePrivateKey(pem: Buffer, file: string): KeyObject {
  try {
    return createPrivateKey(pem)
  } catch (err) {
    throw new BridgeError('BRIDGE_ERR_KEY_FILE', `${file} is not a PEM private key`, { cause: err })
  }
}

/** An Ed25519 or P-256 public key in PEM (an operator's key). */
export async function readSignaturePublicKey(file: string, label: string): Promise<KeyObject> {
  const bytes = await readKeyFile(file, label)
  let key: KeyObject
  try {
    key = createPublicKey(bytes)
  } catch (err) {
    throw new BridgeError('BRIDGE_ERR_KEY_FILE', `${label} ${file} is not a PEM public key`, { cause: err })
  }
  const p256 = key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1'
  if (key.asymmetricKeyType !== 'ed25519' && !p256) {
    throw new BridgeError('BRIDGE_ERR_KEY_FILE', `${label} ${file} must be an Ed25519 or P-256 key`)
  }
  return key
}

/** A raw 32-byte X25519 key written as hex or base64 text (HPKE recipients). */
export async function readRawKey(file: string, label: string): Promise<Buffer> {
  const text = (await readKeyFile(file, label)).toString('utf8').trim()
  const key = /^[0-9a-fA-F]{64}$/.test(text) ? Buffer.from(text, 'hex') : Buffer.from(text, 'base64')
  if (key.length !== 32) {
    throw new BridgeError(
      'BRIDGE_ERR_KEY_FILE',
      `${label} ${file} must hold a 32-byte X25519 key as 64 hex digits or base64`,
    )
  }
  return key
}

/** As readRawKey, for a private key: the file must be 0600. */
export async function readRawPrivateKey(file: string, label: string): Promise<Buffer> {
  const problem = await secretFileProblem(file)
  if (problem) throw new BridgeError('BRIDGE_ERR_KEY_FILE', `${label}: ${problem}`)
  return readRawKey(file, label)
}
