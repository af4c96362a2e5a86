import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { inspect } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pepperFrom, pepperPassword, readPepperFile } from '../../../gateway/auth/pepper.js'
import { GatewayError } from '../../../gateway/errors.js'
import { rejectionOf } from '../../helpers/catch.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

const PEPPER_HEX = '4f'.repeat(16) + 'a1'.repeat(16)

let dir: string
beforeAll(async () => {
  dir = await makeTempDir('edge-gw-pepper-')
})
afterAll(async () => {
  await removeDir(dir)
})

async function file(name: string, content: string, mode = 0o600): Promise<string> {
  const path = join(dir, name)
  await writeFile(path, content, { mode })
  await chmod(path, mode)
  return path
}

async function refusal(path: string): Promise<GatewayError> {
  const err = await rejectionOf(readPepperFile(path))
  expect(err).toBeInstanceOf(GatewayError)
  expect(err).toMatchObject({ code: 'GW_ERR_BAD_PEPPER_FILE' })
  return err as GatewayError
}

describe('readPepperFile', () => {
  it('reads 64 hex digits, white space around them ignored, as the same pepper as its bytes', async () => {
    const pepper = await readPepperFile(await file('ok.pepper', `\n ${PEPPER_HEX}\n`))
    const same = pepperFrom(Buffer.from(PEPPER_HEX, 'hex'))
    expect(pepper.id).toBe(same.id)
    expect(pepper.id).toMatch(/^[0-9a-f]{8}$/)
    expect(pepperPassword(pepper, Buffer.from('pw')).equals(pepperPassword(same, Buffer.from('pw')))).toBe(
      true,
    )
  })

  it('refuses a file others can read, as the other key files', async () => {
    const path = await file('open.pepper', PEPPER_HEX, 0o644)
    const err = await refusal(path)
    expect(err.message).toBe(
      `password pepper: ${path} has mode 0644; a key file must be 0600 or tighter (chmod 600 ${path})`,
    )
  })

  it('refuses a missing file', async () => {
    const err = await refusal(join(dir, 'missing.pepper'))
    expect(err.message).toBe(`password pepper: ${join(dir, 'missing.pepper')} does not exist`)
  })

  it('refuses anything but 32 bytes of hex, never quoting the content', async () => {
    const cases = {
      short: PEPPER_HEX.slice(2),
      long: `${PEPPER_HEX}00`,
      notHex: `${PEPPER_HEX.slice(0, 62)}zz`,
      twoLines: `${PEPPER_HEX.slice(0, 32)}\n${PEPPER_HEX.slice(32)}`,
      empty: '',
    }
    for (const [name, content] of Object.entries(cases)) {
      const path = await file(`${name}.pepper`, content)
      const err = await refusal(path)
      expect(err.message, name).toBe(
        `${path}: expected a password pepper of 32 bytes as 64 hex digits (\`edge-gateway device pepper\` writes one), got ${Buffer.byteLength(content)} bytes of something else`,
      )
      if (content.length > 8) expect(err.message).not.toContain(content.slice(0, 16))
    }
  })
})

describe('pepperFrom', () => {
  it('gives two peppers two ids, and the same pepper the same id', () => {
    const a = pepperFrom(Buffer.alloc(32, 1))
    const b = pepperFrom(Buffer.alloc(32, 2))
    expect(a.id).not.toBe(b.id)
    expect(pepperFrom(Buffer.alloc(32, 1)).id).toBe(a.id)
  })

  it('refuses a pepper of another length', () => {
    expect(() => pepperFrom(Buffer.alloc(31))).toThrow('Expected a 32-byte pepper, got 31')
  })

  it('never shows its key when logged or serialized', () => {
    const pepper = pepperFrom(Buffer.from(PEPPER_HEX, 'hex'))
    expect(inspect(pepper, { depth: 5 })).not.toContain(PEPPER_HEX.slice(0, 8))
    expect(JSON.stringify(pepper)).not.toContain(PEPPER_HEX.slice(0, 8))
  })

  it('peppers a password as HMAC-SHA256(pepper, password): 32 bytes, different per pepper', () => {
    const a = pepperPassword(pepperFrom(Buffer.alloc(32, 1)), Buffer.from('pw'))
    const b = pepperPassword(pepperFrom(Buffer.alloc(32, 2)), Buffer.from('pw'))
    expect(a).toHaveLength(32)
    expect(a.equals(b)).toBe(false)
  })
})
