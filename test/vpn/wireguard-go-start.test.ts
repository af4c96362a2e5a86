import { chmod, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { startWireguardGo } from '../../vpn/wireguard-go.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

/**
 * wireguard-go's start wait is measured on the monotonic clock: at a Raspberry Pi's boot NTP steps
 * the wall clock forward, often by months, which must not end the wait at once (and a step back
 * must not stretch it). A `wireguard-go` that never makes its interface and a `wg` that counts
 * its calls stand in for the real ones.
 */
describe('startWireguardGo across a wall-clock step', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-wggo-clock-')
    await writeFile(
      join(dir, 'wireguard-go'),
      `#!/bin/sh\necho $$ > ${join(dir, 'daemon-pid')}\nexec sleep 30\n`,
    )
    await writeFile(
      join(dir, 'wg'),
      `#!/bin/sh\necho x >> ${join(dir, 'wg-calls')}\necho "Unable to access interface: No such device" >&2\nexit 1\n`,
    )
    await chmod(join(dir, 'wireguard-go'), 0o755)
    await chmod(join(dir, 'wg'), 0o755)
  })
  afterAll(async () => {
    await removeDir(dir)
  })
  afterEach(() => {
    vi.restoreAllMocks()
  })

  it('a step forward during the wait does not end it: wg is asked until the timeout, then it stops the daemon', async () => {
    await writeFile(join(dir, 'wg-calls'), '')
    const real = Date.now.bind(Date)
    let calls = 0
    // The first reading is before the step, every later one 90 days after it.
    vi.spyOn(Date, 'now').mockImplementation(() => (++calls === 1 ? real() : real() + 90 * 86_400_000))
    const err = await startWireguardGo('wgclk0', {
      env: { PATH: `${dir}:${process.env.PATH}` },
      startTimeoutMs: 1500,
    }).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'VPN_ERR_TIMEOUT' })
    const asked = (await readFile(join(dir, 'wg-calls'), 'utf8')).split('\n').filter(Boolean).length
    // Asked every 50 ms or so for 1.5 s; before the fix, once at most.
    expect(asked).toBeGreaterThan(3)
    const pid = Number(await readFile(join(dir, 'daemon-pid'), 'utf8'))
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }))
  }, 20_000)
})
