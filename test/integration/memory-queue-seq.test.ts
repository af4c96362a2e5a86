import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { connectDevice } from './clients.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

/**
 * docs/bridge.md: an in-memory queue numbers from the time, and never below the latest time the
 * gateway saw (`<stateDir>/clock`): started with the clock a day behind that time (a Pi after a
 * power cut), its gw-seq still starts above what the last run could have used.
 */
describe('an in-memory queue started with the clock behind the saved time', () => {
  let stack: Stack
  let sub: MosquittoSub
  const saved = Date.now() + 86_400_000

  beforeAll(async () => {
    stack = await Stack.start({
      cloud: { queue: { store: 'memory' } },
      beforeStart: async (dir) => {
        await mkdir(join(dir, 'state'), { recursive: true })
        await writeFile(join(dir, 'state', 'clock'), `${saved}\n`, { mode: 0o600 })
      },
    })
    sub = await MosquittoSub.start({ ...stack.cloudClient(), topic: `${CLOUD_PREFIX}#`, qos: 1 })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    await sub?.stop()
    await stack?.stop()
  })

  it('numbers its first message from the saved time, not from the clock', async () => {
    const device = await connectDevice(stack.port('tcp'), {
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/t`, 'one', { qos: 1 })
    await device.endAsync()
    await waitUntil(() => sub.envelopes.length >= 1, 10_000)
    expect(sub.envelopes[0]?.seq).toBeGreaterThanOrEqual(saved * 1000)
  })
})
