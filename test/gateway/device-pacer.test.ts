import { describe, expect, it } from 'vitest'
import { DevicePacer } from '../../gateway/device-pacer.js'

/** A pacer on a clock the test moves. */
function pacerAt(messagesPerSecond: number, burst: number) {
  const clock = { t: 1_000 }
  return { clock, pacer: new DevicePacer({ messagesPerSecond, burst }, () => clock.t) }
}

describe('DevicePacer (lan.deviceRate as back-pressure)', () => {
  it('lets a burst through at once, then spaces packets at the rate, in order', () => {
    const { pacer } = pacerAt(100, 3)
    expect([1, 2, 3].map(() => pacer.reserve('a'))).toEqual([0, 0, 0])
    // 10 ms apart from here: the 4th waits 10 ms, the 5th 20 ms.
    expect(pacer.reserve('a')).toBeCloseTo(10, 6)
    expect(pacer.reserve('a')).toBeCloseTo(20, 6)
  })

  it('refills with time: after a pause the device has its burst again, never more', () => {
    const { clock, pacer } = pacerAt(100, 3)
    for (let i = 0; i < 5; i++) pacer.reserve('a')
    clock.t += 10_000
    expect([1, 2, 3].map(() => pacer.reserve('a'))).toEqual([0, 0, 0])
    expect(pacer.reserve('a')).toBeCloseTo(10, 6)
  })

  it('keeps devices apart: one device past its rate does not slow another', () => {
    const { pacer } = pacerAt(10, 1)
    pacer.reserve('flooder')
    expect(pacer.reserve('flooder')).toBeCloseTo(100, 6)
    expect(pacer.reserve('quiet')).toBe(0)
  })

  it('a burst of 1 spaces every packet after the first', () => {
    const { pacer } = pacerAt(4, 1)
    expect([0, 1, 2, 3].map(() => pacer.reserve('a'))).toEqual([0, 250, 500, 750])
  })

  it("keeps a device's order when a packet whose turn is now comes while an earlier one is held", async () => {
    const { clock, pacer } = pacerAt(100, 1)
    const order: string[] = []
    expect(pacer.reserve('a')).toBe(0)
    const wait = pacer.reserve('a')
    expect(wait).toBeCloseTo(10, 6)
    const first = pacer.wait(wait, 'a').then(() => order.push('first'))
    // The process was busy: the device's turn came again before the held packet's timer ran.
    clock.t += 50
    expect(pacer.reserve('a')).toBe(0)
    const behind = pacer.behind('a')
    expect(behind).toBeInstanceOf(Promise)
    const second = behind!.then(() => order.push('second'))
    // Another device is not held behind it.
    expect(pacer.behind('b')).toBeUndefined()
    await Promise.all([first, second])
    expect(order).toEqual(['first', 'second'])
    // Nothing held any more: the next packet whose turn is now goes at once.
    clock.t += 50
    expect(pacer.reserve('a')).toBe(0)
    expect(pacer.behind('a')).toBeUndefined()
  })

  it('release lets every waiting packet go at once; forget drops a device', async () => {
    const { pacer } = pacerAt(0.001, 1)
    pacer.reserve('a')
    const waits = [pacer.wait(pacer.reserve('a')), pacer.wait(pacer.reserve('a'))]
    expect(pacer.waiting).toBe(2)
    pacer.release()
    await Promise.all(waits)
    expect(pacer.waiting).toBe(0)
    expect([...pacer.devices()]).toEqual(['a'])
    pacer.forget('a')
    expect([...pacer.devices()]).toEqual([])
    expect(pacer.reserve('a')).toBe(0)
  })
})
