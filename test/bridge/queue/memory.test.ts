import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { beforeAll, describe, expect, it } from 'vitest'
import { requireFreshBuild } from './dist.js'

const CHILD = fileURLToPath(new URL('./memory-child.mjs', import.meta.url))

describe('FileQueue memory', () => {
  beforeAll(requireFreshBuild)

  it('keeps a few bytes of heap per held message, not its payload (200,000 held, 64-byte payloads)', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', CHILD, '200000'], {
      timeout: 60_000,
    })
    const result = JSON.parse(stdout) as Record<string, number>
    expect(result.held).toBe(200_000)
    // 10 bytes of index each (record size, device number, time); the rest is noise of the heap.
    expect(result.indexPerMessageAfterReopen).toBeGreaterThanOrEqual(10)
    expect(result.indexPerMessageAfterReopen).toBeLessThan(10.1)
    expect(result.heapPerMessageAfterReopen).toBeLessThan(16)
    expect(result.heapPerMessageAfterAppend).toBeLessThan(24)
  })
})
