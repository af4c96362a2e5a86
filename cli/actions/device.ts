import { randomBytes } from 'node:crypto'
import { access, readFile, rm, stat } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { type Document, isMap, isSeq, parseDocument, stringify, type YAMLMap } from 'yaml'
import { checkConfigFiles, type DeviceConfig, loadConfig, parseConfig } from '../../config/index.js'
import { raiseClockFloorFrom, trustedNow } from '../../core/clock-floor.js'
import { EdgeGatewayError } from '../../core/errors.js'
import { PEPPER_BYTES, type Pepper, readPepperFile } from '../../gateway/auth/pepper.js'
import { hashPassword } from '../../gateway/index.js'
import { writeAtomically, writeSecretFile } from '../../pki/index.js'
import { UsageError } from '../fail.js'

/** Whether something is at `path` (a key file a command must not overwrite). */
function fileExists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  )
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length
    if (size > 4096) throw new UsageError('password on standard input is longer than 4096 bytes')
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
    throw new UsageError('Expected --pepper-file or --config, not both')
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
  if (password.length === 0) throw new UsageError('no password on standard input')
  process.stdout.write(`${await hashPassword(password, undefined, pepper)}\n`)
}

/** `device pepper <file>`: a new 32-byte password pepper, 0600; never overwrites a file. */
export async function writePepper(file: string): Promise<void> {
  const path = resolve(file)
  if (await fileExists(path))
    throw new UsageError(
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
    throw new UsageError(`Expected a device id of letters, digits, ".", "_" or "-", got \`${id}\``)
  }
  if (!options.username && !options.psk && !options.sealed) {
    throw new UsageError('Expected --username, --psk and/or --sealed: a device needs a credential')
  }
  // Every option is checked before anything is written, so a mistake leaves no file behind.
  const kid = options.kid ?? randomBytes(1).toString('hex')
  const aeads = ['AES-CCM-16-64-128', 'A128GCM', 'A256GCM', 'ChaCha20/Poly1305']
  if (options.sealed) {
    if (!/^([0-9a-fA-F]{2}){1,6}$/.test(kid))
      throw new UsageError(`Expected --kid to be 1 to 6 bytes as hex, got \`${kid}\``)
    if (!aeads.includes(options.aead))
      throw new UsageError(`Expected --aead to be one of ${aeads.join(', ')}, got \`${options.aead}\``)
  }
  // A key file is never replaced: the device that holds the old key would be locked out at once
  // (a running gateway reads the file again).
  const pskFile = resolve(join(options.keyDir, `${id}.psk`))
  const secretFile = resolve(join(options.keyDir, `${id}.secret`))
  for (const [wanted, file] of [
    [options.psk, pskFile],
    [options.sealed, secretFile],
  ] as const) {
    if (wanted && (await fileExists(file)))
      throw new UsageError(
        `${file} exists: a device's key file is never overwritten (the device using it would be locked out); for a new PSK use \`device rotate\`, or pass --key-dir, or remove the file first`,
      )
  }
  const entry: Record<string, unknown> = { id }
  if (options.username) {
    const pepper = await pepperOf(options)
    const password = await readStdin()
    if (password.length < 8)
      throw new UsageError('Expected a password of at least 8 characters on standard input')
    entry.username = options.username
    entry.passwordHash = await hashPassword(password, undefined, pepper)
  }
  if (options.psk) {
    await writeSecretFile(pskFile, `${randomBytes(16).toString('hex')}\n`)
    entry.psk = { identity: id, keyFile: pskFile }
    process.stderr.write(`PSK key written to ${pskFile} (mode 0600); give it to the device, never log it\n`)
  }
  if (options.sealed) {
    const secret = randomBytes(16)
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

export interface RotateOptions {
  config: string
  /** Hours the old key stays accepted beside the new one. */
  overlapHours: string
  /** The new PSK identity; default: the old one with `-r<N+1>` (`dev` -> `dev-r2`, `dev-r2` -> `dev-r3`). */
  identity?: string
  /** Where the new key file goes; default: beside the old one. */
  keyDir?: string
}

/** The identity after `identity`: `dev` -> `dev-r2`, `dev-r2` -> `dev-r3`. */
export function nextPskIdentity(identity: string): string {
  const numbered = /^(.*)-r(\d{1,9})$/.exec(identity)
  return numbered ? `${numbered[1]}-r${Number(numbered[2]) + 1}` : `${identity}-r2`
}

/** Why a PSK rotation cannot be applied; stable strings (the cloud push reports them). */
export type PskRotationRefusal =
  | 'unknown_device'
  | 'not_psk'
  | 'not_payload'
  | 'in_overlap'
  | 'bad_identity'
  | 'identity_taken'
  | 'key_file_exists'
  | 'invalid_config'

export class PskRotationError extends EdgeGatewayError {
  constructor(
    readonly reason: PskRotationRefusal,
    message: string,
  ) {
    super('CLI_ERR_ROTATION_REFUSED', message)
  }
}

export interface PskRotation {
  identity: string
  keyFile: string
  previousIdentity: string
  /** When the old identity stops being accepted (ISO 8601). */
  until: string
}

/** A PSK identity that can name its key file: no "/", "\\" or control character, no leading ".". */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
const KEY_FILE_SAFE_IDENTITY = /^[^./\\\u0000-\u001f\u007f][^/\\\u0000-\u001f\u007f]{0,127}$/u

function refuse(reason: PskRotationRefusal, message: string): never {
  throw new PskRotationError(reason, message)
}

/** The config of `configFile` and its device `id`; refused as `unknown_device` when there is none. */
async function loadDevice(configFile: string, id: string) {
  const config = await loadConfig(configFile)
  const device = config.devices.find((d) => d.id === id)
  if (!device) refuse('unknown_device', `${configFile}: no device \`${id}\` under \`devices\``)
  // An overlap counts from the latest time the gateway has seen, not from a clock that is behind
  // (a Pi after a power cut): NTP's correction would otherwise end it early.
  await raiseClockFloorFrom(config.gateway.stateDir)
  return { config, device }
}

/** A new key file is never written over one that is there: refused as `key_file_exists`. */
async function refuseIfExists(file: string, message: string): Promise<void> {
  if (await fileExists(file)) refuse('key_file_exists', message)
}

/**
 * Gives TLS-PSK device `id` of `configFile` the identity and `key` given (a new 0600 key file; the
 * identity defaults to the next of the old one) and keeps the old ones as `psk.previous`, accepted
 * for `overlapHours`; writes the config back (comments kept) after checking it loads. A gateway
 * running with this config applies it at once (it watches the file). Throws PskRotationError.
 * What `device rotate` (a key made here) and a PSK pushed from the cloud (docs/rotation.md) run.
 */
export async function applyPskRotation(
  configFile: string,
  id: string,
  options: { key: Buffer; overlapHours: number; identity?: string; keyDir?: string },
  at?: number,
): Promise<PskRotation> {
  const { config, device: current } = await loadDevice(configFile, id)
  const now = at ?? trustedNow()
  if (!current.psk) return refuse('not_psk', `${configFile}: device \`${id}\` has no \`psk\` to rotate`)
  const previous = current.psk.previous
  if (previous && Date.parse(previous.until) > now) {
    return refuse(
      'in_overlap',
      `${configFile}: device \`${id}\` is in a PSK overlap until ${previous.until} (identity \`${previous.identity}\` still accepted); rotate again after it, or remove \`psk.previous\` first`,
    )
  }
  const identity = options.identity ?? nextPskIdentity(current.psk.identity)
  // The identity names the new key file (`<identity>.psk`): no path separator, no control character,
  // no leading dot, so the file stays in the key folder, whoever asked (`device rotate`, or an
  // operator's push from the cloud). Otherwise any identity the config takes (1 to 128 characters).
  if (identity === current.psk.identity || !KEY_FILE_SAFE_IDENTITY.test(identity)) {
    return refuse(
      'bad_identity',
      `Expected a new PSK identity of 1 to 128 characters without "/", "\\" or control characters, not starting with ".", other than \`${current.psk.identity}\`, got \`${identity.slice(0, 160)}\``,
    )
  }
  const taken = config.devices.find(
    (d) => d.psk?.identity === identity || d.psk?.previous?.identity === identity,
  )
  if (taken)
    return refuse(
      'identity_taken',
      `the PSK identity \`${identity}\` is already used by device \`${taken.id}\``,
    )
  const keyFile = resolve(join(options.keyDir ?? dirname(current.psk.keyFile), `${identity}.psk`))
  await refuseIfExists(keyFile, `${keyFile} exists: never overwritten; pass --identity or --key-dir`)

  const until = new Date(now + options.overlapHours * 3_600_000).toISOString()
  await rewriteDevice(configFile, id, { file: keyFile, key: options.key }, (doc, node) => {
    const oldPsk = node.get('psk', true)
    const oldIdentity = isMap(oldPsk) ? oldPsk.get('identity') : undefined
    const oldKeyFile = isMap(oldPsk) ? oldPsk.get('keyFile') : undefined
    node.set(
      'psk',
      doc.createNode({ identity, keyFile, previous: { identity: oldIdentity, keyFile: oldKeyFile, until } }),
    )
  })
  return { identity, keyFile, previousIdentity: current.psk.identity, until }
}

/**
 * Edits device `id` in `configFile` (comments kept) with `edit`, after writing `secret.key` as hex
 * to `secret.file` (0600); the rewritten config must load as the gateway will load it before it
 * replaces the old one (same mode); otherwise the new file is removed and the error thrown.
 */
async function rewriteDevice(
  configFile: string,
  id: string,
  secret: { file: string; key: Buffer },
  edit: (doc: Document, node: YAMLMap) => void,
): Promise<void> {
  const doc = parseDocument(await readFile(configFile, 'utf8'))
  const devices = doc.get('devices')
  if (!isSeq(devices))
    throw new PskRotationError('invalid_config', `${configFile}: \`devices\` is not a list`)
  const node = devices.items.find((item) => isMap(item) && item.get('id') === id)
  if (!isMap(node)) {
    throw new PskRotationError(
      'invalid_config',
      `${configFile}: device \`${id}\` is not written as a mapping`,
    )
  }
  edit(doc, node)
  await writeSecretFile(secret.file, `${secret.key.toString('hex')}\n`)
  const rewritten = doc.toString()
  try {
    await checkConfigFiles(
      parseConfig(rewritten, { file: configFile, baseDir: dirname(configFile) }),
      configFile,
    )
    await writeAtomically(configFile, rewritten, (await stat(configFile)).mode & 0o777)
  } catch (err) {
    await rm(secret.file, { force: true })
    throw err
  }
}

/**
 * `edge-gateway device rotate <id>`: gives a TLS-PSK device a new identity and a new random key,
 * and keeps the old ones accepted until the end of the overlap (applyPskRotation;
 * docs/configuration.md#rotating-a-devices-psk).
 */
export async function rotateDevicePsk(id: string, options: RotateOptions, now?: number): Promise<void> {
  const hours = Number(options.overlapHours)
  if (!(Number.isFinite(hours) && hours > 0 && hours <= 24 * 365)) {
    throw new UsageError(
      `Expected --overlap-hours to be a number of hours above 0, at most 8760, got \`${options.overlapHours}\``,
    )
  }
  const configFile = resolve(options.config)
  const done = await applyPskRotation(
    configFile,
    id,
    {
      key: randomBytes(16),
      overlapHours: hours,
      ...(options.identity !== undefined && { identity: options.identity }),
      ...(options.keyDir !== undefined && { keyDir: options.keyDir }),
    },
    now,
  )
  const trusted = trustedNow()
  const behind = trusted - Date.now()
  if (now === undefined && behind > 60_000) {
    process.stderr.write(
      `warning: the system clock is ${Math.round(behind / 60_000)} min behind the time the gateway last saw (${new Date(trusted).toISOString()}); the overlap counts from that time\n`,
    )
  }
  process.stderr.write(
    [
      `device ${id}: new PSK identity \`${done.identity}\`, key written to ${done.keyFile} (mode 0600); give both to the device, never log the key`,
      `the old identity \`${done.previousIdentity}\` is accepted until ${done.until}; connections made with it are closed then`,
      `${configFile} updated: a gateway running with it applies this now (it watches the file; or send SIGHUP)`,
      '',
    ].join('\n'),
  )
}

export interface PayloadKeyRotation {
  kid: string
  /** The new master secret: for the device only (sealed under its old key), never logged. */
  secret: Buffer
  secretFile: string
  previousKid: string
  until: string
  /** The key being replaced, as the config has it (paths resolved): it seals the update. */
  oldKey: NonNullable<DeviceConfig['payloadKey']>
}

/**
 * A new master secret (16 random bytes) under a new random kid for payload device `id` of
 * `configFile`, the old key to be kept as `payloadKey.previous` for `overlapHours`; checked, not
 * written (commitPayloadKeyRotation writes it). Throws PskRotationError.
 */
export async function planPayloadKeyRotation(
  configFile: string,
  id: string,
  options: { overlapHours: number },
  at?: number,
): Promise<PayloadKeyRotation> {
  const { config, device: current } = await loadDevice(configFile, id)
  const now = at ?? trustedNow()
  const key = current.payloadKey
  if (!key) return refuse('not_payload', `${configFile}: device \`${id}\` has no \`payloadKey\` to rotate`)
  if (key.previous && Date.parse(key.previous.until) > now) {
    return refuse(
      'in_overlap',
      `${configFile}: device \`${id}\` is in a payload key overlap until ${key.previous.until} (kid ${key.previous.kid} still accepted)`,
    )
  }
  const used = new Set(
    config.devices.flatMap((d) =>
      d.payloadKey
        ? [
            d.payloadKey.kid.toLowerCase(),
            ...(d.payloadKey.previous ? [d.payloadKey.previous.kid.toLowerCase()] : []),
          ]
        : [],
    ),
  )
  let kid = randomBytes(2).toString('hex')
  while (used.has(kid)) kid = randomBytes(2).toString('hex')
  const secretFile = resolve(join(dirname(key.secretFile), `${id}-${kid}.secret`))
  await refuseIfExists(secretFile, `${secretFile} exists: never overwritten`)
  return {
    kid,
    secret: randomBytes(16),
    secretFile,
    previousKid: key.kid.toLowerCase(),
    until: new Date(now + options.overlapHours * 3_600_000).toISOString(),
    oldKey: key,
  }
}

/** Writes a planned rotation: the new secret (0600) and the config with `payloadKey.previous`. */
export async function commitPayloadKeyRotation(
  configFile: string,
  id: string,
  plan: PayloadKeyRotation,
): Promise<void> {
  await rewriteDevice(configFile, id, { file: plan.secretFile, key: plan.secret }, (doc, node) => {
    const payloadKey: unknown = node.get('payloadKey', true)
    if (!isMap(payloadKey)) {
      throw new PskRotationError(
        'invalid_config',
        `${configFile}: device \`${id}\`: payloadKey is not a mapping`,
      )
    }
    const previous = {
      kid: payloadKey.get('kid'),
      secretFile: payloadKey.get('secretFile'),
      until: plan.until,
    }
    payloadKey.set('kid', plan.kid)
    payloadKey.set('secretFile', plan.secretFile)
    payloadKey.set('previous', doc.createNode(previous))
  })
}
