import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { assertFreshBuild } from '../helpers/fresh-build.js'

const CHILD = fileURLToPath(new URL('./backlog-memory-child.mjs', import.meta.url))
const COUNT = 300_000

/**
 * What a backlog costs the gateway in memory: 300,000 small QoS 1 messages accepted from a
 * real device connection with the cloud unreachable. The queue keeps its 10-byte index per
 * held message and nothing else grows with the depth (no payload, no per-message object),
 * so 1,000,000 held messages cost about 10 MB.
 */
describe('memory under a backlog, cloud down', () => {
  beforeAll(() => assertFreshBuild())

  it(`grows by the queue index only: ${COUNT} messages held`, async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', CHILD, String(COUNT)], {
      timeout: 280_000,
    })
    const result = JSON.parse(stdout) as Record<string, number>
    console.log(`\nbacklog of ${COUNT}, cloud down: ${JSON.stringify(result)}`)
    expect(result.acked).toBe(COUNT)
    expect(result.held).toBe(COUNT)
    // 10 bytes of index each, plus the spare room of the active segment's growing arrays.
    expect(result.indexPerMessage).toBeGreaterThanOrEqual(10)
    expect(result.indexPerMessage).toBeLessThan(16)
    // Heap and buffers: the index and the heap's noise, never the 80-byte records or their payloads.
    expect(result.heapPerMessage).toBeLessThan(24)
  }, 300_000)
})
