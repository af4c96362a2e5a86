import { describe, expect, it } from 'vitest'
import { familyOf, Metrics, nonZero, series } from '../../core/metrics.js'

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

  it('declared counters show at 0 until counted; a declaration never resets a count', () => {
    const m = new Metrics()
    m.increment('b_total')
    m.declare('b_total')
    m.declare(series('a_total', { reason: 'x' }))
    m.gauge('c', () => 0)
    expect(m.snapshot()).toEqual({ 'a_total{reason="x"}': 0, b_total: 1, c: 0 })
    // Sorted by name, so status.json reads the same from one write to the next.
    expect(Object.keys(m.snapshot())).toEqual(['a_total{reason="x"}', 'b_total', 'c'])
    expect(nonZero(m.snapshot())).toEqual({ b_total: 1 })
  })

  it('names series in the Prometheus text form, labels in the order given', () => {
    expect(series('uplink_dropped_total', { reason: 'queue_full', qos: 0 })).toBe(
      'uplink_dropped_total{reason="queue_full",qos="0"}',
    )
    expect(series('cloud_disconnects_total')).toBe('cloud_disconnects_total')
    expect(familyOf('uplink_dropped_total{reason="queue_full",qos="0"}')).toBe('uplink_dropped_total')
    expect(familyOf('cloud_disconnects_total')).toBe('cloud_disconnects_total')
  })
})
