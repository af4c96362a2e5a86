import { describe, expect, it } from 'vitest'
import { VpnError } from '../../vpn/errors.js'
import { type FailedCommand, failureError } from '../../vpn/failure.js'

function failed(overrides: Partial<FailedCommand>): FailedCommand {
  return {
    program: 'ip',
    commandLine: 'ip link add dev wg0 type wireguard',
    netns: undefined,
    spawnCode: undefined,
    exitCode: 2,
    signal: undefined,
    timedOut: false,
    timeoutMs: 10_000,
    stderr: '',
    pathEnv: '/usr/sbin:/usr/bin',
    ...overrides,
  }
}

// stderr below is what the tools printed on Debian 12 (iproute2 6.1, wireguard-tools 1.0.20210914,
// wireguard-go 0.0.20220316).
describe('failureError', () => {
  it.each<[string, Partial<FailedCommand>, string, string]>([
    [
      'wg missing',
      { program: 'wg', commandLine: 'wg genkey', spawnCode: 'ENOENT', exitCode: undefined },
      'VPN_ERR_WG_NOT_FOUND',
      '`wg` was not found in PATH (/usr/sbin:/usr/bin): install the Debian package wireguard-tools (apt-get install wireguard-tools)',
    ],
    [
      'wireguard-go missing',
      { program: '/usr/bin/wireguard-go', commandLine: 'wireguard-go -f wg0', spawnCode: 'ENOENT' },
      'VPN_ERR_WG_GO_NOT_FOUND',
      '`wireguard-go` was not found in PATH (/usr/sbin:/usr/bin): install the Debian package wireguard-go (apt-get install wireguard-go), or run a kernel with WireGuard and set vpn.implementation to kernel',
    ],
    [
      'ip missing',
      { program: 'ip', spawnCode: 'ENOENT' },
      'VPN_ERR_IP_NOT_FOUND',
      '`ip` was not found in PATH (/usr/sbin:/usr/bin): install the Debian package iproute2 (apt-get install iproute2)',
    ],
    [
      'ip missing when running wg in a namespace',
      { program: 'wg', netns: 'ns1', spawnCode: 'ENOENT' },
      'VPN_ERR_IP_NOT_FOUND',
      '`ip` was not found',
    ],
    [
      'wg missing inside ip netns exec',
      {
        program: 'wg',
        netns: 'ns1',
        exitCode: 255,
        stderr: 'exec of "wg" failed: No such file or directory',
      },
      'VPN_ERR_WG_NOT_FOUND',
      'install the Debian package wireguard-tools',
    ],
    [
      'another program missing',
      { program: 'tcpdump', spawnCode: 'ENOENT' },
      'VPN_ERR_COMMAND_NOT_FOUND',
      '`tcpdump` was not found in PATH (/usr/sbin:/usr/bin): install it',
    ],
    [
      'no CAP_NET_ADMIN for ip link add',
      { stderr: 'RTNETLINK answers: Operation not permitted' },
      'VPN_ERR_NO_PRIVILEGE',
      '`ip link add dev wg0 type wireguard` was refused (Operation not permitted): managing WireGuard interfaces needs CAP_NET_ADMIN; run as root or grant it (systemd: AmbientCapabilities=CAP_NET_ADMIN)',
    ],
    [
      'no CAP_NET_ADMIN for wireguard-go',
      {
        program: 'wireguard-go',
        commandLine: 'wireguard-go -f wg0',
        exitCode: 1,
        stderr: 'ERROR: (wg0) 2026/11/23 07:57:27 Failed to create TUN device: operation not permitted',
      },
      'VPN_ERR_NO_PRIVILEGE',
      'needs CAP_NET_ADMIN',
    ],
    [
      'no privilege to enter a namespace',
      { stderr: 'setting the network namespace "ns1" failed: Operation not permitted' },
      'VPN_ERR_NO_PRIVILEGE',
      'needs CAP_SYS_ADMIN',
    ],
    [
      'no /dev/net/tun',
      {
        program: 'wireguard-go',
        commandLine: 'wireguard-go -f wg0',
        exitCode: 1,
        stderr: 'ERROR: (wg0) 2026/11/23 07:57:27 Failed to create TUN device: no such file or directory',
      },
      'VPN_ERR_NO_TUN',
      'wireguard-go needs the tun device',
    ],
    [
      'a missing namespace',
      {
        netns: 'gone',
        exitCode: 255,
        stderr: 'Cannot open network namespace "gone": No such file or directory',
      },
      'VPN_ERR_NETNS_NOT_FOUND',
      'Network namespace "gone" does not exist',
    ],
    [
      'a timeout',
      {
        program: 'wg',
        commandLine: 'wg show wg0 dump',
        timedOut: true,
        exitCode: undefined,
        signal: 'SIGTERM',
      },
      'VPN_ERR_TIMEOUT',
      '`wg show wg0 dump` did not finish within 10000 ms and was killed',
    ],
    [
      'any other failure',
      { commandLine: 'ip route add 10.78.0.2/32 dev wg0', stderr: 'RTNETLINK answers: File exists\n' },
      'VPN_ERR_COMMAND_FAILED',
      '`ip route add 10.78.0.2/32 dev wg0` failed with exit code 2: RTNETLINK answers: File exists',
    ],
    [
      'a kill by signal',
      { exitCode: undefined, signal: 'SIGKILL' },
      'VPN_ERR_COMMAND_FAILED',
      '`ip link add dev wg0 type wireguard` failed with signal SIGKILL',
    ],
  ])('%s', (_what, overrides, code, message) => {
    const err = failureError(failed(overrides))
    expect(err).toBeInstanceOf(VpnError)
    expect(err.code).toBe(code)
    expect(err.message).toContain(message)
  })

  it('keeps the command, exit code and (already redacted) stderr as details', () => {
    const err = failureError(failed({ stderr: 'RTNETLINK answers: File exists\n' }))
    expect(err.details).toEqual({
      command: 'ip link add dev wg0 type wireguard',
      exitCode: 2,
      stderr: 'RTNETLINK answers: File exists',
    })
  })

  it('keeps only the end of a long stderr', () => {
    const err = failureError(failed({ stderr: `${'x'.repeat(2000)}END` }))
    expect(err.details?.stderr).toBe(`...${'x'.repeat(597)}END`)
  })
})
