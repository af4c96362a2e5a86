/**
 * Hands a secret to a program that only reads it from a path (`wg setconf <if> <file>`) without
 * the secret ever being stored in a file: it goes through a FIFO in a fresh 0700 directory.
 *
 * Why not `/dev/stdin`: Node gives a child's stdin as a socket pair, and Linux cannot reopen a
 * socket through /proc/self/fd (`wg setconf wg0 /dev/stdin` fails with `fopen: No such device or
 * address`). A FIFO behaves like the pipe wg-quick gets from `<(...)`.
 */
import { closeSync, constants, openSync, writeSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { keyTokens } from './redact.js'
import { type RunOptions, type RunResult, run } from './run.js'

/** Opens the FIFO for writing once a reader has it open; null if `done` settles first. */
async function openWriter(path: string, done: { settled: boolean }): Promise<number | null> {
  while (!done.settled) {
    try {
      return openSync(path, constants.O_WRONLY | constants.O_NONBLOCK)
    } catch (err) {
      // ENXIO: no reader yet.
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err
    }
    await sleep(5)
  }
  return null
}

async function writeAll(fd: number, data: Buffer, done: { settled: boolean }): Promise<void> {
  let offset = 0
  while (offset < data.length && !done.settled) {
    try {
      offset += writeSync(fd, data, offset)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err
      await sleep(5)
    }
  }
}

/**
 * Runs `cmd` with `argsFor(path)`, where `path` is a FIFO that delivers `secretText` once.
 * Everything else (timeout, redaction, typed errors) is `run`'s; keys in `secretText` are redacted too.
 */
export async function runWithSecretFile(
  cmd: string,
  argsFor: (path: string) => string[],
  secretText: string,
  options: Omit<RunOptions, 'input'> = {},
): Promise<RunResult> {
  const dir = await mkdtemp(join(tmpdir(), 'edge-gateway-vpn-'))
  try {
    const path = join(dir, 'config')
    await run('mkfifo', ['-m', '600', path], { ...options, netns: undefined, timeoutMs: 5000 })
    const done = { settled: false }
    const secrets = [...(options.secrets ?? []), ...keyTokens(secretText)]
    const pending = run(cmd, argsFor(path), { ...options, secrets })
    pending.then(
      () => {
        done.settled = true
      },
      () => {
        done.settled = true
      },
    )
    const fd = await openWriter(path, done)
    if (fd !== null) {
      try {
        await writeAll(fd, Buffer.from(secretText), done)
      } finally {
        closeSync(fd)
      }
    }
    return await pending
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
