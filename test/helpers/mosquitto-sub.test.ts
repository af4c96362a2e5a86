import { describe, expect, it } from 'vitest'
import { rejectionOf } from './catch.js'
import { MosquittoSub } from './mosquitto-sub.js'
import { freePort } from './ports.js'

describe('MosquittoSub.start', () => {
  it("rejects with mosquitto_sub's own error when nothing listens", async () => {
    const port = await freePort()
    const err = await rejectionOf(MosquittoSub.start({ host: '127.0.0.1', port, topic: '#' }))
    expect(err).toEqual(
      new Error(
        'Expected mosquitto_sub to get a SUBACK for `#`; mosquitto_sub exited (code 1).\n' +
          '--- mosquitto_sub output ---\n' +
          'stderr: Error: Connection refused',
      ),
    )
  })

  it('refuses a persistent session without a client id', async () => {
    const err = await rejectionOf(
      MosquittoSub.start({ host: '127.0.0.1', port: 1, topic: '#', cleanSession: false }),
    )
    expect(err).toEqual(
      new Error(
        'Expected a `clientId` with `cleanSession: false`: a persistent session is keyed by client id',
      ),
    )
  })
})
