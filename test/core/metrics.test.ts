import { describe, expect, it } from 'vitest'
import { Metrics } from '../../core/metrics.js'

describe('Metrics', () => {
  it('counts and reads gauges lazily', () => {
    const m = new Metrics()
    m.increment('a')
    m.increment('a', 2)
    let depth = 1
    m.gauge('depth', () => depth)
    depth = 5
    expect(m.get('a')).toBe(3)
    expect(m.snapshot()).toEqual({ a: 3, depth: 5 })
  })
})
