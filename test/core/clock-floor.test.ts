import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { ClockFloor, raiseClockFloor, resetClockFloor, trustedNow } from '../../core/clock-floor.js'
import { createLogger } from '../../core/logger.js'
import { deriveContext } from '../../crypto/context.js'
import { Alg } from '../../crypto/types.js'
import { type Device, payloadKeysFor } from '../../gateway/registry.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { LogCapture } from '../integration/harness.js'

let dir: string
let n = 0
const DAY = 86_400_000

beforeAll(async () => {
  dir = await makeTempDir('edge-gw-clock-floor-unit-')
})
afterEach(() => {
  resetClockFloor()
  vi.useRealTimers()
})
afterAll(async () => {
  await removeDir(dir)
})

async function openIn(content?: string) {
  const stateDir = join(dir, `state-${++n}`)
  const { mkdir } = await import('node:fs/promises')
  await mkdir(stateDir, { recursive: true })
  if (content !== undefined) await writeFile(join(stateDir, 'clock'), content)
  const logs = new LogCapture()
  const floor = await ClockFloor.open(stateDir, createLogger({ level: 'info', destination: logs }))
  return { floor, logs, file: join(stateDir, 'clock') }
}

describe('ClockFloor', () => {
  it('without a saved time, the floor is the wall clock; it saves the time it saw, 0600', async () => {
    const { floor, logs, file } = await openIn()
    expect(Math.abs(trustedNow() - Date.now())).toBeLessThan(1_000)
    const saved = Number((await readFile(file, 'utf8')).trim())
    expect(Math.abs(saved - Date.now())).toBeLessThan(60_000)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    await floor.close()
    expect(logs.records).toEqual([])
  })

  it('a saved time ahead of the wall clock is the floor, moving on with the monotonic clock, and the start warns', async () => {
    const ahead = Date.now() + 3 * DAY
    const { floor, logs } = await openIn(`${ahead}\n`)
    expect(trustedNow()).toBeGreaterThanOrEqual(ahead)
    expect(logs.records).toMatchObject([
      {
        level: 40,
        lastSeen: new Date(ahead).toISOString(),
        msg: expect.stringContaining('behind the time this gateway last saw'),
      },
    ])
    await floor.close()
  })

  it('a file that is not a saved time is a warning, and no floor', async () => {
    for (const content of ['soon\n', '1'.repeat(40), '-5\n']) {
      resetClockFloor()
      const { floor, logs } = await openIn(content)
      expect(Math.abs(trustedNow() - Date.now()), content).toBeLessThan(1_000)
      expect(logs.records[0]?.msg, content).toMatch(/^the saved clock floor (is not a time|cannot be read)/)
      await floor.close()
    }
  })
})

describe('key retirement on the floor', () => {
  const ctx = (kid: string) =>
    deriveContext({
      masterSecret: Buffer.alloc(16, 7),
      kid: Buffer.from(kid, 'hex'),
      aead: Alg.AES_CCM_16_64_128,
    })
  it("a replaced payload key stays retired when the wall clock steps back before the overlap's end", () => {
    vi.useFakeTimers({ now: Date.UTC(2026, 11, 8) })
    const until = Date.now() - DAY
    const device: Device = {
      id: 'tiny',
      groups: [],
      clientIdAllowed: () => true,
      payload: { kid: Buffer.from('32', 'hex'), context: ctx('32') },
      payloadPrevious: { kid: Buffer.from('31', 'hex'), context: ctx('31'), until },
    }
    expect(payloadKeysFor(device, Buffer.from('31', 'hex'))).toBeUndefined()
    // The time seen before a power cut is the floor; the clock comes back three days behind.
    raiseClockFloor(Date.now())
    vi.setSystemTime(Date.now() - 3 * DAY)
    expect(payloadKeysFor(device, Buffer.from('31', 'hex'))).toBeUndefined()
    expect(payloadKeysFor(device, Buffer.from('32', 'hex'))).toBe(device.payload)
    resetClockFloor()
    // Without the floor, the wall clock alone would open it again.
    expect(payloadKeysFor(device, Buffer.from('31', 'hex'))).toBe(device.payloadPrevious)
  })
})
