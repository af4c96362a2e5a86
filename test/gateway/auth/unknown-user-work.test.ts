import { afterEach, describe, expect, it, vi } from 'vitest'
import { scryptSlots } from '../../../gateway/auth/password.js'
import { rawConnack } from '../../integration/clients.js'
import { LanFixture } from '../protocol/lan-fixture.js'

/**
 * An unknown username with a password is refused at the refusal floor like a wrong password, so
 * it needs no decoy scrypt run; with the floor off (`refusalDelayMs: 0`) the decoy run is what
 * keeps its timing like a real check. A spray of unknown usernames must not take password-check
 * slots from real devices.
 */
describe('the work done for an unknown username', () => {
  let gw: LanFixture | undefined

  afterEach(async () => {
    vi.restoreAllMocks()
    await gw?.stop()
    gw = undefined
  })

  it.each([
    { refusalDelayMs: 500, runs: 0 },
    { refusalDelayMs: 0, runs: 10 },
  ])(
    'with refusalDelayMs $refusalDelayMs, 10 unknown usernames start $runs scrypt runs',
    async ({ refusalDelayMs, runs }) => {
      gw = await LanFixture.start({ lockout: { maxFailures: 1000, refusalDelayMs } })
      const run = vi.spyOn(scryptSlots, 'run')
      const codes = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          rawConnack(
            gw!.port('tcp'),
            { clientId: `nobody-${i}`, username: `nobody-${i}`, password: Buffer.from('a guess') },
            `127.0.9.${i + 1}`,
          ),
        ),
      )
      expect(codes).toEqual(Array(10).fill(4))
      expect(run).toHaveBeenCalledTimes(runs)
      expect(gw.logs.events('auth_unknown_user')).toHaveLength(10)
    },
  )
})
