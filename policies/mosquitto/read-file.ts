import { open } from 'node:fs/promises'
import { MosquittoImportError } from './errors.js'
import { DEFAULT_MAX_BYTES } from './lines.js'
import { positiveInteger } from './option.js'

/**
 * Reads a Mosquitto file (acl_file, password_file, psk_file) as bytes for the
 * parsers, refusing anything that is not a regular file or is larger than
 * `maxBytes` (default 16 MiB) before reading it.
 */
export async function readMosquittoFile(path: string, maxBytes = DEFAULT_MAX_BYTES): Promise<Buffer> {
  positiveInteger('maxBytes', maxBytes)
  let handle: Awaited<ReturnType<typeof open>> | undefined
  try {
    handle = await open(path, 'r')
    const stat = await handle.stat()
    if (!stat.isFile()) {
      throw new MosquittoImportError(
        'MOSQ_ERR_READ_FILE',
        `Expected ${JSON.stringify(path)} to be a regular file`,
      )
    }
    if (stat.size > maxBytes) {
      throw new MosquittoImportError(
        'MOSQ_ERR_INPUT_TOO_LARGE',
        `Expected ${JSON.stringify(path)} to be at most ${maxBytes} bytes, got ${stat.size} bytes`,
      )
    }
    // Read at most one byte past the limit, in case the file grew since stat.
    const buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1)
    let length = 0
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, length)
      if (bytesRead === 0) break
      length += bytesRead
      if (length === buffer.length) break
    }
    if (length > maxBytes) {
      throw new MosquittoImportError(
        'MOSQ_ERR_INPUT_TOO_LARGE',
        `Expected ${JSON.stringify(path)} to be at most ${maxBytes} bytes; it grew while being read`,
      )
    }
    return buffer.subarray(0, length)
  } catch (err) {
    if (err instanceof MosquittoImportError) throw err
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new MosquittoImportError('MOSQ_ERR_READ_FILE', `Cannot read ${JSON.stringify(path)} (${code})`, {
      cause: err,
    })
  } finally {
    await handle?.close()
  }
}
