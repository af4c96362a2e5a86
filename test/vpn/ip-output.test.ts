import { describe, expect, it } from 'vitest'
import { parseLinkLine, parseRouteGet } from '../../vpn/ip-output.js'

// Captured from iproute2 6.1 inside a test namespace.
describe('parseRouteGet', () => {
  it('reads the device of a route through the tunnel', () => {
    expect(parseRouteGet('10.78.0.2 dev wga5165 src 10.78.0.1 uid 0 \n    cache \n')).toEqual({
      dev: 'wga5165',
      via: null,
    })
  })

  it('reads a route via a gateway', () => {
    expect(
      parseRouteGet('203.0.113.9 via 192.168.1.1 dev eth0 src 192.168.1.20 uid 1000 \n    cache \n'),
    ).toEqual({
      dev: 'eth0',
      via: '192.168.1.1',
    })
  })

  it('reads a local address as the loopback device', () => {
    expect(
      parseRouteGet('local 10.78.0.1 dev lo table local src 10.78.0.1 uid 0 \n    cache <local> \n'),
    ).toEqual({
      dev: 'lo',
      via: null,
    })
  })
})

describe('parseLinkLine', () => {
  it('reads a wireguard-go interface that is up', () => {
    expect(
      parseLinkLine(
        '2: wga5165: <POINTOPOINT,MULTICAST,NOARP,UP,LOWER_UP> mtu 1420 qdisc pfifo_fast state UNKNOWN mode DEFAULT group default qlen 500\\    link/none \n',
      ),
    ).toEqual({
      name: 'wga5165',
      flags: ['POINTOPOINT', 'MULTICAST', 'NOARP', 'UP', 'LOWER_UP'],
      mtu: 1420,
      up: true,
    })
  })

  it('reads a link that is down, and a veth with its peer suffix', () => {
    expect(
      parseLinkLine('2: wga5165: <POINTOPOINT,MULTICAST,NOARP> mtu 1420 qdisc noop state DOWN mode DEFAULT')
        ?.up,
    ).toBe(false)
    expect(
      parseLinkLine('6: va5165@if5: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP')?.name,
    ).toBe('va5165')
  })

  it('gives null for something else', () => {
    expect(parseLinkLine('Device "wg9" does not exist.')).toBeNull()
  })
})
