import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { Stack } from './harness.js'

const CLOUD_KEY = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='

/**
 * docs/vpn.md: with a `vpn` section, a `cloud.host` name is resolved once, at start, and the cloud
 * link connects to the address checked then (the one every poll route-checks), the name kept as
 * the TLS server name. Here the tunnel is one the system manages and is not there, so the link
 * waits; what it would connect to is the address.
 */
describe('the cloud link with a tunnel and a cloud.host name', () => {
  let stack: Stack

  beforeAll(async () => {
    stack = await Stack.start({
      cloud: { host: 'localhost' },
      vpn: {
        interfaceName: 'wgaddr9',
        manage: false,
        pollMs: 200,
        peer: { publicKey: CLOUD_KEY, allowedIps: ['127.0.0.1/32', '::1/128'] },
      },
    })
  })

  afterAll(async () => {
    await stack?.stop()
  })

  it('connects to the address resolved at start, not to the name', () => {
    const address = stack.gateway.bridge.link.address
    expect([`127.0.0.1:${stack.cloud.port}`, `::1:${stack.cloud.port}`]).toContain(address)
    // Nothing was made around the missing tunnel.
    expect(stack.gateway.metrics.get('cloud_connect_attempts_total')).toBe(0)
  })
})
