import { join } from 'node:path'
import type { Command } from 'commander'
import { loadConfig } from '../../config/index.js'
import { type SimulatedDeviceSpec, type SimulatorMode, simulate } from '../../device/simulator.js'
import { readPskFile } from '../../gateway/index.js'
import { readMasterSecretConfig } from '../../gateway/protection/master-secret.js'

interface SimulateOptions {
  config: string
  mode: SimulatorMode
  devices: string
  password?: string
  messages: string
  interval: string
  topic: string
  stateDir?: string
  hpkeKid?: string
  hpkePublicKey?: string
  port?: string
}

const MODES: SimulatorMode[] = ['psk', 'password', 'token', 'sealed', 'mac', 'hpke']
function whole(name: string, value: string, min: number, max: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`Expected --${name} to be a whole number from ${min} to ${max}, got \`${value}\``)
  }
  return n
}

export function registerSimulate(device: Command): void {
  device
    .command('simulate')
    .description(
      'run simulated devices from a gateway config against that gateway, in one LAN mode (psk, password, token, sealed, mac, hpke)',
    )
    .requiredOption('-c, --config <file>', 'the gateway config (listeners, devices and their key files)')
    .requiredOption('--mode <mode>', MODES.join(', '))
    .requiredOption('--devices <ids>', 'comma-separated device ids from the config')
    .option('--password <password>', 'the password, for --mode password (all listed devices)')
    .option('--messages <n>', 'readings each device publishes at QoS 1', '10')
    .option('--interval <ms>', 'pause between readings', '1000')
    .option('--topic <template>', 'topic; %d is the device id', 'devices/%d/telemetry')
    .option(
      '--state-dir <dir>',
      'where simulated devices keep sequence numbers (default: <stateDir>/simulator)',
    )
    .option('--port <port>', "the listener's port, when the config's is 0 or differs")
    .option('--hpke-kid <hex>', 'recipient key id, for --mode hpke')
    .option('--hpke-public-key <hex>', 'recipient X25519 public key (32 bytes hex), for --mode hpke')
    .action(async (options: SimulateOptions) => {
      if (!MODES.includes(options.mode)) {
        throw new Error(`Expected --mode to be one of ${MODES.join(', ')}, got \`${options.mode}\``)
      }
      const config = await loadConfig(options.config)
      const wanted = options.devices.split(',').filter(Boolean)
      const devices: SimulatedDeviceSpec[] = []
      for (const id of wanted) {
        const d = config.devices.find((x) => x.id === id)
        if (!d) throw new Error(`no device "${id}" in ${options.config}`)
        devices.push({
          id,
          ...(d.username !== undefined && { username: d.username }),
          ...(options.password !== undefined && { password: options.password }),
          ...(d.psk && { psk: { identity: d.psk.identity, key: await readPskFile(d.psk.keyFile) } }),
          ...(d.payloadKey && { payloadKey: await readMasterSecretConfig(d.payloadKey) }),
        })
      }
      const type = options.mode === 'psk' ? 'tls-psk' : 'tcp'
      const listener = config.lan.listeners.find((l) => l.type === type)
      if (!listener) throw new Error(`the config has no ${type} listener for --mode ${options.mode}`)
      const results = await simulate({
        mode: options.mode,
        host: listener.host === '0.0.0.0' ? '127.0.0.1' : listener.host,
        port: options.port !== undefined ? whole('port', options.port, 1, 65535) : listener.port,
        devices,
        messages: whole('messages', options.messages, 1, 1_000_000),
        intervalMs: whole('interval', options.interval, 0, 3_600_000),
        topic: options.topic,
        stateDir: options.stateDir ?? join(config.gateway.stateDir, 'simulator'),
        ...(options.hpkePublicKey && {
          hpkeRecipient: {
            kid: Buffer.from(options.hpkeKid ?? '00', 'hex'),
            publicKey: Buffer.from(options.hpkePublicKey, 'hex'),
          },
        }),
      })
      for (const r of results) {
        process.stdout.write(
          `${r.device}: sent ${r.sent}, acknowledged ${r.acknowledged}${r.error ? `, error: ${r.error}` : ''}\n`,
        )
      }
      if (results.some((r) => r.error || r.acknowledged < r.sent)) process.exitCode = 1
    })
}
