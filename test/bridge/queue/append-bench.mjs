// Appends per second into the durable queue with 1, 8 and 64 concurrent appenders (64-byte payloads),
// each awaiting its append (durable) before the next: `npm run build && node test/bridge/queue/append-bench.mjs`.
// Not a test (vitest runs *.test.ts only); it belongs in bench/ once that folder takes it.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileQueue } from '../../../dist/bridge/queue/file-queue.js'

const SECONDS = Number(process.env.SECONDS_EACH ?? 3)
const message = (n) => ({
  topic: 'devices/dev-1/telemetry',
  payload: Buffer.alloc(64, n % 256),
  qos: 1,
  retain: false,
  deviceId: 'dev-1',
  clientId: 'client-1',
  receivedAt: Date.now(),
})

for (const appenders of [1, 8, 64]) {
  const base = mkdtempSync(join(tmpdir(), 'queue-bench-'))
  try {
    const { queue } = await FileQueue.open(join(base, 'q'), { quotaBytes: 4 * 1024 * 1024 * 1024 })
    const before = queue.diagnostics()
    let count = 0
    const deadline = performance.now() + SECONDS * 1000
    const start = performance.now()
    await Promise.all(
      Array.from({ length: appenders }, async () => {
        while (performance.now() < deadline) if (await queue.append(message(count))) count++
      }),
    )
    const seconds = (performance.now() - start) / 1000
    const after = queue.diagnostics()
    const commits = after.commits - before.commits
    console.log(
      `${String(appenders).padStart(2)} appenders: ${Math.round(count / seconds)} appends/s, ` +
        `${Math.round(commits / seconds)} commits/s, ${(count / commits).toFixed(1)} appends per fsync`,
    )
    await queue.close()
  } finally {
    rmSync(base, { recursive: true, force: true })
  }
}
