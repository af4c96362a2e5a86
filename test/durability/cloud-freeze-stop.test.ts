import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { OFFLINE_ACK_MS } from '../../bridge/bridge.js'
import { Stack } from '../integration/harness.js'

/** A keepalive long enough that, without a bound of its own, the stop would wait for it. */
const KEEPALIVE_S = 30

/**
 * A clean stop publishes the gateway's offline status and waits for its PUBACK. With the cloud broker
 * hung (SIGSTOP: sockets open, nothing answered), that wait is bounded by OFFLINE_ACK_MS, not by the
 * keepalive (1.5 keepalives, 45 s here), which would be past systemd's stop timeout: the stop says so
 * and goes on.
 */
describe('stopping while the cloud broker hangs', () => {
  let stack: Stack

  beforeAll(async () => {
    stack = await Stack.start({ cloud: { keepaliveSeconds: KEEPALIVE_S } })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    stack?.cloud.resume()
    await stack?.stop()
  })

  it('the offline status is waited for OFFLINE_ACK_MS at most, then the gateway stops without it', async () => {
    stack.cloud.pause()
    const startedAt = performance.now()
    await stack.gateway.close()
    const tookMs = performance.now() - startedAt
    const warning = stack.logs.records.find((r) =>
      String(r.msg).startsWith('the cloud broker did not acknowledge the offline status'),
    )
    expect(warning).toMatchObject({ level: 40, waitedMs: OFFLINE_ACK_MS })
    expect(stack.logs.records.some((r) => r.msg === 'edge gateway stopped')).toBe(true)
    // Stopped on the bound, not on the keepalive (which would take 45 s).
    expect(tookMs).toBeLessThan(KEEPALIVE_S * 1000)
  }, 60_000)
})
