import { describe, expect, it } from 'vitest'
import { SubscriberLimits } from '../../policies/subscriber-limits.js'

describe('SubscriberLimits', () => {
  it('refuses the N+1th client on a filter', () => {
    const limits = new SubscriberLimits()
    expect(['c1', 'c2', 'c3', 'c4'].map((c) => limits.tryAdd(0, 'cams/1', c, 3))).toEqual([
      true,
      true,
      true,
      false,
    ])
    expect(limits.count(0, 'cams/1')).toBe(3)
  })

  it('a client subscribing to the same filter again counts once', () => {
    const limits = new SubscriberLimits()
    expect(limits.tryAdd(0, 'a', 'c1', 1)).toBe(true)
    expect(limits.tryAdd(0, 'a', 'c1', 1)).toBe(true)
    expect(limits.count(0, 'a')).toBe(1)
    expect(limits.tryAdd(0, 'a', 'c2', 1)).toBe(false)
  })

  it('counts each rule and filter apart', () => {
    const limits = new SubscriberLimits()
    expect(limits.tryAdd(0, 'a', 'c1', 1)).toBe(true)
    expect(limits.tryAdd(0, 'b', 'c2', 1)).toBe(true)
    expect(limits.tryAdd(1, 'a', 'c2', 1)).toBe(true)
    expect([limits.count(0, 'a'), limits.count(0, 'b'), limits.count(1, 'a'), limits.count(1, 'b')]).toEqual([
      1, 1, 1, 0,
    ])
  })

  it('remove(client, filter) frees that slot only', () => {
    const limits = new SubscriberLimits()
    limits.tryAdd(0, 'a', 'c1', 1)
    limits.tryAdd(0, 'b', 'c1', 1)
    limits.remove('c1', 'a')
    expect(limits.count(0, 'a')).toBe(0)
    expect(limits.count(0, 'b')).toBe(1)
    expect(limits.tryAdd(0, 'a', 'c2', 1)).toBe(true)
    expect(limits.tryAdd(0, 'b', 'c2', 1)).toBe(false)
  })

  it('remove(client) frees all its slots when it leaves', () => {
    const limits = new SubscriberLimits()
    limits.tryAdd(0, 'a', 'c1', 1)
    limits.tryAdd(2, 'b', 'c1', 1)
    expect(limits.tryAdd(0, 'a', 'c2', 1)).toBe(false)
    limits.remove('c1')
    expect([limits.count(0, 'a'), limits.count(2, 'b')]).toEqual([0, 0])
    expect(limits.tryAdd(0, 'a', 'c2', 1)).toBe(true)
    expect(limits.tryAdd(2, 'b', 'c3', 1)).toBe(true)
  })

  it('removing an unknown client or filter changes nothing', () => {
    const limits = new SubscriberLimits()
    limits.tryAdd(0, 'a', 'c1', 2)
    limits.remove('c9')
    limits.remove('c1', 'zzz')
    expect(limits.count(0, 'a')).toBe(1)
  })
})
