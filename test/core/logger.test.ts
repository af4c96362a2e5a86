import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { createLogger, REDACTED_KEYS, redactDeep } from '../../core/logger.js'

/** A logger whose JSON lines are parsed back. */
function capture() {
  const records: Array<Record<string, unknown>> = []
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) records.push(JSON.parse(line))
      done()
    },
  })
  return { records, logger: createLogger({ level: 'debug', destination }) }
}

const SECRET = 'do-not-log-7f3a'

describe('logger redaction', () => {
  it('covers at least the field names docs/security.md promises, and the other secrets the code names', () => {
    for (const key of ['password', 'psk', 'key', 'secret', 'payload'])
      expect(REDACTED_KEYS.has(key), key).toBe(true)
    for (const key of ['passwordhash', 'privatekey', 'presharedkey', 'mastersecret', 'token', 'plaintext']) {
      expect(REDACTED_KEYS.has(key), key).toBe(true)
    }
  })

  it.each([...REDACTED_KEYS])(
    'censors "%s" at the top level and nested 1, 2 and 5 levels deep',
    async (key) => {
      const { records, logger } = capture()
      logger.info(
        {
          [key]: SECRET,
          a: { [key]: SECRET, b: { [key]: SECRET, c: { d: { e: { [key]: SECRET } } } } },
          list: [{ [key]: SECRET }],
        },
        'test line',
      )
      await new Promise((r) => setImmediate(r))
      expect(JSON.stringify(records)).not.toContain(SECRET)
      expect(records[0]).toMatchObject({
        [key]: '[redacted]',
        a: { [key]: '[redacted]', b: { [key]: '[redacted]', c: { d: { e: { [key]: '[redacted]' } } } } },
        list: [{ [key]: '[redacted]' }],
        msg: 'test line',
      })
    },
  )

  it('matches key names whatever their case, and keeps every other field', () => {
    expect(
      redactDeep({ PSK: 1, Password: 2, device: 'd', nested: { clientId: 'c', MasterSecret: 'x' } }),
    ).toEqual({
      PSK: '[redacted]',
      Password: '[redacted]',
      device: 'd',
      nested: { clientId: 'c', MasterSecret: '[redacted]' },
    })
  })

  it('cuts what is nested deeper than 8 levels instead of walking it', () => {
    let deep: Record<string, unknown> = { password: SECRET }
    for (let i = 0; i < 12; i++) deep = { next: deep }
    expect(JSON.stringify(redactDeep(deep))).not.toContain(SECRET)
  })

  it('censors secrets in child logger records too', async () => {
    const { records, logger } = capture()
    logger.child({ module: 'x' }).warn({ device: 'dev', detail: { psk: SECRET } }, 'child line')
    await new Promise((r) => setImmediate(r))
    expect(records[0]).toMatchObject({ module: 'x', device: 'dev', detail: { psk: '[redacted]' } })
  })
})
