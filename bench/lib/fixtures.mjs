/**
 * Everything a run needs on disk, made once per run in a temp folder: a PKI
 * (CA, cloud server certificate, client certificates for the edge and the
 * subscriber), device credentials for both systems (the same secrets in each
 * system's own format), the mosquitto password, PSK and ACL files, and the
 * cloud recipient's HPKE key pair (the gateway seals to its public key, the
 * subscriber opens with its private key).
 */
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const DIST = new URL('../../dist/', import.meta.url)
const run = promisify(execFile)

export const PUBLISHERS = 4
export const IDLE_DEVICES = 1_000
/** The cloud recipient the full-path setups seal to (`cloud.recipients[].name`, also its kid). */
export const RECIPIENT_NAME = 'bench-cloud'

async function secret(path, content) {
  await writeFile(path, content, { mode: 0o600 })
  await chmod(path, 0o600)
}

export const publisherId = (n) => `pub-${n}`
export const idleId = (n) => `idle-${String(n).padStart(4, '0')}`

export async function makeFixtures() {
  const { createCertificateAuthority, issueCertificate, writePublicFile, writeSecretFile } = await import(
    new URL('pki/index.js', DIST).href
  )
  const { hashPassword } = await import(new URL('gateway/index.js', DIST).href)
  const { generateHpkeKeyPair } = await import(new URL('crypto/hpke.js', DIST).href)
  const root = await mkdtemp(join(tmpdir(), 'edge-gw-bench-'))
  await chmod(root, 0o700)
  const pkiDir = join(root, 'pki')
  const keysDir = join(root, 'keys')
  await mkdir(keysDir, { mode: 0o700 })
  await mkdir(pkiDir, { mode: 0o700 })

  const ca = createCertificateAuthority({ commonName: 'edge-gateway bench CA' })
  const pki = { caFile: join(pkiDir, 'ca.pem') }
  await writePublicFile(pki.caFile, ca.certPem)
  for (const [name, commonName, kind, altNames] of [
    ['server', 'cloud-broker', 'server', ['127.0.0.1', 'localhost']],
    ['edge', 'edge-gateway', 'client', undefined],
    ['subscriber', 'bench-subscriber', 'client', undefined],
  ]) {
    const pair = issueCertificate(ca, { commonName, kind, ...(altNames && { altNames }) })
    pki[`${name}CertFile`] = join(pkiDir, `${name}.pem`)
    pki[`${name}KeyFile`] = join(pkiDir, `${name}.key`)
    await writePublicFile(pki[`${name}CertFile`], pair.certPem)
    await writeSecretFile(pki[`${name}KeyFile`], pair.keyPem)
  }

  const publishers = []
  for (let n = 0; n < PUBLISHERS; n++) {
    const id = publisherId(n)
    const device = {
      id,
      password: randomBytes(12).toString('base64url'),
      psk: { identity: id, keyHex: randomBytes(16).toString('hex') },
      payload: { kidHex: (n + 1).toString(16).padStart(2, '0'), secretHex: randomBytes(16).toString('hex') },
      pskKeyFile: join(keysDir, `${id}.psk`),
      payloadKeyFile: join(keysDir, `${id}.payload`),
    }
    device.passwordHash = await hashPassword(device.password)
    await secret(device.pskKeyFile, `${device.psk.keyHex}\n`)
    await secret(device.payloadKeyFile, `${device.payload.secretHex}\n`)
    publishers.push(device)
  }
  const idle = []
  for (let n = 0; n < IDLE_DEVICES; n++) {
    const id = idleId(n)
    const device = {
      id,
      psk: { identity: id, keyHex: randomBytes(16).toString('hex') },
      pskKeyFile: join(keysDir, `${id}.psk`),
    }
    await secret(device.pskKeyFile, `${device.psk.keyHex}\n`)
    idle.push(device)
  }

  const mosquittoDir = join(root, 'mosquitto-files')
  await mkdir(mosquittoDir, { mode: 0o700 })
  const mosquitto = {
    passwordFile: join(mosquittoDir, 'passwords'),
    pskFile: join(mosquittoDir, 'psk'),
    pskFileIdle: join(mosquittoDir, 'psk-idle'),
    aclFile: join(mosquittoDir, 'acl'),
  }
  // mosquitto_passwd -U hashes a file of plain `user:password` lines in place ($7$, PBKDF2-SHA512),
  // so no password goes on a command line.
  await secret(mosquitto.passwordFile, publishers.map((d) => `${d.id}:${d.password}\n`).join(''))
  await run('mosquitto_passwd', ['-U', mosquitto.passwordFile], { timeout: 10_000 })
  const pskLine = (d) => `${d.psk.identity}:${d.psk.keyHex}\n`
  await secret(mosquitto.pskFile, publishers.map(pskLine).join(''))
  await secret(mosquitto.pskFileIdle, [...publishers, ...idle].map(pskLine).join(''))
  // The same confinement as the gateway's default policy: each device below devices/<its id>/.
  await writeFile(mosquitto.aclFile, 'pattern readwrite devices/%u/#\n', { mode: 0o644 })

  const pair = await generateHpkeKeyPair()
  const recipient = {
    name: RECIPIENT_NAME,
    kidHex: Buffer.from(RECIPIENT_NAME, 'utf8').toString('hex'),
    publicKeyFile: join(keysDir, `${RECIPIENT_NAME}.pub`),
    privateKeyHex: pair.privateKey.toString('hex'),
  }
  await writePublicFile(recipient.publicKeyFile, `${pair.publicKey.toString('hex')}\n`)

  return { root, pki, publishers, idle, mosquitto, recipient }
}
