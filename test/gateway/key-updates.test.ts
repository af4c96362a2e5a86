import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../core/logger.js'
import { KeyUpdateStore } from '../../gateway/key-updates.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const logger = createLogger({
  level: 'silent',
  destination: new Writable({ write: (_c, _e, done) => done() }),
})

/** The LAN broker keeps retained messages in memory: the store is what brings a key update back after a restart. */
describe('KeyUpdateStore: sealed key updates kept until the end of their overlap', () => {
  let dir: string
  let published: Array<{ topic: string; payload: string }>
  const store = () =>
    new KeyUpdateStore(
      join(dir, 'key-updates'),
      async (topic, payload) => {
        published.push({ topic, payload: payload.toString('hex') })
      },
      logger,
    )

  beforeEach(async () => {
    dir = await makeTempDir('edge-gw-key-updates-')
    published = []
  })
  afterEach(async () => removeDir(dir))

  it('publishes at once, again at the next start while the overlap lasts, and clears the retained copy after it', async () => {
    const now = Date.now()
    const first = store()
    await first.send('tiny', 'keys/tiny', Buffer.from('sealed'), now + 60_000)
    first.stop()
    expect(published).toEqual([{ topic: 'keys/tiny', payload: Buffer.from('sealed').toString('hex') }])
    const file = join(dir, 'key-updates', 'tiny.json')
    expect((await stat(file)).mode & 0o777).toBe(0o600)

    const restarted = store()
    await restarted.start(now + 1000)
    restarted.stop()
    expect(published.at(-1)).toEqual({ topic: 'keys/tiny', payload: Buffer.from('sealed').toString('hex') })

    const later = store()
    await later.start(now + 61_000)
    later.stop()
    expect(published.at(-1)).toEqual({ topic: 'keys/tiny', payload: '' })
    expect(await readdir(join(dir, 'key-updates'))).toEqual([])
  })
})
