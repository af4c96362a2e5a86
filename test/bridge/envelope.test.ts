import { execFileSync } from 'node:child_process'
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  X509Certificate,
} from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { EnvelopeConsumer } from '../../bridge/consumer.js'
import {
  BodyProtection,
  EnvelopeKind,
  encodeKeyBinding,
  signCommand,
  signEnvelope,
  signingKid,
  type UplinkEnvelope,
  verifyCommand,
  verifyEnvelope,
  verifyKeyBinding,
} from '../../bridge/envelope.js'
import { createCertificateAuthority, issueCertificate } from '../../pki/index.js'

const ca = createCertificateAuthority({ commonName: 'test CA' })
const otherCa = createCertificateAuthority({ commonName: 'other CA' })
const caCert = new X509Certificate(ca.certPem)
const gatewayCert = issueCertificate(ca, { commonName: 'gw-1', kind: 'client' })
const signing = generateKeyPairSync('ed25519')
const kid = signingKid(signing.privateKey)

function binding(
  opts: { cert?: { certPem: string; keyPem: string }; gatewayId?: string; kidOf?: typeof signing } = {},
) {
  const cert = opts.cert ?? gatewayCert
  const pair = opts.kidOf ?? signing
  return encodeKeyBinding(
    {
      gatewayId: opts.gatewayId ?? 'gw-1',
      kid: signingKid(pair.publicKey),
      signingKey: signing.publicKey.export({ type: 'spki', format: 'der' }),
      certificate: new X509Certificate(cert.certPem).raw,
      issuedAt: Date.now(),
    },
    createPrivateKey(cert.keyPem),
  )
}

const envelope: UplinkEnvelope = {
  kind: EnvelopeKind.message,
  gatewayId: 'gw-1',
  deviceId: 'dev-1',
  topic: 'devices/dev-1/temp',
  seq: 42,
  timestamp: 1_795_000_000_000,
  protection: BodyProtection.plain,
  body: Buffer.from('21.5'),
}
const resolve = (k: Buffer) => (k.equals(kid) ? { key: signing.publicKey, gatewayId: 'gw-1' } : undefined)

describe('uplink envelope', () => {
  it('verifies and returns every field it signed', () => {
    const bytes = signEnvelope(signing.privateKey, kid, 'site/temp', envelope)
    expect(verifyEnvelope(resolve, 'site/temp', bytes)).toEqual({ envelope, kid })
  })

  it('any one byte changed fails, and never throws', () => {
    const bytes = signEnvelope(signing.privateKey, kid, 'site/temp', envelope)
    for (let i = 0; i < bytes.length; i++) {
      const copy = Buffer.from(bytes)
      copy[i] = copy[i]! ^ 0x01
      const result = verifyEnvelope(resolve, 'site/temp', copy)
      expect('failure' in result, `byte ${i}`).toBe(true)
    }
  })

  it('moved to another cloud topic, or claimed for another gateway, it fails', () => {
    const bytes = signEnvelope(signing.privateKey, kid, 'site/temp', envelope)
    expect(verifyEnvelope(resolve, 'site/other', bytes)).toEqual({ failure: 'bad_signature' })
    const forged = signEnvelope(signing.privateKey, kid, 'site/temp', { ...envelope, gatewayId: 'gw-2' })
    expect(verifyEnvelope(resolve, 'site/temp', forged)).toMatchObject({ failure: 'wrong_gateway' })
    expect(verifyEnvelope(() => undefined, 'site/temp', bytes)).toEqual({ failure: 'unknown_kid' })
  })
})

describe('key binding', () => {
  it('a binding made with the gateway certificate key verifies against the CA', () => {
    const result = verifyKeyBinding(binding(), caCert)
    expect('failure' in result).toBe(false)
    if (!('failure' in result)) {
      expect(result.binding.gatewayId).toBe('gw-1')
      expect(result.binding.kid).toEqual(kid)
    }
  })

  it('a gateway certificate with an Ed25519 key makes and verifies a binding (EdDSA, no digest)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'edge-gw-ed25519-'))
    try {
      // node-forge makes no Ed25519 certificates: openssl does, self-signed (its own CA here).
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'ed25519',
          '-nodes',
          '-subj',
          '/CN=gw-1',
          '-days',
          '2',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
        ],
        { stdio: 'ignore' },
      )
      const certPem = readFileSync(join(dir, 'cert.pem'), 'utf8')
      const keyPem = readFileSync(join(dir, 'key.pem'), 'utf8')
      const result = verifyKeyBinding(binding({ cert: { certPem, keyPem } }), new X509Certificate(certPem))
      expect(result).toMatchObject({ binding: { gatewayId: 'gw-1' } })
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('is refused for a certificate of another CA, another name, a changed byte, an expired certificate, a kid of another key', () => {
    const foreign = issueCertificate(otherCa, { commonName: 'gw-1', kind: 'client' })
    expect(verifyKeyBinding(binding({ cert: foreign }), caCert)).toEqual({ failure: 'untrusted_certificate' })
    expect(verifyKeyBinding(binding({ gatewayId: 'gw-2' }), caCert)).toEqual({ failure: 'certificate_name' })
    const good = binding()
    const flipped = Buffer.from(good)
    flipped[flipped.length - 5] = flipped[flipped.length - 5]! ^ 0x01
    expect(verifyKeyBinding(flipped, caCert)).toEqual({ failure: 'bad_signature' })
    expect(verifyKeyBinding(good, caCert, Date.now() + 5 * 365 * 86_400_000)).toEqual({
      failure: 'certificate_expired',
    })
    expect(verifyKeyBinding(binding({ kidOf: generateKeyPairSync('ed25519') }), caCert)).toEqual({
      failure: 'bad_kid',
    })
    expect(verifyKeyBinding(Buffer.from('not cbor at all'), caCert)).toEqual({ failure: 'malformed' })
  })

  it('with a CA bundle: trusted when any CA of it issued the certificate, in any order (gateways moving to a new CA)', () => {
    const otherCaCert = new X509Certificate(otherCa.certPem)
    const moved = issueCertificate(otherCa, { commonName: 'gw-1', kind: 'client' })
    for (const bundle of [
      [caCert, otherCaCert],
      [otherCaCert, caCert],
    ]) {
      expect(verifyKeyBinding(binding(), bundle)).toMatchObject({ binding: { gatewayId: 'gw-1' } })
      expect(verifyKeyBinding(binding({ cert: moved }), bundle)).toMatchObject({
        binding: { gatewayId: 'gw-1' },
      })
    }
    expect(verifyKeyBinding(binding({ cert: moved }), [caCert])).toEqual({ failure: 'untrusted_certificate' })
    expect(verifyKeyBinding(binding(), [])).toEqual({ failure: 'untrusted_certificate' })
  })
})

describe('downlink command', () => {
  for (const type of ['ed25519', 'p256'] as const) {
    it(`signed with ${type}: verifies, and fails on another topic or with another key`, () => {
      const op =
        type === 'ed25519'
          ? generateKeyPairSync('ed25519')
          : generateKeyPairSync('ec', { namedCurve: 'P-256' })
      const opKid = signingKid(op.publicKey)
      const command = {
        gatewayId: 'gw-1',
        deviceId: 'dev-1',
        nonce: randomBytes(16),
        timestamp: Date.now(),
        body: Buffer.from('open'),
      }
      const bytes = signCommand(op.privateKey, opKid, 'cmd/dev-1/open', command)
      const resolveOp = (k: Buffer) => (k.equals(opKid) ? op.publicKey : undefined)
      expect(verifyCommand(resolveOp, 'cmd/dev-1/open', bytes)).toEqual({ command, kid: opKid })
      expect(verifyCommand(resolveOp, 'cmd/dev-2/open', bytes)).toEqual({ failure: 'bad_signature' })
      expect(verifyCommand(() => undefined, 'cmd/dev-1/open', bytes)).toEqual({ failure: 'unknown_kid' })
      expect(verifyCommand(resolveOp, 'cmd/dev-1/open', Buffer.alloc(70_000))).toEqual({
        failure: 'oversize',
      })
      expect(verifyCommand(resolveOp, 'cmd/dev-1/open', Buffer.from('open'))).toEqual({
        failure: 'malformed',
      })
    })
  }
})

describe('EnvelopeConsumer', () => {
  it('holds messages until their key binding arrives, then verifies them and flags duplicates', async () => {
    const consumer = new EnvelopeConsumer(caCert, [])
    const bytes = signEnvelope(signing.privateKey, kid, 'site/temp', envelope)
    expect(await consumer.message('site/temp', bytes)).toMatchObject({ ok: 'pending' })
    expect(consumer.waiting).toBe(1)
    const bound = await consumer.binding(binding())
    expect(bound.ok).toBe(true)
    expect(bound.released).toMatchObject([{ ok: true, message: { seq: 42, duplicate: false } }])
    expect(await consumer.message('site/temp', bytes)).toMatchObject({
      ok: true,
      message: { duplicate: true },
    })
    expect(consumer.waiting).toBe(0)
  })

  it('refuses a binding from an untrusted certificate and keeps its messages unverified', async () => {
    const consumer = new EnvelopeConsumer(caCert, [])
    const foreign = issueCertificate(otherCa, { commonName: 'gw-1', kind: 'client' })
    expect(await consumer.binding(binding({ cert: foreign }))).toMatchObject({
      ok: false,
      failure: 'untrusted_certificate',
    })
    expect(createPublicKey(signing.privateKey).asymmetricKeyType).toBe('ed25519')
  })
})
