import { CryptoError } from './errors.js'

/**
 * OSCORE-style sliding replay window (RFC 8613 §7.4) for one sender key.
 *
 * `highest` is the greatest sequence number accepted so far (-1 when none);
 * bit i of `bitmap` is set when `highest - i` has been accepted. A number more
 * than WIDTH - 1 below `highest` is too old: it can no longer be told apart
 * from a replay, so it is refused.
 */

/** Width of the window in sequence numbers. */
export const REPLAY_WINDOW_WIDTH = 64

/** Largest sequence number (OSCORE Partial IV: at most 40 bits). */
export const MAX_SEQ = 2 ** 40 - 1

const FULL = (1n << BigInt(REPLAY_WINDOW_WIDTH)) - 1n

export type ReplayVerdict = 'ok' | 'replayed' | 'too_old'

/** The persisted form of a window. `bitmap` has at most 64 bits; `highest` is -1 for an empty window. */
export interface ReplayState {
  highest: number
  bitmap: bigint
}

export function assertSeq(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > MAX_SEQ) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_SEQ',
      `Expected a sequence number from 0 to 2^40 - 1, got \`${String(seq)}\``,
    )
  }
}

/** Throws CRYPTO_ERR_BAD_INPUT unless `state` is a well-formed window state. */
export function assertReplayState(state: ReplayState): void {
  const { highest, bitmap } = state
  if (!Number.isSafeInteger(highest) || highest < -1 || highest > MAX_SEQ) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      `Expected \`highest\` from -1 to 2^40 - 1, got \`${String(highest)}\``,
    )
  }
  if (typeof bitmap !== 'bigint' || bitmap < 0n || bitmap > FULL) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      `Expected \`bitmap\` to be a bigint of at most 64 bits, got \`${String(bitmap)}\``,
    )
  }
  if (highest === -1 && bitmap !== 0n) {
    throw new CryptoError(
      'CRYPTO_ERR_BAD_INPUT',
      'An empty window (`highest` = -1) must have an empty bitmap',
    )
  }
}

/**
 * The state of a window that refuses every number up to and including `floor`
 * and accepts every number above it. Used when a window is restored from an
 * older snapshot: numbers that may have been accepted since are not reopened.
 */
export function floorState(floor: number): ReplayState {
  if (floor < 0) return { highest: -1, bitmap: 0n }
  assertSeq(floor)
  return { highest: floor, bitmap: FULL }
}

export class ReplayWindow {
  private highest = -1
  private bitmap = 0n

  static from(state: ReplayState): ReplayWindow {
    assertReplayState(state)
    const window = new ReplayWindow()
    window.highest = state.highest
    window.bitmap = state.bitmap
    return window
  }

  /** What `accept` would answer, without changing the window. */
  check(seq: number): ReplayVerdict {
    assertSeq(seq)
    if (seq > this.highest) return 'ok'
    const age = this.highest - seq
    if (age >= REPLAY_WINDOW_WIDTH) return 'too_old'
    return (this.bitmap >> BigInt(age)) & 1n ? 'replayed' : 'ok'
  }

  /** Checks `seq` and, when fresh, records it; the window only changes when the answer is `ok`. */
  accept(seq: number): ReplayVerdict {
    const verdict = this.check(seq)
    if (verdict !== 'ok') return verdict
    if (seq > this.highest) {
      const shift = seq - this.highest
      this.bitmap = shift >= REPLAY_WINDOW_WIDTH ? 1n : ((this.bitmap << BigInt(shift)) | 1n) & FULL
      this.highest = seq
    } else {
      this.bitmap |= 1n << BigInt(this.highest - seq)
    }
    return 'ok'
  }

  /**
   * Undoes `accept(seq)` for a number whose message was not delivered (its new
   * state could not be persisted), so that the sender's retransmission is not
   * refused as a replay. `highest` stays where it is, which is always safe.
   */
  forget(seq: number): void {
    assertSeq(seq)
    const age = this.highest - seq
    if (age < 0 || age >= REPLAY_WINDOW_WIDTH) return
    this.bitmap &= ~(1n << BigInt(age)) & FULL
  }

  state(): ReplayState {
    return { highest: this.highest, bitmap: this.bitmap }
  }
}
