import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { parseConfig } from '../../../config/index.js'
import { createLogger } from '../../../core/logger.js'
import { NonceJournal } from '../../../core/nonce-journal.js'
import { deriveContext } from '../../../crypto/context.js'
import { makeToken } from '../../../crypto/token.js'
import { Alg } from '../../../crypto/types.js'
import { checkConnectToken } from '../../../gateway/protection/connect-token.js'
import {
  createProtectionRuntime,
  MAX_TOKEN_NONCES,
  type ProtectionRuntime,
} from '../../../gateway/protection/runtime.js'
import type { Device } from '../../../gateway/registry.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { LogCapture } from '../../integration/harness.js'
import { UNUSED_CLOUD } from '../protocol/lan-fixture.js'

/**
 * docs/wire-format.md: each accepted (kid, nonce) of a CONNECT token is remembered; at most 100,000
 * are, and past that tokens are refused as `nonce_memory_full` until old ones expire.
 */
const KID = Buffer.from('31', 'hex')
const ctx = deriveContext({
  masterSecret: Buffer.from('00112233445566778899aabbccddeeff', 'hex'),
  kid: KID,
  aead: Alg.AES_CCM_16_64_128,
})
const device: Device = {
  id: 'tiny',
  groups: [],
  clientIdAllowed: () => true,
  payload: { kid: KID, context: ctx },
}
/** A token with a nonce of its own (the prefilled ones count up from 0; these count down from ff..ff). */
let last = 0
const token = (nowMs: number) => {
  const nonce = Buffer.alloc(8, 0xff)
  nonce.writeUInt16BE(0xffff - ++last, 6)
  return makeToken(ctx, 'tiny', Math.floor(nowMs / 1000), nonce)
}

let dir: string
let n = 0
const runtimes: ProtectionRuntime[] = []

beforeAll(async () => {
  dir = await makeTempDir('edge-gw-connect-token-')
})

afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close()
})

afterAll(async () => {
  await removeDir(dir)
})

/** The gateway's own protection runtime (lan section through the real parser), in a state folder of its own. */
async function runtimeIn(stateDir: string): Promise<ProtectionRuntime> {
  const config = parseConfig(
    stringify({
      gateway: { id: 'gw-token', stateDir },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }] },
      devices: [],
      cloud: UNUSED_CLOUD,
    }),
    { file: join(dir, 'gateway.yaml'), baseDir: dir },
  )
  const runtime = await createProtectionRuntime(
    config.lan,
    config.gateway.stateDir,
    createLogger({ level: 'info', destination: new LogCapture() }),
  )
  runtimes.push(runtime)
  return runtime
}

describe('CONNECT token nonce memory', () => {
  it('full: a valid token is refused as nonce_memory_full, not remembered; accepted again once old nonces expire', async () => {
    const stateDir = join(dir, `state-${++n}`)
    const runtime = await runtimeIn(stateDir)
    let now = 1_800_000_000_000
    // The cap made small through the journal the runtime holds; the clock is the test's.
    const protection: ProtectionRuntime = {
      ...runtime,
      tokenNonces: await NonceJournal.open(join(stateDir, 'small-journal'), {
        maxEntries: 2,
        now: () => now,
      }),
    }
    const first = token(now)
    expect(await checkConnectToken(protection, device, first, 'tiny', now)).toBe('ok')
    expect(await checkConnectToken(protection, device, token(now), 'tiny', now)).toBe('ok')
    const refused = token(now)
    expect(await checkConnectToken(protection, device, refused, 'tiny', now)).toBe('nonce_memory_full')
    expect(await checkConnectToken(protection, device, token(now), 'tiny', now)).toBe('nonce_memory_full')
    // A replay is still told apart while the memory is full.
    expect(await checkConnectToken(protection, device, first, 'tiny', now)).toBe('replayed')
    expect(protection.tokenNonces.size).toBe(2)

    // Remembered until the tokens' timestamp plus the window (and a second for the rounding):
    // at the window's end the memory is still full.
    now += protection.tokenWindowSeconds * 1000
    expect(await checkConnectToken(protection, device, token(now), 'tiny', now)).toBe('nonce_memory_full')
    now += 2_000
    expect(await checkConnectToken(protection, device, token(now), 'tiny', now)).toBe('ok')
    expect(await checkConnectToken(protection, device, token(now), 'tiny', now)).toBe('ok')
    expect(await checkConnectToken(protection, device, token(now), 'tiny', now)).toBe('nonce_memory_full')
    await protection.tokenNonces.close()
  })

  it('a token accepted, forgotten at a restart, is refused when a power cut has set the clock back', async () => {
    const stateDir = join(dir, `state-${++n}`)
    const runtime = await runtimeIn(stateDir)
    const file = join(stateDir, 'stepped-journal')
    const T0 = 1_800_000_000_000
    let now = T0
    const withJournal = async (): Promise<ProtectionRuntime> => ({
      ...runtime,
      tokenNonces: await NonceJournal.open(file, { maxEntries: 100, now: () => now }),
    })
    const captured = token(T0)
    const first = await withJournal()
    expect(await checkConnectToken(first, device, captured, 'tiny', now)).toBe('ok')
    await first.tokenNonces.close()
    // Restarted an hour later: the token's nonce has expired and is forgotten.
    now = T0 + 3_600_000
    await (await withJournal()).tokenNonces.close()
    // A power cut, and the clock comes back a minute before the token was made (fake-hwclock's
    // last save): the token's timestamp is inside the window again.
    now = T0 - 60_000
    const behind = await withJournal()
    expect(await checkConnectToken(behind, device, captured, 'tiny', now)).toBe('replayed')
    // A token made now, by a device whose clock is right, is accepted.
    expect(await checkConnectToken(behind, device, token(T0 + 3_700_000), 'tiny', T0 + 3_700_000)).toBe('ok')
    await behind.tokenNonces.close()
  })

  it("the gateway's runtime remembers 100,000: the 100,000th token is accepted, the next refused", async () => {
    expect(MAX_TOKEN_NONCES).toBe(100_000)
    const stateDir = join(dir, `state-${++n}`)
    // 99,999 live (kid, nonce) pairs already on disk, as a gateway that accepted them would have left them.
    const expiry = Date.now() + 3_600_000
    const lines: string[] = []
    for (let i = 0; i < 99_999; i++) lines.push(`31:${i.toString(16).padStart(16, '0')} ${expiry}\n`)
    await mkdir(stateDir, { recursive: true, mode: 0o700 })
    await writeFile(join(stateDir, 'token-nonces'), lines.join(''), { mode: 0o600 })
    const runtime = await runtimeIn(stateDir)
    expect(runtime.tokenNonces.size).toBe(99_999)

    const hundredThousandth = token(Date.now())
    expect(await checkConnectToken(runtime, device, hundredThousandth, 'tiny')).toBe('ok')
    expect(await checkConnectToken(runtime, device, token(Date.now()), 'tiny')).toBe('nonce_memory_full')
    expect(await checkConnectToken(runtime, device, hundredThousandth, 'tiny')).toBe('replayed')
    expect(runtime.tokenNonces.size).toBe(100_000)
  })
})
