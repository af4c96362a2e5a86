import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { decodeCbor } from '../../crypto/cbor.js'
import { EMPTY_PROTECTED, macStructure } from '../../crypto/structures.js'
import { hex, vectors } from '../crypto/fixtures.js'
import { repoRoot } from './fenced-blocks.js'

/** The example bytes of docs/wire-format.md, one string of hex digits per line (spaces removed). */
async function exampleLines(): Promise<string[]> {
  const doc = await readFile(join(repoRoot, 'docs/wire-format.md'), 'utf8')
  return doc.split('\n').map((line) => line.replace(/\s+/g, ''))
}

const hasBytes = (lines: string[], bytes: string) => lines.some((line) => line.includes(bytes))

/** The bytes an implementer builds, as docs/wire-format.md shows them, agree with test/crypto/vectors.json. */
describe('docs/wire-format.md examples', () => {
  it('the nonce diagram is S, the padded Sender ID, the padded Partial IV, in that byte order', async () => {
    const lines = await exampleLines()
    const example = vectors.encrypt0[0]!
    expect(example).toMatchObject({ context: 'ccm', direction: 'device-to-gateway', seq: 4660 })
    const commonIv = hex(vectors.contexts.ccm!.derived.commonIv!)
    const nonce = hex(example.nonce)
    const beforeXor = Buffer.from(nonce.map((byte, i) => byte ^ commonIv[i]!))
    // S = 1 (kid 01), kid left-padded to 7 bytes, Partial IV 1234 left-padded to 5 bytes.
    expect(beforeXor.toString('hex')).toBe('01' + '00000000000001' + '0000001234')
    expect(hasBytes(lines, beforeXor.toString('hex'))).toBe(true)
    expect(hasBytes(lines, example.nonce)).toBe(true)
  })

  it('the external AAD goes into the Enc_structure as a byte string', async () => {
    const lines = await exampleLines()
    const example = vectors.encrypt0[0]!
    const aad = hex(example.externalAad)
    expect(aad.length).toBe(0x1c)
    expect(example.encStructure).toBe(`8368456e63727970743040581c${example.externalAad}`)
    expect(hasBytes(lines, example.encStructure)).toBe(true)
  })

  it("the token's MAC_structure holds token_aad and the payload as byte strings", async () => {
    const lines = await exampleLines()
    const token = vectors.token[0]!
    const [, , payload] = decodeCbor(hex(token.token), { maxBytes: 64, maxDepth: 2 }) as [
      Buffer,
      unknown,
      Buffer,
      Buffer,
    ]
    const structure = macStructure(EMPTY_PROTECTED, hex(token.externalAad), payload).toString('hex')
    expect(structure).toBe(`84644d414330404f${token.externalAad}4f${payload.toString('hex')}`)
    expect(hasBytes(lines, structure)).toBe(true)
  })
})
