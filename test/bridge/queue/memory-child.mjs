// Child process of memory.test.ts, run with --expose-gc: prints, as JSON, the heap each held message
// costs in the durable queue (64-byte payloads), after appending and again after a reopen.
// It imports the compiled queue: run `npm run build` first.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileQueue } from '../../../dist/bridge/queue/file-queue.js'

const COUNT = Number(process.argv[2] ?? 200_000)
const base = mkdtempSync(join(tmpdir(), 'queue-memory-'))
const dir = join(base, 'q')
const options = { quotaBytes: 1024 * 1024 * 1024 }

function used() {
  globalThis.gc()
  globalThis.gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

const message = (n) => ({
  topic: 'devices/dev-1/telemetry',
  payload: Buffer.alloc(64, n % 256),
  qos: 1,
  retain: false,
  deviceId: 'dev-1',
  clientId: 'client-1',
  receivedAt: 1_700_000_000_000 + n,
})

try {
  let { queue } = await FileQueue.open(dir, options)
  const before = used()
  for (let n = 0; n < COUNT; n += 1000) {
    await Promise.all(Array.from({ length: 1000 }, (_, i) => queue.append(message(n + i))))
  }
  const appended = (used() - before) / queue.size
  const appendedIndex = queue.diagnostics().indexBytes / queue.size
  await queue.close()
  queue = undefined
  const empty = used()
  const reopened = (await FileQueue.open(dir, options)).queue
  const recovered = (used() - empty) / reopened.size
  const result = {
    held: reopened.size,
    diskBytesPerMessage: reopened.stats().bytes / reopened.size,
    heapPerMessageAfterAppend: appended,
    indexPerMessageAfterAppend: appendedIndex,
    heapPerMessageAfterReopen: recovered,
    indexPerMessageAfterReopen: reopened.diagnostics().indexBytes / reopened.size,
  }
  await reopened.close()
  process.stdout.write(`${JSON.stringify(result)}\n`)
} finally {
  rmSync(base, { recursive: true, force: true })
}
