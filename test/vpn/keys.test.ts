import { createPrivateKey, createPublicKey } from 'node:crypto'
import { chmod, readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { VpnError } from '../../vpn/errors.js'
import { readKeyFile, writeKeyFile } from '../../vpn/key-files.js'
import {
  createKeys,
  derivePublicKey,
  generatePresharedKey,
  generatePrivateKey,
  readPublicKey,
} from '../../vpn/keys.js'
import { isWireGuardKey, SecretKey } from '../../vpn/secret.js'
import { findBinary } from '../helpers/binaries.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

/** X25519 public key of a raw private key, computed by Node (OpenSSL) as a cross-check of `wg pubkey`. */
function x25519Public(privateKey: string): string {
  const pkcs8 = Buffer.concat([
    Buffer.from('302e020100300506032b656e04220420', 'hex'),
    Buffer.from(privateKey, 'base64'),
  ])
  const spki = createPublicKey(createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' })).export({
    format: 'der',
    type: 'spki',
  })
  return spki.subarray(-32).toString('base64')
}

const mode = async (path: string) => (await stat(path)).mode & 0o777

let dir: string

beforeAll(async () => {
  await findBinary('wg', 'install it with `apt-get install wireguard-tools`')
  dir = await makeTempDir('vpn-keys')
})

afterAll(async () => {
  await removeDir(dir)
})

describe('key generation', () => {
  it('generates a private key and derives its public key through stdin, matching X25519', async () => {
    const privateKey = await generatePrivateKey()
    expect(isWireGuardKey(privateKey.reveal())).toBe(true)
    expect(String(privateKey)).toBe('[redacted]')
    const publicKey = await derivePublicKey(privateKey)
    expect(publicKey).toBe(x25519Public(privateKey.reveal()))
  })

  it('generates distinct preshared keys', async () => {
    const a = await generatePresharedKey()
    const b = await generatePresharedKey()
    expect(isWireGuardKey(a.reveal())).toBe(true)
    expect(a.reveal()).not.toBe(b.reveal())
  })

  it('names the package when wg is missing', async () => {
    const err = await rejectionOf(generatePrivateKey({ env: { PATH: dir } }))
    expect(err).toMatchObject({ code: 'VPN_ERR_WG_NOT_FOUND' })
    expect((err as Error).message).toContain('apt-get install wireguard-tools')
  })
})

describe('key files', () => {
  it('creates the key pair and a preshared key with mode 0600 in a 0700 folder, and prints the public key', async () => {
    const privateKeyFile = join(dir, 'new', 'wg.key')
    const presharedKeyFile = join(dir, 'new', 'wg.psk')
    const created = await createKeys({ privateKeyFile, presharedKeyFile })
    expect(created.createdPrivateKey).toBe(true)
    expect(created.createdPresharedKey).toBe(true)
    expect(await mode(privateKeyFile)).toBe(0o600)
    expect(await mode(presharedKeyFile)).toBe(0o600)
    expect(await mode(join(dir, 'new'))).toBe(0o700)
    const text = await readFile(privateKeyFile, 'utf8')
    expect(text).toMatch(/^[A-Za-z0-9+/]{43}=\n$/)
    expect(created.publicKey).toBe(x25519Public(text.trim()))
    expect(await readPublicKey(privateKeyFile)).toBe(created.publicKey)
  })

  it('keeps existing keys unless told to overwrite', async () => {
    const privateKeyFile = join(dir, 'keep.key')
    const first = await createKeys({ privateKeyFile })
    const again = await createKeys({ privateKeyFile })
    expect(again).toEqual({
      publicKey: first.publicKey,
      createdPrivateKey: false,
      createdPresharedKey: false,
    })
    const replaced = await createKeys({ privateKeyFile, overwrite: true })
    expect(replaced.createdPrivateKey).toBe(true)
    expect(replaced.publicKey).not.toBe(first.publicKey)
    expect(await mode(privateKeyFile)).toBe(0o600)
  })

  it('refuses to write over an existing file without overwrite', async () => {
    const path = join(dir, 'exists.key')
    await writeKeyFile(path, new SecretKey(Buffer.alloc(32, 1).toString('base64')))
    expect(
      await rejectionOf(writeKeyFile(path, new SecretKey(Buffer.alloc(32, 2).toString('base64')))),
    ).toMatchObject({
      code: 'EEXIST',
    })
  })

  it('refuses a key file readable by others, naming its mode', async () => {
    const path = join(dir, 'open.key')
    await writeFile(path, `${Buffer.alloc(32, 3).toString('base64')}\n`)
    await chmod(path, 0o644)
    const err = await rejectionOf(readKeyFile(path))
    expect(err).toBeInstanceOf(VpnError)
    expect(err).toMatchObject({
      code: 'VPN_ERR_KEY_FILE_MODE',
      message: `The private key file ${path} has mode 0644; expected 0600 or tighter (chmod 600 ${path})`,
    })
  })

  it('refuses a missing key file and one that holds no key', async () => {
    expect(await rejectionOf(readKeyFile(join(dir, 'none.key')))).toMatchObject({
      code: 'VPN_ERR_KEY_FILE_MISSING',
      message: `The private key file ${join(dir, 'none.key')} does not exist; create it with \`edge-gateway vpn keys\``,
    })
    const path = join(dir, 'junk.key')
    await writeFile(path, 'not a key, but maybe a secret\n', { mode: 0o600 })
    const err = await rejectionOf(readKeyFile(path, 'preshared key'))
    expect(err).toMatchObject({
      code: 'VPN_ERR_BAD_KEY',
      message: `The preshared key file ${path} does not hold a WireGuard key (one line of 44 characters of base64)`,
    })
    expect(JSON.stringify(err)).not.toContain('maybe a secret')
  })
})
