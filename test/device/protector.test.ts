import { mkdtempSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { deriveContext } from '../../crypto/context.js'
import { open } from '../../crypto/encrypt0.js'
import { generateHpkeKeyPair, hpkeOpen } from '../../crypto/hpke.js'
import { macOpen } from '../../crypto/mac0.js'
import { ReplayGuard } from '../../crypto/replay-guard.js'
import { MemoryReplayStore } from '../../crypto/replay-store.js'
import { checkToken } from '../../crypto/token.js'
import { type AeadAlg, Alg, type MacAlg, type MasterSecretConfig } from '../../crypto/types.js'
import { DeviceProtector, SequenceCounter } from '../../device/index.js'

const TOPIC = 'devices/meter-7/reading'
const MAX = 4096
const reading = Buffer.from('{"kwh":1234.5}')

function configFor(aead: AeadAlg = Alg.AES_CCM_16_64_128, mac: MacAlg = Alg.HMAC_256_64): MasterSecretConfig {
  return {
    kid: Buffer.from([0x07, 0x01]),
    masterSecret: Buffer.from('0102030405060708090a0b0c0d0e0f10', 'hex'),
    masterSalt: Buffer.from('9e7ca92223786340', 'hex'),
    aead,
    mac,
  }
}

describe('DeviceProtector', () => {
  const dirs: string[] = []
  const seqPath = () => {
    const dir = mkdtempSync(join(tmpdir(), 'device-protector-'))
    dirs.push(dir)
    return join(dir, 'sequence')
  }
  afterEach(async () => {
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true })
  })

  const aeads: AeadAlg[] = [Alg.AES_CCM_16_64_128, Alg.A128GCM, Alg.A256GCM, Alg.CHACHA20_POLY1305]
  it.each(aeads)('seal with aead %i opens with the gateway side `open`', async (aead) => {
    const config = configFor(aead)
    const device = new DeviceProtector(config, await SequenceCounter.open(seqPath()))
    const gateway = deriveContext(config)
    for (const expectedSeq of [0, 1, 2]) {
      const sealed = await device.seal(TOPIC, reading)
      expect(open(gateway, 'device-to-gateway', sealed, TOPIC, MAX)).toEqual({
        plaintext: reading,
        seq: expectedSeq,
      })
      expect(open(gateway, 'device-to-gateway', sealed, `${TOPIC}/x`, MAX)).toEqual({ failure: 'bad_tag' })
    }
  })

  it.each([Alg.HMAC_256_64, Alg.HMAC_256_256] as MacAlg[])(
    'mac with alg %i verifies with `macOpen`, sharing the sequence counter with seal',
    async (mac) => {
      const config = configFor(Alg.A128GCM, mac)
      const device = await DeviceProtector.open(config, seqPath())
      const gateway = deriveContext(config)
      await device.seal(TOPIC, reading)
      const maced = await device.mac(TOPIC, reading)
      expect(macOpen(gateway, 'device-to-gateway', maced, TOPIC, MAX)).toEqual({ payload: reading, seq: 1 })
    },
  )

  it('token passes `checkToken` for its client id and time only', async () => {
    const config = configFor()
    const device = await DeviceProtector.open(config, seqPath())
    const gateway = deriveContext(config)
    const resolve = (kid: Buffer) => (kid.equals(gateway.kid) ? gateway : undefined)
    const token = device.token('meter-7', 1_732_350_000)
    expect(checkToken(resolve, token, 'meter-7', 1_732_350_030, 120)).toMatchObject({
      kid: config.kid,
      timestamp: 1_732_350_000,
    })
    expect(checkToken(resolve, token, 'meter-8', 1_732_350_030, 120)).toEqual({ failure: 'bad_tag' })
    expect(checkToken(resolve, token, 'meter-7', 1_732_360_000, 120)).toEqual({ failure: 'expired' })
    const now = Math.floor(Date.now() / 1000)
    expect(checkToken(resolve, device.token('meter-7'), 'meter-7', now, 120)).toHaveProperty('nonce')
  })

  it('hpkeSeal opens with the recipient private key and topic', async () => {
    const device = await DeviceProtector.open(configFor(), seqPath())
    const keys = await generateHpkeKeyPair()
    const kid = Buffer.from('backend-1')
    const sealed = await device.hpkeSeal({ kid, publicKey: keys.publicKey }, TOPIC, reading)
    expect(await hpkeOpen({ kid, privateKey: keys.privateKey }, sealed, TOPIC, MAX)).toEqual({
      plaintext: reading,
    })
    expect(await hpkeOpen({ kid, privateKey: keys.privateKey }, sealed, 'other', MAX)).toEqual({
      failure: 'bad_tag',
    })
  })

  it('after a device crash, new payloads pass the gateway replay guard and old ones do not', async () => {
    const config = configFor()
    const path = seqPath()
    const gateway = deriveContext(config)
    const guard = await ReplayGuard.open(new MemoryReplayStore())
    const kidHex = config.kid.toString('hex')
    const receive = async (bytes: Buffer) => {
      const opened = open(gateway, 'device-to-gateway', bytes, TOPIC, MAX)
      if ('failure' in opened) return opened.failure
      return guard.acceptIfFresh(kidHex, opened.seq)
    }

    const before = await DeviceProtector.open(config, path)
    const old = [await before.seal(TOPIC, reading), await before.seal(TOPIC, reading)]
    for (const bytes of old) expect(await receive(bytes)).toBe('ok')

    // Crash: the protector and its counter are dropped; a new one starts from the stored block end.
    const after = await DeviceProtector.open(config, path)
    const fresh = await after.seal(TOPIC, reading)
    expect(open(gateway, 'device-to-gateway', fresh, TOPIC, MAX)).toMatchObject({ seq: 32 })
    expect(await receive(fresh)).toBe('ok')
    for (const bytes of old) expect(await receive(bytes)).toBe('replayed')
  })

  it('exposes the device kid', async () => {
    const device = await DeviceProtector.open(configFor(), seqPath())
    expect(device.kid).toEqual(Buffer.from([0x07, 0x01]))
  })
})
