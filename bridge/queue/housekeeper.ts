import { open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { encodeAckRuns, toRuns } from './ack-log.js'
import { FILE_MODE } from './io.js'
import { ackFileName, type SegmentIndex, segmentFileName } from './segment.js'

/**
 * The queue's lazy file work, one operation after another: appending
 * acknowledgements to ack files (batched, at most `flushMs` after the ack,
 * synced only on close) and deleting whole segments once all their records are
 * acknowledged. A failure is counted in `errors`; its worst outcome is a
 * message sent again, or a segment deleted at the next open instead.
 */
export class Housekeeper {
  errors = 0
  private readonly pending = new Map<SegmentIndex, number[]>()
  private timer: NodeJS.Timeout | undefined
  private chain: Promise<void> = Promise.resolve()

  constructor(
    private readonly dir: string,
    private readonly flushMs: number,
    /** Told how many bytes each flush adds to the ack files. */
    private readonly onAckBytes: (bytes: number) => void,
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
      await rm(join(this.dir, segmentFileName(segment.id)), { force: true })
      await rm(join(this.dir, ackFileName(segment.id)), { force: true })
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
        const handle = await open(join(this.dir, ackFileName(id)), 'a', FILE_MODE)
        try {
          await handle.write(buf)
          if (sync) await handle.datasync()
        } finally {
          await handle.close()
        }
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
    this.chain = this.chain.then(task).catch(() => {
      this.errors++
    })
    return this.chain
  }
}
