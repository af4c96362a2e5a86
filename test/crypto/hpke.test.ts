import { describe, expect, it } from 'vitest'
import { encodeCbor } from '../../crypto/cbor.js'
import {
  deriveHpkeKeyPair,
  generateHpkeKeyPair,
  HPKE_INFO,
  hpkeAad,
  hpkeOpen,
  hpkeRecipientKid,
  hpkeSeal,
  hpkeSealDeterministic,
  hpkeSuite,
} from '../../crypto/hpke.js'

const hex = (s: string) => Buffer.from(s, 'hex')

/** RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base mode. */
const RFC = {
  ikmE: hex('909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b'),
  pkEm: hex('1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a'),
  skEm: hex('f4ec9b33b792c372c1d2c2063507b684ef925b8c75a42dbcbf57d63ccd381600'),
  ikmR: hex('1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df'),
  pkRm: hex('4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a'),
  skRm: hex('8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb'),
  info: hex('4f6465206f6e2061204772656369616e2055726e'),
  // Sequence number 0.
  aad: hex('436f756e742d30'),
  pt: hex('4265617574792069732074727574682c20747275746820626561757479'),
  ct: hex('1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28'),
}

/** Our wire-format vector (docs/wire-format.md, "HPKE sealing"): RFC keys, our framing, info and aad. */
const WIRE = {
  kid: Buffer.from('backend-1'),
  topic: 'site/1/temp',
  plaintext: Buffer.from('{"t":21.5}'),
  bytes: hex(
    '8340a204496261636b656e642d31235820' +
      '1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a' +
      '581a32b44703f038240867ff7ac03e6301f3e2907dbec3a9098a793b',
  ),
}

const TOPIC = 'site/7/meter'
const MAX = 4096

const kidOf = (bytes: Buffer) => bytes.subarray(5, 7)

async function recipientPair() {
  const keys = await generateHpkeKeyPair()
  return {
    sealTo: { kid: Buffer.from([0x0a, 0x0b]), publicKey: keys.publicKey },
    openWith: { kid: Buffer.from([0x0a, 0x0b]), privateKey: keys.privateKey },
  }
}

describe('RFC 9180 A.2.1 test vector through the suite hpke.ts uses', () => {
  it('derives the recipient and ephemeral key pairs', async () => {
    expect(await deriveHpkeKeyPair(RFC.ikmR)).toEqual({ publicKey: RFC.pkRm, privateKey: RFC.skRm })
    expect(await deriveHpkeKeyPair(RFC.ikmE)).toEqual({ publicKey: RFC.pkEm, privateKey: RFC.skEm })
  })

  it('seals sequence number 0 to the exact enc and ciphertext', async () => {
    const recipientPublicKey = await hpkeSuite.kem.deserializePublicKey(RFC.pkRm)
    const ekm = await hpkeSuite.kem.deriveKeyPair(RFC.ikmE)
    const sender = await hpkeSuite.createSenderContext({ recipientPublicKey, info: RFC.info, ekm })
    expect(Buffer.from(sender.enc)).toEqual(RFC.pkEm)
    expect(Buffer.from(await sender.seal(RFC.pt, RFC.aad))).toEqual(RFC.ct)
  })

  it('opens the vector ciphertext with skRm', async () => {
    const recipientKey = await hpkeSuite.kem.deserializePrivateKey(RFC.skRm)
    const pt = await hpkeSuite.open({ recipientKey, enc: RFC.pkEm, info: RFC.info }, RFC.ct, RFC.aad)
    expect(Buffer.from(pt)).toEqual(RFC.pt)
  })
})

describe('wire format', () => {
  it('info and aad are the documented bytes', () => {
    expect(HPKE_INFO.toString('hex')).toBe('656467652d676174657761792068706b65207631')
    // CBOR [1, "hpke", "site/1/temp"]
    expect(hpkeAad('site/1/temp').toString('hex')).toBe('83016468706b656b736974652f312f74656d70')
  })

  it('seals the documented vector byte for byte', async () => {
    const { publicKey } = await deriveHpkeKeyPair(RFC.ikmR)
    const bytes = await hpkeSealDeterministic(
      { kid: WIRE.kid, publicKey },
      WIRE.plaintext,
      WIRE.topic,
      RFC.ikmE,
    )
    expect(bytes.toString('hex')).toBe(WIRE.bytes.toString('hex'))
    expect(bytes.length).toBe(WIRE.plaintext.length + 67)
  })

  it('opens the documented vector', async () => {
    const result = await hpkeOpen({ kid: WIRE.kid, privateKey: RFC.skRm }, WIRE.bytes, WIRE.topic, MAX)
    expect(result).toEqual({ plaintext: WIRE.plaintext })
  })

  it('reads the recipient kid without a key', () => {
    expect(hpkeRecipientKid(WIRE.bytes, MAX)).toEqual(WIRE.kid)
    expect(hpkeRecipientKid(WIRE.bytes.subarray(1), MAX)).toBe('malformed')
    expect(hpkeRecipientKid(WIRE.bytes, 10)).toBe('oversize')
  })
})

describe('hpkeSeal / hpkeOpen', () => {
  it('generates raw 32-byte key pairs, a new one each time', async () => {
    const a = await generateHpkeKeyPair()
    const b = await generateHpkeKeyPair()
    expect(a.publicKey.length).toBe(32)
    expect(a.privateKey.length).toBe(32)
    expect(a.privateKey.equals(b.privateKey)).toBe(false)
  })

  it('round-trips, with a fresh ephemeral key per message', async () => {
    const { sealTo, openWith } = await recipientPair()
    for (const plaintext of [Buffer.alloc(0), Buffer.from('reading 42'), Buffer.alloc(3000, 7)]) {
      const bytes = await hpkeSeal(sealTo, plaintext, TOPIC)
      expect(await hpkeOpen(openWith, bytes, TOPIC, MAX)).toEqual({ plaintext })
    }
    const first = await hpkeSeal(sealTo, Buffer.from('same'), TOPIC)
    const second = await hpkeSeal(sealTo, Buffer.from('same'), TOPIC)
    expect(first.equals(second)).toBe(false)
  })

  it('refuses every single-byte change', async () => {
    const { sealTo, openWith } = await recipientPair()
    const bytes = await hpkeSeal(sealTo, Buffer.from('tamper me'), TOPIC)
    const failures = new Set<string>()
    for (let i = 0; i < bytes.length; i++) {
      for (const mask of [0x01, 0x80]) {
        const tampered = Buffer.from(bytes)
        tampered[i]! ^= mask
        const result = await hpkeOpen(openWith, tampered, TOPIC, MAX)
        expect(result, `byte ${i} ^ ${mask}`).toHaveProperty('failure')
        if ('failure' in result) failures.add(result.failure)
      }
    }
    expect([...failures].sort()).toEqual(['bad_tag', 'malformed', 'unknown_kid'])
  })

  it('a changed enc or ciphertext is bad_tag, a changed kid unknown_kid', async () => {
    const { sealTo, openWith } = await recipientPair()
    const bytes = await hpkeSeal(sealTo, Buffer.from('x'), TOPIC)
    // 83 40 a2 04 42 0a0b 23 58 20 <enc> 51 <ct>
    const encAt = 10
    const ctAt = encAt + 32 + 1
    const flip = (i: number) => {
      const copy = Buffer.from(bytes)
      copy[i]! ^= 0x01
      return copy
    }
    expect(await hpkeOpen(openWith, flip(5), TOPIC, MAX)).toEqual({ failure: 'unknown_kid' })
    expect(await hpkeOpen(openWith, flip(encAt), TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
    expect(await hpkeOpen(openWith, flip(encAt + 31), TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
    expect(await hpkeOpen(openWith, flip(ctAt), TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
    expect(await hpkeOpen(openWith, flip(bytes.length - 1), TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
  })

  it('the wrong private key or recipient kid does not open', async () => {
    const { sealTo, openWith } = await recipientPair()
    const other = await generateHpkeKeyPair()
    const bytes = await hpkeSeal(sealTo, Buffer.from('secret'), TOPIC)
    expect(await hpkeOpen({ kid: openWith.kid, privateKey: other.privateKey }, bytes, TOPIC, MAX)).toEqual({
      failure: 'bad_tag',
    })
    expect(
      await hpkeOpen({ kid: Buffer.from([1]), privateKey: openWith.privateKey }, bytes, TOPIC, MAX),
    ).toEqual({ failure: 'unknown_kid' })
  })

  it('a payload moved to another topic does not open', async () => {
    const { sealTo, openWith } = await recipientPair()
    const bytes = await hpkeSeal(sealTo, Buffer.from('on topic'), TOPIC)
    for (const topic of ['site/7/meter2', 'site/7/Meter', '', `${TOPIC}\u0000`]) {
      expect(await hpkeOpen(openWith, bytes, topic, MAX)).toEqual({ failure: 'bad_tag' })
    }
  })

  it('every truncation is malformed, and so are trailing bytes', async () => {
    const { sealTo, openWith } = await recipientPair()
    const bytes = await hpkeSeal(sealTo, Buffer.from('truncate'), TOPIC)
    for (let n = 0; n < bytes.length; n++) {
      expect(await hpkeOpen(openWith, bytes.subarray(0, n), TOPIC, MAX), `length ${n}`).toEqual({
        failure: 'malformed',
      })
    }
    const trailing = Buffer.concat([bytes, Buffer.from([0x00])])
    expect(await hpkeOpen(openWith, trailing, TOPIC, MAX)).toEqual({ failure: 'malformed' })
  })

  it('is oversize above the limit, before decoding', async () => {
    const { sealTo, openWith } = await recipientPair()
    const bytes = await hpkeSeal(sealTo, Buffer.alloc(100), TOPIC)
    expect(await hpkeOpen(openWith, bytes, TOPIC, bytes.length)).toHaveProperty('plaintext')
    expect(await hpkeOpen(openWith, bytes, TOPIC, bytes.length - 1)).toEqual({ failure: 'oversize' })
    // Garbage that would be malformed if it were decoded at all.
    expect(await hpkeOpen(openWith, Buffer.alloc(1_000_000, 0xff), TOPIC, MAX)).toEqual({
      failure: 'oversize',
    })
  })

  it('refuses structures that are not exactly the format', async () => {
    const { sealTo, openWith } = await recipientPair()
    const good = await hpkeSeal(sealTo, Buffer.from('shape'), TOPIC)
    // 83 40 a2 04 42 0a0b 23 58 20 <enc> 45 <ct>
    const enc = good.subarray(10, 42)
    const ct = good.subarray(43)
    expect(
      encodeCbor([
        Buffer.alloc(0),
        new Map([
          [4, kidOf(good)],
          [-4, enc],
        ]),
        ct,
      ]),
    ).toEqual(good)
    const kid = openWith.kid
    const frame = (header: Map<number, unknown>, extra: unknown[] = [], prot: Buffer = Buffer.alloc(0)) =>
      encodeCbor([prot, header as never, ct, ...(extra as never[])])
    const cases: Record<string, Buffer> = {
      'COSE tag 16': Buffer.concat([Buffer.from([0xd0]), good]),
      'non-empty protected header': frame(
        new Map([
          [4, kid],
          [-4, enc],
        ]),
        [],
        encodeCbor(new Map([[1, 24]])),
      ),
      'extra header': frame(
        new Map<number, unknown>([
          [4, kid],
          [-4, enc],
          [6, Buffer.from([1])],
        ]),
      ),
      'missing enc': frame(new Map([[4, kid]])),
      'short enc': frame(
        new Map([
          [4, kid],
          [-4, enc.subarray(1)],
        ]),
      ),
      'empty kid': frame(
        new Map([
          [4, Buffer.alloc(0)],
          [-4, enc],
        ]),
      ),
      'text kid': frame(
        new Map<number, unknown>([
          [4, 'ab'],
          [-4, enc],
        ]),
      ),
      'four elements': frame(
        new Map([
          [4, kid],
          [-4, enc],
        ]),
        [Buffer.alloc(0)],
      ),
      'ciphertext shorter than a tag': encodeCbor([
        Buffer.alloc(0),
        new Map([
          [4, kid],
          [-4, enc],
        ]),
        ct.subarray(0, 15),
      ]),
      // -4 (0x23) before 4 (0x04): not the deterministic key order.
      'keys out of order': Buffer.concat([
        Buffer.from([0x83, 0x40, 0xa2, 0x23, 0x58, 0x20]),
        enc,
        Buffer.from([0x04, 0x42]),
        kid,
        good.subarray(42),
      ]),
      // Indefinite-length array.
      streaming: Buffer.concat([Buffer.from([0x9f]), good.subarray(1), Buffer.from([0xff])]),
      'not CBOR at all': Buffer.from('hello'),
    }
    for (const [name, bytes] of Object.entries(cases)) {
      expect(await hpkeOpen(openWith, bytes, TOPIC, MAX), name).toEqual({ failure: 'malformed' })
    }
    expect(await hpkeOpen(openWith, 'not a buffer' as unknown as Buffer, TOPIC, MAX)).toEqual({
      failure: 'malformed',
    })
  })

  it('a low-order enc is bad_tag, not an exception', async () => {
    const { openWith } = await recipientPair()
    const bytes = encodeCbor([
      Buffer.alloc(0),
      new Map([
        [4, openWith.kid],
        [-4, Buffer.alloc(32)],
      ]),
      Buffer.alloc(20),
    ])
    expect(await hpkeOpen(openWith, bytes, TOPIC, MAX)).toEqual({ failure: 'bad_tag' })
  })

  it('throws CRYPTO_ERR_BAD_KEY for unusable keys and kids on the sending side', async () => {
    const { sealTo } = await recipientPair()
    const pt = Buffer.from('x')
    const bad = [
      { ...sealTo, publicKey: sealTo.publicKey.subarray(1) },
      { ...sealTo, publicKey: Buffer.alloc(32) }, // low order
      { ...sealTo, kid: Buffer.alloc(0) },
      { ...sealTo, kid: Buffer.alloc(33) },
    ]
    for (const recipient of bad) {
      await expect(hpkeSeal(recipient, pt, TOPIC)).rejects.toMatchObject({ code: 'CRYPTO_ERR_BAD_KEY' })
    }
    await expect(
      hpkeOpen({ kid: sealTo.kid, privateKey: Buffer.alloc(31) }, Buffer.alloc(0), TOPIC, MAX),
    ).rejects.toMatchObject({ code: 'CRYPTO_ERR_BAD_KEY' })
  })
})
