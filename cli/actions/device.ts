import { randomBytes } from 'node:crypto'
import { access } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { stringify } from 'yaml'
import { loadConfig } from '../../config/index.js'
import { PEPPER_BYTES, type Pepper, readPepperFile } from '../../gateway/auth/pepper.js'
import { hashPassword } from '../../gateway/index.js'
import { writeSecretFile } from '../../pki/index.js'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length
    if (size > 4096) throw new Error('password on standard input is longer than 4096 bytes')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

export interface PepperOptions {
  pepperFile?: string
  config?: string
}

/**
 * The pepper to hash with: `--pepper-file`, else the `lan.passwordPepperFile` of `--config`;
 * none without either (a `$scrypt$` hash).
 */
async function pepperOf(options: PepperOptions): Promise<Pepper | undefined> {
  if (options.pepperFile !== undefined && options.config !== undefined)
    throw new Error('Expected --pepper-file or --config, not both')
  if (options.pepperFile !== undefined) return readPepperFile(resolve(options.pepperFile))
  if (options.config === undefined) return undefined
  const file = (await loadConfig(options.config, { checkFiles: false })).lan.passwordPepperFile
  return file === undefined ? undefined : readPepperFile(file)
}

export interface AddOptions extends PepperOptions {
  username?: string
  psk?: boolean
  sealed?: boolean
  kid?: string
  aead: string
  keyDir: string
  clientId?: string[]
  group?: string[]
}

/** `device hash-password`: the scrypt hash of the password on standard input (peppered with a pepper). */
export async function hashPasswordFromStdin(options: PepperOptions): Promise<void> {
  const pepper = await pepperOf(options)
  const password = await readStdin()
  if (password.length === 0) throw new Error('no password on standard input')
  process.stdout.write(`${await hashPassword(password, undefined, pepper)}\n`)
}

/** `device pepper <file>`: a new 32-byte password pepper, 0600; never overwrites a file. */
export async function writePepper(file: string): Promise<void> {
  const path = resolve(file)
  const exists = await access(path).then(
    () => true,
    () => false,
  )
  if (exists)
    throw new Error(
      `${path} exists; a new pepper would break every hash made with the old one, so it is not overwritten`,
    )
  await writeSecretFile(path, `${randomBytes(PEPPER_BYTES).toString('hex')}\n`)
  process.stderr.write(
    `password pepper written to ${path} (mode 0600); back it up apart from the config, never log it\n`,
  )
}

/** `device add`: credentials for a new device, and its `devices:` entry on standard output. */
export async function addDevice(id: string, options: AddOptions): Promise<void> {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(id)) {
    throw new Error(`Expected a device id of letters, digits, ".", "_" or "-", got \`${id}\``)
  }
  if (!options.username && !options.psk && !options.sealed) {
    throw new Error('Expected --username, --psk and/or --sealed: a device needs a credential')
  }
  const entry: Record<string, unknown> = { id }
  if (options.username) {
    const pepper = await pepperOf(options)
    const password = await readStdin()
    if (password.length < 8) throw new Error('Expected a password of at least 8 characters on standard input')
    entry.username = options.username
    entry.passwordHash = await hashPassword(password, undefined, pepper)
  }
  if (options.psk) {
    const keyFile = resolve(join(options.keyDir, `${id}.psk`))
    await writeSecretFile(keyFile, `${randomBytes(16).toString('hex')}\n`)
    entry.psk = { identity: id, keyFile }
    process.stderr.write(`PSK key written to ${keyFile} (mode 0600); give it to the device, never log it\n`)
  }
  if (options.sealed) {
    const kid = options.kid ?? randomBytes(1).toString('hex')
    if (!/^([0-9a-fA-F]{2}){1,6}$/.test(kid))
      throw new Error(`Expected --kid to be 1 to 6 bytes as hex, got \`${kid}\``)
    const aeads = ['AES-CCM-16-64-128', 'A128GCM', 'A256GCM', 'ChaCha20/Poly1305']
    if (!aeads.includes(options.aead))
      throw new Error(`Expected --aead to be one of ${aeads.join(', ')}, got \`${options.aead}\``)
    const secret = randomBytes(16)
    const secretFile = resolve(join(options.keyDir, `${id}.secret`))
    await writeSecretFile(secretFile, `${secret.toString('hex')}\n`)
    // A token device is named by its CONNECT username (docs/wire-format.md): print it, so the
    // entry connects as it is.
    if (entry.username === undefined) entry.username = id
    entry.payloadKey = { kid: kid.toLowerCase(), secretFile, aead: options.aead }
    const bytes = (b: Buffer) => [...b].map((x) => `0x${x.toString(16).padStart(2, '0')}`).join(', ')
    process.stderr.write(
      [
        `payload master secret written to ${secretFile} (mode 0600). For the device firmware (shown once):`,
        `  key id (kid):   ${kid.toLowerCase()}   { ${bytes(Buffer.from(kid, 'hex'))} }`,
        `  master secret:  ${secret.toString('hex')}`,
        `                  { ${bytes(secret)} }`,
        `  master salt:    (none)`,
        `  algorithm:      ${options.aead}; MAC HMAC 256/64; key derivation HKDF-SHA256 as RFC 8613 (see docs/wire-format.md)`,
        `  CONNECT:        username \`${entry.username}\`, client id ${options.clientId ? `matching ${options.clientId.join(' or ')}` : `\`${id}\``}, password = a one-time token (docs/wire-format.md)`,
        '',
      ].join('\n'),
    )
  }
  if (options.clientId) entry.clientIds = options.clientId
  if (options.group) entry.groups = options.group
  process.stdout.write(stringify([entry]))
}
