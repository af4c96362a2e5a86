import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs'
import { dirname } from 'node:path'

const BLOCK = 1024
const MAX_SEQ = 2 ** 40 - 1

/**
 * The gateway's own sender sequence number (gateway-to-device messages): one
 * counter for all devices, since every device has its own keys. Numbers are
 * reserved in blocks written durably before any number of the block is used
 * (RFC 8613 Appendix B.1.1), so a crash never reuses a nonce. Synchronous,
 * because it is needed on the delivery path; the disk is touched once per block.
 */
export class GatewaySequence {
  private next: number
  private reservedUpTo: number

  constructor(private readonly file: string) {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 })
    let stored = 0
    try {
      const text = readFileSync(file, 'utf8').trim()
      if (/^\d{1,13}$/.test(text)) stored = Number(text)
      else if (text.length > 0) throw new Error(`${file}: not a sequence number; refusing to guess one`)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    }
    this.next = stored
    this.reservedUpTo = stored
  }

  take(): number {
    if (this.next >= this.reservedUpTo) this.reserve()
    return this.next++
  }

  private reserve(): void {
    const upTo = Math.min(MAX_SEQ, this.reservedUpTo + BLOCK)
    if (upTo <= this.next) throw new Error('gateway sequence numbers exhausted: rotate the device keys')
    const tmp = `${this.file}.tmp`
    const fd = openSync(tmp, 'w', 0o600)
    try {
      writeSync(fd, `${upTo}\n`)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, this.file)
    this.reservedUpTo = upTo
  }
}
