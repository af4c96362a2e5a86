import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { LogLimiter } from '../../core/log-limiter.js'
import type { Logger } from '../../core/logger.js'
import { encodeAckRuns, toRuns } from './ack-log.js'
import { FILE_MODE } from './io.js'
import { ackFileName, type SegmentIndex, segmentFileName } from './segment.js'

/** A file operation of the housekeeper that failed, with the file it was on. */
class FileWorkError extends Error {
  constructor(
    readonly work: 'ack_write' | 'segment_delete',
    readonly path: string,
    override readonly cause: unknown,
  ) {
    super(`${work} ${path}: ${(cause as Error).message}`)
  }
}

async function onFile<T>(work: FileWorkError['work'], path: string, task: () => Promise<T>): Promise<T> {
  try {
    return await task()
  } catch (err) {
    throw new FileWorkError(work, path, err)
  }
}

/**
 * The queue's lazy file work, one operation after another: appending
 * acknowledgements to ack files (batched, at most `flushMs` after the ack,
 * synced only on close) and deleting whole segments once all their records are
 * acknowledged. A failure is counted in `errors` and logged at warn with the
 * file and its errno (at most 10 lines per kind of work each 10 s; the next line
 * written counts the ones left out in `suppressed`). Its worst outcome is a
 * message sent again (an ack not written), or the disk space of a segment not
 * given back until the next open deletes it (the queue's byte count no longer
 * includes it, so the disk holds more than the quota says).
 */
export class Housekeeper {
  errors = 0
  private readonly pending = new Map<SegmentIndex, number[]>()
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()
  private readonly limiter = new LogLimiter()

  constructor(
    private readonly dir: string,
    private readonly flushMs: number,
    /** Told how many bytes each flush adds to the ack files. */
    private readonly onAckBytes: (bytes: number) => void,
    private readonly logger?: Logger,
  ) {}

  /** Records that `seq` of `segment` was acknowledged, on disk within flushMs. */
  acked(segment: SegmentIndex, seq: number): void {
    const seqs = this.pending.get(segment)
    if (seqs) seqs.push(seq)
    else this.pending.set(segment, [seq])
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined
        void this.flush(false)
      }, this.flushMs)
      this.timer.unref()
    }
  }

  /** Deletes the files of `segment`, all of whose records are acknowledged. */
  remove(segment: SegmentIndex): void {
    this.pending.delete(segment)
    void this.run(async () => {
      // The records first: if only the ack file went, its records would come back unacknowledged.
      const log = join(this.dir, segmentFileName(segment.id))
      await onFile('segment_delete', log, () => rm(log, { force: true }))
      const ack = join(this.dir, ackFileName(segment.id))
      await onFile('segment_delete', ack, () => rm(ack, { force: true }))
    })
  }

  /** Appends the pending acknowledgements to their ack files; resolves when all work so far is done. */
  flush(sync: boolean): Promise<void> {
    const work: Array<{ id: number; buf: Buffer }> = []
    for (const [segment, seqs] of this.pending) {
      const buf = encodeAckRuns(toRuns(seqs))
      segment.ackBytes += buf.length
      this.onAckBytes(buf.length)
      work.push({ id: segment.id, buf })
    }
    this.pending.clear()
    return this.run(async () => {
      for (const { id, buf } of work) {
        const path = join(this.dir, ackFileName(id))
        await onFile('ack_write', path, async () => {
          const handle = await open(path, 'a', FILE_MODE)
          try {
            await handle.write(buf)
            if (sync) await handle.datasync()
          } finally {
            await handle.close()
          }
        })
      }
    })
  }

  /** Flushes and syncs what is pending and waits for all file work. */
  close(): Promise<void> {
    clearTimeout(this.timer)
    this.timer = undefined
    return this.flush(true)
  }

  private run(task: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(task).catch((err: unknown) => {
      this.errors++
      this.report(err)
    })
    return this.chain
  }

  private report(err: unknown): void {
    if (!this.logger) return
    const work = err instanceof FileWorkError ? err.work : 'file_work'
    const take = this.limiter.take(work)
    if (!take) return
    const cause = (err instanceof FileWorkError ? err.cause : err) as NodeJS.ErrnoException
    const path = err instanceof FileWorkError ? err.path : this.dir
    this.logger.warn(
      {
        work,
        path,
        code: cause?.code,
        errno: cause?.errno,
        err: cause,
        failures: this.errors,
        ...(take.suppressed > 0 && { suppressed: take.suppressed }),
      },
      work === 'segment_delete'
        ? `queue segment file not deleted (${cause?.code ?? cause?.message}): ${path}; its space comes back only when the next start deletes it`
        : `queue acknowledgements not written (${cause?.code ?? cause?.message}): ${path}; those messages may be sent again after a restart`,
    )
  }
}
