import { describe, expect, it } from 'vitest'
import { LOSSES_BEFORE_PROBE, POISON_WINDOW_MS, PoisonWatch } from '../../bridge/poison-watch.js'

/** A session that died at once after sending `seqs`. */
const lost = (watch: PoisonWatch, seqs: number[]) =>
  watch.sessionLost(
    seqs.map((seq) => ({ seq, sentAt: 1000 })),
    1000,
  )

describe('PoisonWatch: a message the cloud broker closes the connection on', () => {
  it('is sent alone after 3 losses with it the oldest in flight, and condemned when that session dies too', () => {
    const watch = new PoisonWatch()
    for (let i = 0; i < LOSSES_BEFORE_PROBE; i++) {
      expect(watch.alone()).toBeUndefined()
      lost(watch, [9, 7, 8])
    }
    expect(watch.alone()).toBe(7)
    expect(watch.takeCondemned(7)).toBeUndefined()
    lost(watch, [7])
    expect(watch.alone()).toBeUndefined()
    expect(watch.takeCondemned(7)).toMatch(
      /closed the connection each of the 4 times this message was in flight/,
    )
    // Once: a retry from the dead letters is sent again.
    expect(watch.takeCondemned(7)).toBeUndefined()
  })

  it('clears a suspect the cloud acknowledges, alone or not', () => {
    const watch = new PoisonWatch()
    lost(watch, [5, 6])
    lost(watch, [5])
    watch.settled(5)
    lost(watch, [6, 7])
    lost(watch, [6])
    expect(watch.alone()).toBeUndefined()
    lost(watch, [6])
    expect(watch.alone()).toBe(6)
    watch.settled(6)
    expect(watch.alone()).toBeUndefined()
    lost(watch, [8])
    expect(watch.takeCondemned(6)).toBeUndefined()
  })

  it('counts nothing for a session that died with nothing in flight, and starts over when the oldest changes', () => {
    const watch = new PoisonWatch()
    lost(watch, [3])
    lost(watch, [])
    lost(watch, [3])
    lost(watch, [4])
    lost(watch, [3])
    lost(watch, [3])
    expect(watch.alone()).toBeUndefined()
    lost(watch, [3])
    expect(watch.alone()).toBe(3)
    // The probe's session died with nothing sent (the gate closed): it is probed again.
    lost(watch, [])
    expect(watch.alone()).toBe(3)
  })

  it('does not condemn the suspect when its session died with others in flight too', () => {
    const watch = new PoisonWatch()
    for (let i = 0; i < LOSSES_BEFORE_PROBE; i++) lost(watch, [2])
    lost(watch, [2, 3])
    expect(watch.takeCondemned(2)).toBeUndefined()
  })

  it('counts no death the message did not cause: long after it was sent, or closed by the gateway for what the broker sent', () => {
    const watch = new PoisonWatch()
    for (let i = 0; i < 5; i++) watch.sessionLost([{ seq: 4, sentAt: 0 }], POISON_WINDOW_MS + 1)
    for (let i = 0; i < 5; i++) watch.sessionLost([{ seq: 4, sentAt: 0 }], 10, true)
    expect(watch.alone()).toBeUndefined()
    for (let i = 0; i < LOSSES_BEFORE_PROBE; i++) watch.sessionLost([{ seq: 4, sentAt: 0 }], POISON_WINDOW_MS)
    expect(watch.alone()).toBe(4)
  })
})
