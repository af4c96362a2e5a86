import { describe, expect, it } from 'vitest'
import { findBinary, MOSQUITTO_INSTALL_HINT } from './binaries.js'
import { rejectionOf } from './catch.js'

describe('findBinary', () => {
  it('finds an executable on PATH', async () => {
    expect(await findBinary('sh', 'install a shell')).toMatch(/^\/.*\/sh$/)
  })

  it('says what to install when the binary is missing', async () => {
    const err = await rejectionOf(findBinary('mosquitto-does-not-exist', MOSQUITTO_INSTALL_HINT))
    expect(err).toEqual(
      new Error(
        'mosquitto-does-not-exist not found: install it with `apt-get install mosquitto mosquitto-clients`',
      ),
    )
  })
})
