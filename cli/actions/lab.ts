import { X509Certificate } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import { type ConsumeResult, EnvelopeConsumer } from '../../bridge/consumer.js'
import { loadConfig } from '../../config/index.js'
import { createLogger } from '../../core/logger.js'
import { startEdgeGateway } from '../app.js'
import { UsageError } from '../fail.js'
import { startLabCloudBroker } from '../lab/cloud-broker.js'
import { startSimulatedDevice } from '../lab/devices.js'
import { LAB_PASSWORD_DEVICE, LAB_PSK_DEVICE, prepareLab } from '../lab/setup.js'
import { untilSignal } from '../shutdown.js'

export interface LabOptions {
  stateDir: string
  basePort: string
  interval: string
  duration?: string
  logLevel: string
}

function parseIntOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value)
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`Expected --${name} to be a whole number from ${min} to ${max}, got \`${value}\``)
  }
  return n
}

/** `edge-gateway lab`: the whole lab on loopback, until a signal or --duration. */
export async function runLab(options: LabOptions): Promise<void> {
  const base = parseIntOption('base-port', options.basePort, 1024, 65533)
  const interval = parseIntOption('interval', options.interval, 10, 3_600_000)
  const seconds =
    options.duration === undefined ? undefined : parseIntOption('duration', options.duration, 1, 86_400)
  const out = (line: string) => process.stdout.write(`${line}\n`)
  const lab = await prepareLab(options.stateDir, { plain: base, psk: base + 1, cloud: base + 2 })

  const consumer = new EnvelopeConsumer(new X509Certificate(await readFile(lab.pki.caFile)), [])
  let verifying = Promise.resolve()
  const describe = (result: ConsumeResult, qos: number, clientId: string) => {
    if (result.ok === 'pending') return
    if (result.ok === false) {
      out(`cloud <- ${result.cloudTopic}: REFUSED (${result.failure})`)
      return
    }
    const m = result.message
    const body = m.body.toString('utf8').slice(0, 200)
    out(
      m.kind === 'control'
        ? `cloud <- ${m.cloudTopic} ${body} (signed by gateway ${m.gatewayId})`
        : `cloud <- ${m.cloudTopic} ${body} (qos ${qos}, from ${clientId}; signature verified, device ${m.deviceId}, gw-seq ${m.seq}${m.duplicate ? ', duplicate' : ''})`,
    )
  }
  const cloud = await startLabCloudBroker({
    host: '127.0.0.1',
    port: lab.ports.cloud,
    caFile: lab.pki.caFile,
    certFile: lab.pki.serverCertFile,
    keyFile: lab.pki.serverKeyFile,
    // The embedded cloud verifies what it receives, as a cloud service would (bridge/consumer.ts).
    onMessage: (packet, clientId) => {
      const payload = Buffer.from(packet.payload)
      verifying = verifying.then(async () => {
        if (packet.topic.endsWith('/binding')) {
          const b = await consumer.binding(payload)
          out(
            b.ok
              ? `cloud <- ${packet.topic}: key binding for gateway ${b.gatewayId} verified against the lab CA`
              : `cloud <- ${packet.topic}: key binding REFUSED (${b.failure})`,
          )
          for (const r of b.released) describe(r, packet.qos, clientId)
          return
        }
        describe(await consumer.message(packet.topic, payload), packet.qos, clientId)
      })
    },
    onRefused: (reason) => out(`cloud: refused a TLS client: ${reason}`),
  })
  const config = await loadConfig(lab.configFile)
  const logger = createLogger({ level: options.logLevel, destination: process.stderr })
  const gateway = await startEdgeGateway(config, logger)

  const keyHex = lab.psk.key.toString('hex')
  out('edge-gateway lab: everything on loopback (127.0.0.1)')
  out(`  LAN plain (username/password): 127.0.0.1:${lab.ports.plain}`)
  out(`  LAN TLS-PSK:                   127.0.0.1:${lab.ports.psk}`)
  out(`  cloud broker (mutual TLS):     127.0.0.1:${lab.ports.cloud}, CA ${lab.pki.caFile}`)
  out('  VPN: off in lab mode (the cloud link is mutual TLS on loopback, no WireGuard tunnel)')
  out(`  config written to ${lab.configFile}`)
  out('lab devices (credentials are random for each lab run):')
  out(`  ${LAB_PSK_DEVICE}: PSK identity ${lab.psk.identity}, key ${keyHex}`)
  out(`  ${LAB_PASSWORD_DEVICE}: username ${lab.password.username}, password ${lab.password.password}`)
  out('join as the PSK device with:')
  out(
    `  mosquitto_pub -h 127.0.0.1 -p ${lab.ports.psk} --psk ${keyHex} --psk-identity ${lab.psk.identity} -i ${LAB_PSK_DEVICE}-cli -t devices/${LAB_PSK_DEVICE}/hello -m 'hello from mosquitto_pub' -q 1`,
  )

  const onDeviceError = (id: string, err: Error) => out(`device ${id}: ${err.message}`)
  const devices = [
    startSimulatedDevice(
      LAB_PSK_DEVICE,
      { kind: 'psk', host: '127.0.0.1', port: lab.ports.psk, psk: lab.psk },
      interval,
      onDeviceError,
    ),
    startSimulatedDevice(
      LAB_PASSWORD_DEVICE,
      { kind: 'password', host: '127.0.0.1', port: lab.ports.plain, ...lab.password },
      interval,
      onDeviceError,
    ),
  ]
  const stop = async () => {
    await Promise.all(devices.map((d) => d.stop()))
    await gateway.close()
    await cloud.close()
    out('edge-gateway lab: stopped')
  }
  // SIGINT and SIGTERM stop it cleanly, also under `npm run lab` (the script execs node, so npm's
  // forwarded signals reach this process) and with --duration. The banner's last line comes once
  // the handlers are in place: a supervisor that signals on seeing it never meets Node's default
  // (an exit without stopping).
  const stopped = untilSignal(stop, seconds === undefined ? {} : { afterMs: seconds * 1000 })
  out('messages arriving at the cloud side:')
  await stopped
}
