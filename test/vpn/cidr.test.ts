import { describe, expect, it } from 'vitest'
import { cidrContains, networkOf, parseCidr, parseEndpoint, sameNetwork } from '../../vpn/cidr.js'
import { thrownBy } from '../helpers/catch.js'

describe('parseCidr and cidrContains', () => {
  it.each([
    ['10.78.0.0/30', '10.78.0.0', true],
    ['10.78.0.0/30', '10.78.0.3', true],
    ['10.78.0.0/30', '10.78.0.4', false],
    ['10.78.0.2/32', '10.78.0.2', true],
    ['10.78.0.2', '10.78.0.2', true],
    ['0.0.0.0/0', '203.0.113.5', true],
    ['fd78::/64', 'fd78::ffff:1', true],
    ['fd78::/64', 'fd78:0:0:1::1', false],
    ['::/0', '2001:db8::1', true],
    ['10.0.0.0/8', 'fd78::1', false],
    ['::ffff:10.0.0.0/104', '::ffff:10.1.2.3', true],
    // An IPv4-mapped address is its IPv4 address on a dual-stack socket.
    ['10.77.9.2/32', '::ffff:10.77.9.2', true],
    ['10.77.9.2/32', '::ffff:10.77.9.3', false],
    ['10.0.0.0/8', '::1', false],
  ])('%s contains %s: %s', (cidr, ip, inside) => {
    expect(cidrContains(parseCidr(cidr), ip)).toBe(inside)
  })

  it.each([
    '10.0.0.0/33',
    '10.0.0/8',
    'fd78::/129',
    '10.0.0.0/8/1',
    '10.0.0.0/-1',
    'fe80::1%eth0/64',
    '',
    'wg0',
  ])('refuses %j', (text) => {
    expect(thrownBy(() => parseCidr(text))).toMatchObject({ code: 'VPN_ERR_BAD_CONFIG' })
  })

  it('gives the network of a prefix, as ip route wants it', () => {
    expect(networkOf(parseCidr('10.78.0.1/30'))).toBe('10.78.0.0/30')
    expect(networkOf(parseCidr('10.78.0.2'))).toBe('10.78.0.2/32')
    expect(networkOf(parseCidr('fd78::1/64'))).toBe('fd78:0:0:0:0:0:0:0/64')
    expect(sameNetwork(parseCidr('10.78.0.1/30'), parseCidr('10.78.0.0/30'))).toBe(true)
    expect(sameNetwork(parseCidr('10.78.0.1/30'), parseCidr('10.78.0.2/32'))).toBe(false)
  })
})

describe('parseEndpoint', () => {
  it.each([
    ['203.0.113.5:51820', { host: '203.0.113.5', port: 51820, literal: true }],
    ['[2001:db8::5]:51820', { host: '2001:db8::5', port: 51820, literal: true }],
    ['vpn.example.com:1', { host: 'vpn.example.com', port: 1, literal: false }],
  ])('parses %s', (text, endpoint) => {
    expect(parseEndpoint(text)).toEqual(endpoint)
  })

  it.each([
    '203.0.113.5',
    '2001:db8::5:51820',
    '[vpn.example.com]:51820',
    'a b:1',
    'host:65536',
    'host:',
    '-bad-.com:1',
  ])('refuses %j', (text) => {
    expect(thrownBy(() => parseEndpoint(text))).toMatchObject({ code: 'VPN_ERR_BAD_CONFIG' })
  })
})
