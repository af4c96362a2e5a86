import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'
import { SecurityEvents } from '../../core/security-events.js'

/** `burst` lines per 10 s, or the gateway's own limit (DEFAULT_SECURITY_LOG_LIMIT) with 'default'. */
function setup(burst: number | 'default' = 3) {
  const lines: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line))
      done()
    },
  })
  let t = 0
  const metrics = new Metrics()
  const events = new SecurityEvents(
    createLogger({ level: 'debug', destination }),
    metrics,
    burst === 'default' ? undefined : { burst, windowMs: 10_000 },
    () => t,
  )
  return { lines, metrics, events, advance: (ms: number) => (t += ms) }
}

const settle = () => new Promise((r) => setImmediate(r))

describe('SecurityEvents log limit', () => {
  it('counts every event, logs `burst` lines per event and identity per window, then says how many it left out', async () => {
    const { lines, metrics, events, advance } = setup(3)
    for (let i = 0; i < 10; i++)
      events.report('payload_rejected', { device: 'flooder', reason: 'replayed' }, 'refused')
    events.report('payload_rejected', { device: 'quiet', reason: 'bad_tag' }, 'refused')
    await settle()
    expect(metrics.get('security_events_total{event="payload_rejected"}')).toBe(11)
    expect(lines.map((l) => l.device)).toEqual(['flooder', 'flooder', 'flooder', 'quiet'])
    expect(metrics.get('security_log_lines_suppressed_total')).toBe(7)
    advance(10_000)
    events.report('payload_rejected', { device: 'flooder', reason: 'replayed' }, 'refused')
    await settle()
    expect(lines.slice(4)).toEqual([
      expect.objectContaining({
        event: 'payload_rejected',
        identity: 'flooder',
        suppressed: 7,
        msg: '7 more payload_rejected event(s) for flooder were counted but not logged',
      }),
      expect.objectContaining({ device: 'flooder', msg: 'refused' }),
    ])
  })

  it('by default (what the gateway runs with): 50 lines of one event for one identity in 10 s, as docs/security.md says', async () => {
    const { lines, metrics, events, advance } = setup('default')
    for (let i = 0; i < 60; i++) events.report('auth_bad_password', { username: 'guess' }, 'refused')
    await settle()
    expect(lines).toHaveLength(50)
    expect(metrics.get('security_log_lines_suppressed_total')).toBe(10)
    advance(9_999)
    events.report('auth_bad_password', { username: 'guess' }, 'refused')
    await settle()
    expect(lines).toHaveLength(50)
    advance(1)
    events.report('auth_bad_password', { username: 'guess' }, 'refused')
    await settle()
    expect(lines.slice(50).map((l) => l.suppressed ?? l.msg)).toEqual([11, 'refused'])
  })

  it('bounds each line in bytes too: a string field over 256 characters is cut, with its length', async () => {
    const { lines, events } = setup(3)
    events.report('subscribe_denied', { device: 'd', topic: `devices/d/${'x'.repeat(65_000)}` }, 'refused')
    await settle()
    expect(lines[0]!.topic).toBe(`devices/d/${'x'.repeat(246)}... (65010 characters)`)
    expect(JSON.stringify(lines[0]).length).toBeLessThan(1024)
  })

  it('other events of the same device have their own budget', async () => {
    const { lines, events } = setup(1)
    events.report('rate_limited', { device: 'd' }, 'a')
    events.report('rate_limited', { device: 'd' }, 'a')
    events.report('publish_denied', { device: 'd' }, 'b')
    await settle()
    expect(lines.map((l) => l.event)).toEqual(['rate_limited', 'publish_denied'])
  })

  it('flush writes what is left out (at shutdown)', async () => {
    const { lines, events } = setup(1)
    events.report('auth_unknown_user', { remoteAddress: '192.0.2.7' }, 'x')
    events.report('auth_unknown_user', { remoteAddress: '192.0.2.7' }, 'x')
    events.flush()
    await settle()
    expect(lines.at(-1)).toMatchObject({ identity: '192.0.2.7', suppressed: 1 })
  })
})
