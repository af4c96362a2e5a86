import { access } from 'node:fs/promises'
import { VpnError } from './errors.js'
import { readKeyFile, writeKeyFile } from './key-files.js'
import { type CommandOptions, run } from './run.js'
import { isWireGuardKey, SecretKey } from './secret.js'

const KEY_TIMEOUT_MS = 5000

/** A new private key from `wg genkey`. */
export async function generatePrivateKey(options: CommandOptions = {}): Promise<SecretKey> {
  const { stdout } = await run('wg', ['genkey'], { ...options, timeoutMs: KEY_TIMEOUT_MS })
  return new SecretKey(stdout.trim(), 'output of `wg genkey`')
}

/** A new preshared key from `wg genpsk`. */
export async function generatePresharedKey(options: CommandOptions = {}): Promise<SecretKey> {
  const { stdout } = await run('wg', ['genpsk'], { ...options, timeoutMs: KEY_TIMEOUT_MS })
  return new SecretKey(stdout.trim(), 'output of `wg genpsk`')
}

/** The public key of `privateKey`, from `wg pubkey` with the private key on stdin. */
export async function derivePublicKey(privateKey: SecretKey, options: CommandOptions = {}): Promise<string> {
  const { stdout } = await run('wg', ['pubkey'], {
    ...options,
    input: `${privateKey.reveal()}\n`,
    secrets: [privateKey.reveal()],
    timeoutMs: KEY_TIMEOUT_MS,
  })
  const publicKey = stdout.trim()
  if (!isWireGuardKey(publicKey)) {
    throw new VpnError(
      'VPN_ERR_BAD_KEY',
      `Expected \`wg pubkey\` to print a public key, got ${publicKey.length} characters`,
    )
  }
  return publicKey
}

/** The public key that goes with the private key in `privateKeyFile`. */
export async function readPublicKey(privateKeyFile: string, options: CommandOptions = {}): Promise<string> {
  return derivePublicKey(await readKeyFile(privateKeyFile), options)
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path)
    return true
  } catch {
    return false
  }
}

export interface CreateKeysOptions extends CommandOptions {
  privateKeyFile: string
  /** Also create a preshared key here (give the same file to the cloud side). */
  presharedKeyFile?: string
  /** Replace existing key files; by default existing ones are kept and read. */
  overwrite?: boolean
}

export interface CreatedKeys {
  /** Print this for the cloud side's config. */
  publicKey: string
  createdPrivateKey: boolean
  createdPresharedKey: boolean
}

/**
 * `edge-gateway vpn keys`: makes the gateway's key pair (and optionally a preshared key), files
 * 0600, unless they exist already; returns the public key to give the cloud side.
 */
export async function createKeys(options: CreateKeysOptions): Promise<CreatedKeys> {
  const { privateKeyFile, presharedKeyFile, overwrite = false, ...command } = options
  let createdPrivateKey = false
  let privateKey: SecretKey
  if (!overwrite && (await exists(privateKeyFile))) {
    privateKey = await readKeyFile(privateKeyFile)
  } else {
    privateKey = await generatePrivateKey(command)
    await writeKeyFile(privateKeyFile, privateKey, { overwrite })
    createdPrivateKey = true
  }
  let createdPresharedKey = false
  if (presharedKeyFile !== undefined) {
    if (!overwrite && (await exists(presharedKeyFile))) {
      await readKeyFile(presharedKeyFile, 'preshared key')
    } else {
      await writeKeyFile(presharedKeyFile, await generatePresharedKey(command), { overwrite })
      createdPresharedKey = true
    }
  }
  return { publicKey: await derivePublicKey(privateKey, command), createdPrivateKey, createdPresharedKey }
}
