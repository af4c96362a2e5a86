import { describe, expect, it } from 'vitest'
import { LOSSES_BEFORE_PROBE, PoisonWatch } from '../../bridge/poison-watch.js'

describe('PoisonWatch: a message the cloud broker closes the connection on', () => {
  it('is sent alone after 3 losses with it the oldest in flight, and condemned when that session dies too', () => {
    const watch = new PoisonWatch()
    for (let i = 0; i < LOSSES_BEFORE_PROBE; i++) {
      expect(watch.alone()).toBeUndefined()
      watch.sessionLost([9, 7, 8])
    }
    expect(watch.alone()).toBe(7)
    expect(watch.takeCondemned(7)).toBeUndefined()
    watch.sessionLost([7])
    expect(watch.alone()).toBeUndefined()
    expect(watch.takeCondemned(7)).toMatch(
      /closed the connection each of the 4 times this message was in flight/,
    )
    // Once: a retry from the dead letters is sent again.
    expect(watch.takeCondemned(7)).toBeUndefined()
  })

  it('clears a suspect the cloud acknowledges, alone or not', () => {
    const watch = new PoisonWatch()
    watch.sessionLost([5, 6])
    watch.sessionLost([5])
    watch.settled(5)
    watch.sessionLost([6, 7])
    watch.sessionLost([6])
    expect(watch.alone()).toBeUndefined()
    watch.sessionLost([6])
    expect(watch.alone()).toBe(6)
    watch.settled(6)
    expect(watch.alone()).toBeUndefined()
    watch.sessionLost([8])
    expect(watch.takeCondemned(6)).toBeUndefined()
  })

  it('counts nothing for a session that died with nothing in flight, and starts over when the oldest changes', () => {
    const watch = new PoisonWatch()
    watch.sessionLost([3])
    watch.sessionLost([])
    watch.sessionLost([3])
    watch.sessionLost([4])
    watch.sessionLost([3])
    watch.sessionLost([3])
    expect(watch.alone()).toBeUndefined()
    watch.sessionLost([3])
    expect(watch.alone()).toBe(3)
    // The probe's session died with nothing sent (the gate closed): it is probed again.
    watch.sessionLost([])
    expect(watch.alone()).toBe(3)
  })

  it('does not condemn the suspect when its session died with others in flight too', () => {
    const watch = new PoisonWatch()
    for (let i = 0; i < LOSSES_BEFORE_PROBE; i++) watch.sessionLost([2])
    watch.sessionLost([2, 3])
    expect(watch.takeCondemned(2)).toBeUndefined()
  })
})
