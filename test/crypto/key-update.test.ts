import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { encodeCbor } from '../../crypto/cbor.js'
import { open, seal } from '../../crypto/encrypt0.js'
import { decodeKeyUpdate, encodeKeyUpdate } from '../../crypto/key-update.js'
import { Alg } from '../../crypto/types.js'
import { DeviceProtector } from '../../device/protector.js'
import { SequenceCounter } from '../../device/sequence.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { hex, vectorContext, vectors } from './fixtures.js'

const v = vectors.keyUpdate

describe('key update (docs/rotation.md): a payload device new key, sealed under its current one', () => {
  it('matches the vector byte for byte, and opens back to the same key', () => {
    const update = { kid: hex(v.kid), masterSecret: hex(v.masterSecret), until: v.until }
    expect(encodeKeyUpdate(update).toString('hex')).toBe(v.plaintext)
    const ctx = vectorContext(v.context)
    expect(seal(ctx, 'gateway-to-device', v.seq, hex(v.plaintext), v.topic).toString('hex')).toBe(v.sealed)
    const opened = open(ctx, 'gateway-to-device', hex(v.sealed), v.topic, 1024)
    if ('failure' in opened) throw new Error(opened.failure)
    expect(decodeKeyUpdate(opened.plaintext)).toEqual(update)
  })

  it('refuses what is not a key update: another context string, a short secret, a long kid, garbage', () => {
    expect(decodeKeyUpdate(encodeCbor([1, 'something else', hex('01'), Buffer.alloc(16), 1]))).toBeUndefined()
    expect(
      decodeKeyUpdate(encodeCbor([1, 'edge-gateway key update', hex('01'), Buffer.alloc(15), 1])),
    ).toBeUndefined()
    expect(
      decodeKeyUpdate(encodeCbor([1, 'edge-gateway key update', Buffer.alloc(7), Buffer.alloc(16), 1])),
    ).toBeUndefined()
    expect(decodeKeyUpdate(Buffer.from('garbage'))).toBeUndefined()
  })

  it('DeviceProtector.acceptKeyUpdate: takes the new key once, refuses a replay, another topic and the wrong key', async () => {
    const dir = await makeTempDir('edge-gw-key-update-')
    try {
      const input = vectors.contexts[v.context]!.input
      const device = new DeviceProtector(
        {
          kid: hex(input.kid),
          masterSecret: hex(input.masterSecret),
          ...(input.masterSalt && { masterSalt: hex(input.masterSalt) }),
          aead: input.aead,
          mac: input.mac,
        },
        await SequenceCounter.open(join(dir, 'seq')),
      )
      expect(device.acceptKeyUpdate('keys/other', hex(v.sealed))).toBeUndefined()
      const accepted = device.acceptKeyUpdate(v.topic, hex(v.sealed))
      expect(accepted?.until).toBe(v.until)
      expect(accepted?.protector.kid.toString('hex')).toBe(v.kid)
      // The same message again (a retained copy at the next subscribe) changes nothing.
      expect(device.acceptKeyUpdate(v.topic, hex(v.sealed))).toBeUndefined()
      // Sealed under another device's key: refused.
      const other = new DeviceProtector(
        {
          kid: hex('0c'),
          masterSecret: Buffer.alloc(16, 1),
          aead: Alg.AES_CCM_16_64_128,
          mac: Alg.HMAC_256_64,
        },
        await SequenceCounter.open(join(dir, 'seq2')),
      )
      expect(other.acceptKeyUpdate(v.topic, hex(v.sealed))).toBeUndefined()
    } finally {
      await removeDir(dir)
    }
  })
})
