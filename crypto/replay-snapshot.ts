import { createHash } from 'node:crypto'
import { CryptoError } from './errors.js'
import { assertReplayState, type ReplayState } from './replay-window.js'

/**
 * The file format of FileReplayStore: one header line, then a JSON body.
 *
 *   edge-gateway replay-windows v1 <body length> <SHA-256 of the body, hex>\n
 *   {"generation":7,"windows":{"0a1b":[1234,"ffffffffffffffff"]}}
 *
 * The length and checksum make a torn or corrupted file detectable. The
 * checksum is for integrity, not authenticity: whoever can write the state
 * directory can forge it (the directory must be the gateway's alone).
 */

const MAGIC = 'edge-gateway replay-windows v1'
const HEADER = /^edge-gateway replay-windows v1 (\d{1,12}) ([0-9a-f]{64})\n/
const KID_HEX = /^(?:[0-9a-f]{2}){0,32}$/
const BITMAP_HEX = /^[0-9a-f]{1,16}$/

export interface Snapshot {
  generation: number
  windows: Map<string, ReplayState>
}

/** Throws CRYPTO_ERR_BAD_INPUT unless `kidHex` is a lowercase hex key id of at most 32 bytes. */
export function assertKidHex(kidHex: string): void {
  if (typeof kidHex !== 'string' || !KID_HEX.test(kidHex)) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      `Expected a key id as lowercase hex of at most 32 bytes, got \`${String(kidHex)}\``,
    )
  }
}

/** Validates a save request and copies the state; shared by the store implementations. */
export function checkSave(kidHex: string, state: ReplayState): ReplayState {
  assertKidHex(kidHex)
  assertReplayState(state)
  return { highest: state.highest, bitmap: state.bitmap }
}

export function copyWindows(windows: Map<string, ReplayState>): Map<string, ReplayState> {
  return new Map([...windows].map(([kidHex, s]) => [kidHex, { highest: s.highest, bitmap: s.bitmap }]))
}

export function encodeSnapshot(snapshot: Snapshot): Buffer {
  const windows: Record<string, [number, string]> = {}
  for (const [kidHex, state] of [...snapshot.windows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    windows[kidHex] = [state.highest, state.bitmap.toString(16)]
  }
  const body = Buffer.from(JSON.stringify({ generation: snapshot.generation, windows }), 'utf8')
  const sum = createHash('sha256').update(body).digest('hex')
  return Buffer.concat([Buffer.from(`${MAGIC} ${body.length} ${sum}\n`, 'utf8'), body])
}

/** Decodes a snapshot, or says why the bytes are not one. Never throws. */
export function decodeSnapshot(bytes: Buffer): Snapshot | { error: string } {
  const head = bytes.subarray(0, 128).toString('latin1')
  const match = HEADER.exec(head)
  if (!match) return { error: 'bad header' }
  const headerLength = match[0].length
  const body = bytes.subarray(headerLength)
  if (body.length !== Number(match[1])) return { error: `length ${body.length}, header says ${match[1]}` }
  if (createHash('sha256').update(body).digest('hex') !== match[2]) return { error: 'checksum mismatch' }
  try {
    return parseBody(JSON.parse(body.toString('utf8')))
  } catch (err) {
    return { error: `bad body: ${err instanceof Error ? err.message : String(err)}` }
  }
}

function parseBody(json: unknown): Snapshot {
  if (typeof json !== 'object' || json === null) throw new TypeError('not an object')
  const { generation, windows } = json as { generation?: unknown; windows?: unknown }
  if (!Number.isSafeInteger(generation) || (generation as number) < 0) throw new TypeError('bad generation')
  if (typeof windows !== 'object' || windows === null || Array.isArray(windows)) {
    throw new TypeError('bad windows')
  }
  const out = new Map<string, ReplayState>()
  for (const [kidHex, entry] of Object.entries(windows)) {
    assertKidHex(kidHex)
    if (!Array.isArray(entry) || entry.length !== 2) throw new TypeError(`bad window for ${kidHex}`)
    const [highest, bitmapHex] = entry as [unknown, unknown]
    if (typeof highest !== 'number' || typeof bitmapHex !== 'string' || !BITMAP_HEX.test(bitmapHex)) {
      throw new TypeError(`bad window for ${kidHex}`)
    }
    const state = { highest, bitmap: BigInt(`0x${bitmapHex}`) }
    assertReplayState(state)
    out.set(kidHex, state)
  }
  return { generation: generation as number, windows: out }
}
