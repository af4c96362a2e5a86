import { writeSync } from 'node:fs'
import { type FileHandle, open, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { encodeSegmentHeader, segmentFileName } from './segment.js'

/** Files of the queue: owner read and write only. */
export const FILE_MODE = 0o600
/** The queue folder: owner only. */
export const DIR_MODE = 0o700

/** Writes all of `buf` at `position` (a regular file may take a write in parts). */
export async function writeFully(handle: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done)
    done += bytesWritten
  }
}

/**
 * `writeFully` on the event loop's thread: a group commit's records go into the page cache with
 * no hand-off to libuv's thread pool and back (two thread wake-ups per commit, the larger part
 * of a lone message's round trip; docs/performance.md, "Queue writes on the event loop (after the 03:30 run)").
 */
export function writeFullySync(handle: FileHandle, buf: Buffer, position: number): void {
  let done = 0
  while (done < buf.length) done += writeSync(handle.fd, buf, done, buf.length - done, position + done)
}

/** Syncs a folder, so that files made, truncated or removed in it stay so after a power loss. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Makes segment `id` with its header (base `baseSeq`) and syncs it and the
 * folder: 2 syncs. Returns the handle, open for writing records after the header.
 * On failure the file is removed (best effort: the disk may refuse that too, so
 * callers never try the same id again).
 */
export async function createSegmentFile(dir: string, id: number, baseSeq: number): Promise<FileHandle> {
  const path = join(dir, segmentFileName(id))
  const handle = await open(path, 'wx', FILE_MODE)
  try {
    await writeFully(handle, encodeSegmentHeader(baseSeq), 0)
    await handle.datasync()
    await syncDir(dir)
    return handle
  } catch (err) {
    await handle.close().catch(() => {})
    await rm(path, { force: true }).catch(() => {})
    throw err
  }
}
