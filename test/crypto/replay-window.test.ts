import { describe, expect, it } from 'vitest'
import {
  floorState,
  MAX_SEQ,
  REPLAY_WINDOW_WIDTH,
  type ReplayVerdict,
  ReplayWindow,
} from '../../crypto/replay-window.js'

const FULL = (1n << 64n) - 1n

/** A window that remembers everything, to compare against. */
class ReferenceWindow {
  private readonly seen = new Set<number>()
  private highest = -1

  accept(seq: number): ReplayVerdict {
    if (seq <= this.highest - REPLAY_WINDOW_WIDTH) return 'too_old'
    if (this.seen.has(seq)) return 'replayed'
    this.seen.add(seq)
    this.highest = Math.max(this.highest, seq)
    return 'ok'
  }
}

describe('ReplayWindow', () => {
  it('is 64 wide', () => {
    expect(REPLAY_WINDOW_WIDTH).toBe(64)
  })

  it('an empty window accepts 0 and the largest sequence number', () => {
    expect(new ReplayWindow().state()).toEqual({ highest: -1, bitmap: 0n })
    expect(new ReplayWindow().accept(0)).toBe('ok')
    expect(new ReplayWindow().accept(MAX_SEQ)).toBe('ok')
  })

  it('refuses a number accepted before', () => {
    const w = new ReplayWindow()
    expect(w.accept(5)).toBe('ok')
    expect(w.accept(5)).toBe('replayed')
    expect(w.state()).toEqual({ highest: 5, bitmap: 1n })
  })

  it('accepts numbers out of order inside the window, each once', () => {
    const w = new ReplayWindow()
    expect(w.accept(100)).toBe('ok')
    expect(w.accept(98)).toBe('ok')
    expect(w.accept(99)).toBe('ok')
    expect(w.accept(98)).toBe('replayed')
    expect(w.state()).toEqual({ highest: 100, bitmap: 0b111n })
  })

  it('refuses numbers 64 or more below the highest as too old', () => {
    const w = new ReplayWindow()
    w.accept(1000)
    expect(w.check(1000 - 63)).toBe('ok')
    expect(w.check(1000 - 64)).toBe('too_old')
    expect(w.check(0)).toBe('too_old')
  })

  it('slides: a jump of 64 or more leaves only the new number', () => {
    const w = new ReplayWindow()
    for (let seq = 0; seq < 64; seq++) w.accept(seq)
    expect(w.state()).toEqual({ highest: 63, bitmap: FULL })
    w.accept(70)
    expect(w.state()).toEqual({ highest: 70, bitmap: ((FULL << 7n) & FULL) | 1n })
    expect(w.check(6)).toBe('too_old')
    expect(w.check(7)).toBe('replayed')
    expect(w.check(64)).toBe('ok')
    w.accept(70 + 64)
    expect(w.state()).toEqual({ highest: 134, bitmap: 1n })
  })

  it('check changes nothing; accept changes nothing unless ok', () => {
    const w = new ReplayWindow()
    w.accept(200)
    const before = w.state()
    expect(w.check(201)).toBe('ok')
    expect(w.check(199)).toBe('ok')
    expect(w.accept(200)).toBe('replayed')
    expect(w.accept(100)).toBe('too_old')
    expect(w.state()).toEqual(before)
  })

  it('matches a reference that remembers every number', () => {
    let x = 12345
    const random = () => {
      x = (x * 1103515245 + 12345) % 2 ** 31
      return x
    }
    const w = new ReplayWindow()
    const ref = new ReferenceWindow()
    let base = 0
    for (let i = 0; i < 20_000; i++) {
      const r = random()
      if (r % 10 === 0) base += r % 90
      const seq = Math.max(0, base + (r % 80) - 60)
      const expected = ref.accept(seq)
      expect(w.check(seq), `step ${i}, seq ${seq}`).toBe(expected)
      expect(w.accept(seq)).toBe(expected)
      if (i % 1000 === 0) expect(ReplayWindow.from(w.state()).state()).toEqual(w.state())
    }
  })

  it('restores from its state', () => {
    const w = new ReplayWindow()
    for (const seq of [10, 12, 15]) w.accept(seq)
    const copy = ReplayWindow.from(w.state())
    expect(copy.check(12)).toBe('replayed')
    expect(copy.check(11)).toBe('ok')
    expect(copy.state()).toEqual({ highest: 15, bitmap: 0b101001n })
  })

  it('refuses malformed states and sequence numbers', () => {
    for (const state of [
      { highest: -2, bitmap: 0n },
      { highest: MAX_SEQ + 1, bitmap: 1n },
      { highest: 1.5, bitmap: 1n },
      { highest: 5, bitmap: 1n << 64n },
      { highest: 5, bitmap: -1n },
      { highest: -1, bitmap: 1n },
      { highest: 5, bitmap: 1 as unknown as bigint },
    ]) {
      expect(() => ReplayWindow.from(state), JSON.stringify(String(state.bitmap))).toThrow(
        expect.objectContaining({ code: 'CRYPTO_ERR_BAD_INPUT' }),
      )
    }
    const w = new ReplayWindow()
    for (const seq of [-1, 1.5, MAX_SEQ + 1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => w.check(seq)).toThrow(expect.objectContaining({ code: 'CRYPTO_ERR_BAD_SEQ' }))
      expect(() => w.accept(seq)).toThrow(expect.objectContaining({ code: 'CRYPTO_ERR_BAD_SEQ' }))
    }
  })

  it('forget undoes an accept, keeping the highest', () => {
    const w = new ReplayWindow()
    w.accept(10)
    w.accept(20)
    w.forget(20)
    expect(w.check(20)).toBe('ok')
    expect(w.check(10)).toBe('replayed')
    expect(w.state()).toEqual({ highest: 20, bitmap: 1n << 10n })
    w.forget(10)
    w.forget(500) // above the window: nothing to forget
    w.forget(0) // inside, never accepted
    expect(w.state()).toEqual({ highest: 20, bitmap: 0n })
  })

  it('floorState refuses everything up to the floor', () => {
    const w = ReplayWindow.from(floorState(500))
    expect(w.check(500)).toBe('replayed')
    expect(w.check(437)).toBe('replayed')
    expect(w.check(436)).toBe('too_old')
    expect(w.check(501)).toBe('ok')
    expect(floorState(-1)).toEqual({ highest: -1, bitmap: 0n })
  })
})
