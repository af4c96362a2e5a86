import { generateKeyPairSync, verify } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import {
  BodyProtection,
  EnvelopeKind,
  encodeKeyBinding,
  signEnvelope,
  signingKid,
} from '../../bridge/envelope.js'
import { decodeCbor } from '../../crypto/cbor.js'
import { sigStructure } from '../../crypto/structures.js'
import { repoRoot } from './fenced-blocks.js'

const doc = () => readFile(join(repoRoot, 'docs/cloud-envelope.md'), 'utf8')

/** What docs/cloud-envelope.md tells a cloud-side implementer about bytes, checked against the gateway's code. */
describe('docs/cloud-envelope.md', () => {
  it("the uplink external AAD shown in the doc is the byte string the gateway's signature covers", async () => {
    const text = await doc()
    const topic = 'sites/site-17/devices/boiler-1/t'
    const shown = /the 56 bytes\n`([0-9a-f ]+)`/.exec(text)?.[1]
    expect(shown).toBeDefined()
    const aad = Buffer.from(shown!.replace(/ /g, ''), 'hex')
    expect(aad.length).toBe(56)

    const { privateKey, publicKey } = generateKeyPairSync('ed25519')
    const signed = signEnvelope(privateKey, signingKid(privateKey), topic, {
      kind: EnvelopeKind.message,
      gatewayId: 'site-17',
      deviceId: 'boiler-1',
      topic: 'devices/boiler-1/t',
      seq: 1,
      timestamp: 1_732_350_000_000,
      protection: BodyProtection.plain,
      body: Buffer.from('21.5'),
    })
    const [protectedHeader, , payload, signature] = decodeCbor(signed, { maxBytes: 4096 }) as [
      Buffer,
      unknown,
      Buffer,
      Buffer,
    ]
    const structure = sigStructure(protectedHeader, aad, payload)
    // The AAD sits in the Sig_structure as a byte string: 58 38, then the 56 bytes.
    expect(structure.includes(Buffer.concat([Buffer.from('5838', 'hex'), aad]))).toBe(true)
    expect(verify(null, structure, publicKey, signature)).toBe(true)
  })

  it('an ECDSA key binding signature is DER, not the r || s of COSE', () => {
    const certificateKey = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    const signing = generateKeyPairSync('ed25519')
    const binding = encodeKeyBinding(
      {
        gatewayId: 'site-17',
        kid: signingKid(signing.privateKey),
        signingKey: signing.publicKey.export({ type: 'spki', format: 'der' }),
        certificate: Buffer.from('not parsed by this check'),
        issuedAt: 1_732_350_000_000,
      },
      certificateKey.privateKey,
    )
    const [tbs, signature] = decodeCbor(binding, { maxBytes: 4096, maxDepth: 1 }) as [Buffer, Buffer]
    expect(signature[0]).toBe(0x30) // SEQUENCE
    expect(signature[1]).toBe(signature.length - 2)
    expect(signature.length).toBeLessThanOrEqual(72)
    const key = certificateKey.publicKey
    expect(verify('sha256', tbs, { key, dsaEncoding: 'der' }, signature)).toBe(true)
    expect(verify('sha256', tbs, { key, dsaEncoding: 'ieee-p1363' }, signature)).toBe(false)
  })
})
