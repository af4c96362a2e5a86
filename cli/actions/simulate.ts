import { join } from 'node:path'
import { loadConfig } from '../../config/index.js'
import { type SimulatedDeviceSpec, type SimulatorMode, simulate } from '../../device/simulator.js'
import { readPskFile } from '../../gateway/index.js'
import { readMasterSecretConfig } from '../../gateway/protection/master-secret.js'
import { MODES } from '../commands/simulate.js'
import { UsageError } from '../fail.js'

export interface SimulateOptions {
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
  host?: string
}

function whole(name: string, value: string, min: number, max: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`Expected --${name} to be a whole number from ${min} to ${max}, got \`${value}\``)
  }
  return n
}

/** `device simulate`: the listed devices of a config publish against that gateway. */
export async function runSimulate(options: SimulateOptions): Promise<void> {
  if (!MODES.includes(options.mode)) {
    throw new UsageError(`Expected --mode to be one of ${MODES.join(', ')}, got \`${options.mode}\``)
  }
  const config = await loadConfig(options.config)
  const wanted = options.devices.split(',').filter(Boolean)
  const devices: SimulatedDeviceSpec[] = []
  for (const id of wanted) {
    const d = config.devices.find((x) => x.id === id)
    if (!d) throw new UsageError(`no device "${id}" in ${options.config}`)
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
  if (!listener) throw new UsageError(`the config has no ${type} listener for --mode ${options.mode}`)
  const results = await simulate({
    mode: options.mode,
    host: options.host ?? (listener.host === '0.0.0.0' ? '127.0.0.1' : listener.host),
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
}
