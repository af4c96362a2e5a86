import { createPrivateKey, createPublicKey } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { operatorKid, signCommand, verifyCommand } from '../../bridge/envelope.js'
import { parseRotationCommand } from '../../bridge/rotation/messages.js'
import { repoRoot } from './fenced-blocks.js'

/** The Ed25519 private key whose seed is `07` x 32 (PKCS#8 DER: a fixed prefix, then the seed). */
const operatorKey = createPrivateKey({
  key: Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.alloc(32, 7)]),
  format: 'der',
  type: 'pkcs8',
})

describe('docs/rotation.md: the rotation command vector', () => {
  it('the bytes shown are the command the operator side signs, and the gateway reads them back', async () => {
    const doc = await readFile(join(repoRoot, 'docs/rotation.md'), 'utf8')
    const shown = /the command is the (\d+) bytes\n\n```\n([0-9a-f]+)\n```/.exec(doc)
    expect(shown).not.toBeNull()
    const bytes = Buffer.from(shown![2]!, 'hex')
    expect(bytes.length).toBe(Number(shown![1]))
    const topic = '$gw/gw-1/rotate'
    const body = '{"type":"csr-request","request":"00112233445566778899aabbccddeeff"}'
    expect(doc).toContain(`the body\n\`${body}\``)
    // Ed25519 signatures are deterministic: signing again gives the very same bytes.
    const signed = signCommand(operatorKey, operatorKid(operatorKey), topic, {
      gatewayId: 'gw-1',
      deviceId: '',
      nonce: Buffer.alloc(16, 0xab),
      timestamp: 1_796_601_600_000,
      body: Buffer.from(body),
    })
    expect(signed.toString('hex')).toBe(bytes.toString('hex'))
    const publicKey = createPublicKey(operatorKey)
    const verified = verifyCommand(
      (kid) => (kid.equals(operatorKid(publicKey)) ? publicKey : undefined),
      topic,
      bytes,
    )
    if ('failure' in verified) throw new Error(verified.failure)
    expect(verified.command).toMatchObject({ gatewayId: 'gw-1', deviceId: '', timestamp: 1_796_601_600_000 })
    expect(parseRotationCommand(verified.command.body)).toEqual({
      type: 'csr-request',
      request: '00112233445566778899aabbccddeeff',
    })
    // Bound to its topic: the same bytes on another gateway's topic do not verify.
    expect(verifyCommand(() => publicKey, '$gw/gw-2/rotate', bytes)).toEqual({ failure: 'bad_signature' })
  })
})
