import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { firstValueFrom, take, toArray } from 'rxjs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { FileQueue } from '../../../bridge/queue/file-queue.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'
import { message } from './contract.js'
import { requireFreshBuild } from './dist.js'

const CHILD = fileURLToPath(new URL('./crash-child.mjs', import.meta.url))
const KILLS = 10

interface ChildRun {
  durable: number[]
  acked: Set<number>
}

/** Runs the child until it has reported `atLeast` durable appends, waits `extraMs` more, and kills it with SIGKILL. */
function runAndKill(dir: string, atLeast: number, extraMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, dir, '16'], { stdio: ['ignore', 'pipe', 'pipe'] })
    const run: ChildRun = { durable: [], acked: new Set() }
    let rest = ''
    let stderr = ''
    let killing = false
    const guard = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`child reported ${run.durable.length} durable appends in 20 s: ${stderr}`))
    }, 20_000)
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n')
      rest = lines.pop()!
      for (const line of lines) {
        if (line === 'ready') continue
        if (line.startsWith('a')) run.acked.add(Number(line.slice(1)))
        else run.durable.push(Number(line))
      }
      if (!killing && run.durable.length >= atLeast) {
        killing = true
        setTimeout(() => child.kill('SIGKILL'), extraMs)
      }
    })
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      if (signal !== 'SIGKILL') reject(new Error(`child ended by itself (${code}, ${signal}): ${stderr}`))
      else resolve(run)
    })
  })
}

describe('FileQueue under SIGKILL', () => {
  let base = ''
  beforeAll(async () => {
    await requireFreshBuild()
    base = await makeTempDir('queue-crash')
  })
  afterAll(async () => {
    if (base) await removeDir(base)
  })

  it(`loses no durable append over ${KILLS} kills at random moments, opens every time, and numbers upward`, async () => {
    const dir = join(base, 'q')
    let highest = 0
    let total = 0
    for (let kill = 0; kill < KILLS; kill++) {
      const run = await runAndKill(
        dir,
        200 + Math.floor(Math.random() * 3000),
        Math.floor(Math.random() * 150),
      )
      expect(run.durable.length).toBeGreaterThan(0)
      // Numbers given out after a restart are above every number given out before it.
      expect(Math.min(...run.durable)).toBeGreaterThan(highest)
      total += run.durable.length

      const { queue, recovery } = await FileQueue.open(dir, {
        quotaBytes: 256 * 1024 * 1024,
        readAhead: Number.POSITIVE_INFINITY,
      })
      try {
        expect(recovery.corrupted).toBe(0)
        const held = new Set(
          (await firstValueFrom(queue.read().pipe(take(queue.size), toArray()))).map((e) => e.seq),
        )
        const lost = run.durable.filter((seq) => !run.acked.has(seq) && !held.has(seq))
        expect(lost).toEqual([])
        highest = Math.max(highest, ...run.durable, ...held)
        const next = (await queue.append(message(kill)))!
        expect(next.seq).toBeGreaterThan(highest)
        highest = next.seq
        // Acknowledge everything, as a cloud that caught up would: the next run starts on an empty queue.
        for (const seq of held) queue.ack(seq)
        queue.ack(next.seq)
      } finally {
        await queue.close()
      }
    }
    expect(total).toBeGreaterThan(KILLS * 200)
  })
})
