import { chmod } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deriveContext } from '../../crypto/context.js'
import { makeToken } from '../../crypto/token.js'
import { Alg } from '../../crypto/types.js'
import { hashPassword } from '../../gateway/index.js'
import { writeSecretFile } from '../../pki/index.js'
import { mosquittoPasswd } from '../helpers/mosquitto-passwd.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { rawConnack } from './clients.js'
import { Stack } from './harness.js'

/** Trials per kind; each uses its own username and its own source address, so no lockout slows it. */
const TRIALS = 10
const KINDS = ['unknown user', 'scrypt', 'mosquitto $7$', 'mosquitto $6$', 'token'] as const
type Kind = (typeof KINDS)[number]
/** Medians this close are one distribution at the resolution a LAN attacker has (timer and scheduling noise). */
const NOISE_MS = 25

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
}

/**
 * Whether a username exists, and how its credential is stored, must not show
 * in how long a refused CONNECT takes (docs/security.md): every refusal is
 * answered `lan.lockout.refusalDelayMs` (500 ms by default) after it arrived.
 * Measured from outside, over many trials, against the default setting.
 */
describe('refused CONNECTs take the same time whatever the username', () => {
  let dir: string
  let stack: Stack
  const secret = (i: number) => Buffer.alloc(16, 0x40 + i)

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-auth-timing-')
    const passwordFile = join(dir, 'passwords')
    await mosquittoPasswd(['-c', '-b', passwordFile, 'm7-0', 'right password'])
    for (let i = 1; i < TRIALS; i++) await mosquittoPasswd(['-b', passwordFile, `m7-${i}`, 'right password'])
    for (let i = 0; i < TRIALS; i++)
      await mosquittoPasswd(['-H', 'sha512', '-b', passwordFile, `m6-${i}`, 'right password'])
    await chmod(passwordFile, 0o600)
    const hash = await hashPassword('right password')
    const devices = []
    for (let i = 0; i < TRIALS; i++) {
      devices.push({ id: `s-${i}`, username: `s-${i}`, passwordHash: hash })
      const secretFile = join(dir, `t-${i}.secret`)
      await writeSecretFile(secretFile, `${secret(i).toString('hex')}\n`)
      devices.push({ id: `t-${i}`, payloadKey: { kid: (0x70 + i).toString(16), secretFile } })
    }
    // The defaults for the refusal delay and the lockout (5 failures), as an operator gets them.
    stack = await Stack.start({ devices, mosquitto: { passwordFile }, lockout: { maxFailures: 5 } })
  }, 60_000)

  afterAll(async () => {
    await stack?.stop()
    await removeDir(dir)
  })

  /** A CONNECT with a wrong credential for trial `i` of `kind`, from its own source address. */
  const attempt = async (kind: Kind, i: number): Promise<{ code: number; ms: number }> => {
    const wrong = Buffer.from('wrong password')
    const connect =
      kind === 'unknown user'
        ? { clientId: `nobody-${i}`, username: `nobody-${i}`, password: wrong }
        : kind === 'scrypt'
          ? { clientId: `s-${i}`, username: `s-${i}`, password: wrong }
          : kind === 'mosquitto $7$'
            ? { clientId: `m7-${i}`, username: `m7-${i}`, password: wrong }
            : kind === 'mosquitto $6$'
              ? { clientId: `m6-${i}`, username: `m6-${i}`, password: wrong }
              : {
                  clientId: `t-${i}`,
                  username: `t-${i}`,
                  // A well-formed token under a key that is not the device's.
                  password: makeToken(
                    deriveContext({
                      masterSecret: Buffer.alloc(16, 1),
                      kid: Buffer.from([0x70 + i]),
                      aead: Alg.AES_CCM_16_64_128,
                    }),
                    `t-${i}`,
                    Math.floor(Date.now() / 1000),
                  ),
                }
    const localAddress = `127.10.${i}.${KINDS.indexOf(kind) + 1}`
    const started = performance.now()
    const code = await rawConnack(stack.port('tcp'), connect, localAddress)
    return { code, ms: performance.now() - started }
  }

  it('the medians of every kind of known username are within noise of an unknown one', async () => {
    const times = new Map<Kind, number[]>(KINDS.map((k) => [k, []]))
    for (let i = 0; i < TRIALS; i++) {
      // One trial of each kind at once, in a different order each round.
      const order = KINDS.map((_k, j) => KINDS[(j + i) % KINDS.length]!)
      const results = await Promise.all(order.map((kind) => attempt(kind, i)))
      order.forEach((kind, j) => {
        expect(results[j]!.code, `${kind} #${i}`).toBe(4)
        times.get(kind)!.push(results[j]!.ms)
      })
    }
    const medians = Object.fromEntries(KINDS.map((k) => [k, Math.round(median(times.get(k)!))]))
    console.log(`refused CONNECT, median ms over ${TRIALS} trials: ${JSON.stringify(medians)}`)
    const base = medians['unknown user']!
    for (const kind of KINDS) {
      expect(Math.min(...times.get(kind)!), kind).toBeGreaterThanOrEqual(499)
      expect(
        Math.abs(medians[kind]! - base),
        `${kind}: ${medians[kind]} ms vs unknown ${base} ms`,
      ).toBeLessThanOrEqual(NOISE_MS)
    }
  })
})
