/**
 * The setups compared: the Mosquitto edge-to-cloud bridge and the gateway,
 * each with devices on one LAN mode. `startEdge` starts a fresh edge process
 * for one trial (the cloud broker and the subscriber live for the whole run).
 */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { gatewayConfig, startGateway } from './gateway.mjs'
import { edgeConf, startMosquitto } from './mosquitto.mjs'
import { nowMicros } from './payload.mjs'
import { freePorts } from './ports.mjs'
import { hasExited, stopProcess } from './processes.mjs'

export const SETUPS = {
  'mosquitto-psk': { system: 'mosquitto', lan: 'psk', label: 'Mosquitto bridge' },
  'gateway-psk': { system: 'gateway', lan: 'psk', label: 'edge-gateway' },
  'mosquitto-tcp': { system: 'mosquitto', lan: 'tcp', label: 'Mosquitto bridge' },
  'gateway-tcp': { system: 'gateway', lan: 'tcp', label: 'edge-gateway' },
  'gateway-sealed': { system: 'gateway', lan: 'tcp', sealed: true, label: 'edge-gateway' },
  // The full path of issue 5: the device payload opened (TLS-PSK or sealed), HPKE-sealed to the cloud recipient, signed.
  'gateway-psk-hpke': { system: 'gateway', lan: 'psk', hpke: true, label: 'edge-gateway' },
  'gateway-sealed-hpke': { system: 'gateway', lan: 'tcp', sealed: true, hpke: true, label: 'edge-gateway' },
  // cloud.queue.durability: write (PUBACK once the record is in the kernel, no fdatasync): survives kill -9, not a power loss.
  'gateway-psk-write': { system: 'gateway', lan: 'psk', durability: 'write', label: 'edge-gateway' },
}

export const LAN_LABELS = { psk: 'TLS-PSK', tcp: 'TCP+password', sealed: 'TCP+password+sealed' }

export function lanLabel(setup) {
  return LAN_LABELS[setup.sealed ? 'sealed' : setup.lan]
}

/**
 * What the cloud receives: Mosquitto forwards the device payload; the gateway signs it, HPKE-sealed
 * or not, and acknowledges after the fsync of its queue unless the setup says otherwise.
 */
export function uplinkLabel(setup) {
  if (setup.system === 'mosquitto') return 'raw payload'
  const label = setup.hpke ? 'signed, HPKE' : 'signed'
  return setup.durability ? `${label}, PUBACK after ${setup.durability}` : label
}

/**
 * Starts the edge of `setupName` in `dir`; `spawnedAt` is performance.now() at spawn,
 * `spawnedAtMicros` the monotonic clock every process reads (bench/lib/payload.mjs).
 * `atRest`: an edge that runs beside a trial's, with a cloud session of its own (bench/lib/at-rest.mjs).
 * `restart()` stops it and starts it again on the same ports, config and state (the gateway's
 * durable queue included); the edge object then describes the new process.
 */
export async function startEdge(
  setupName,
  { fixtures, cloudPort, dir, cpus, idle, bridgeProtocol, queueStore, atRest = false },
) {
  const setup = SETUPS[setupName]
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const [tcpPort, pskPort] = await freePorts(2)
  const logFile = join(dir, setup.system === 'gateway' ? 'gateway.log' : 'mosquitto.log')
  const ports = { tcpPort, pskPort, cloudPort }
  let spawn
  if (setup.system === 'mosquitto') {
    const confFile = join(dir, 'mosquitto.conf')
    await writeFile(
      confFile,
      edgeConf({
        dir,
        ...ports,
        pki: fixtures.pki,
        files: fixtures.mosquitto,
        idle,
        bridgeProtocol,
        ...(atRest && { remoteClientId: 'edge-mosquitto-bench-at-rest' }),
      }),
    )
    spawn = () => startMosquitto({ dir, confFile, cpus })
  } else {
    const configFile = join(dir, 'gateway.yaml')
    const config = gatewayConfig({
      ...ports,
      pki: fixtures.pki,
      fixtures,
      sealed: setup.sealed,
      hpke: setup.hpke,
      durability: setup.durability,
      idle,
      queueStore,
      atRest,
    })
    // JSON is YAML: the gateway reads it as its usual config file.
    await writeFile(configFile, JSON.stringify(config, null, 2), { mode: 0o600 })
    spawn = () => startGateway({ dir, configFile, cpus, logFile })
  }
  const edge = {
    name: setupName,
    setup,
    ...ports,
    logFile,
    running: () => !hasExited(edge.child),
    stop: () => stopProcess(edge.child),
    async restart() {
      await stopProcess(edge.child)
      launch()
    },
  }
  function launch() {
    edge.spawnedAt = performance.now()
    edge.spawnedAtMicros = nowMicros()
    edge.child = spawn()
    edge.pid = edge.child.pid
  }
  launch()
  return edge
}

/** Where a device of this setup connects, and how. */
export function lanEndpoint(edge, device) {
  const psk = edge.setup.lan === 'psk'
  return {
    transport: psk ? 'psk' : 'tcp',
    host: '127.0.0.1',
    port: psk ? edge.pskPort : edge.tcpPort,
    ...(psk && { psk: device.psk }),
  }
}

/** CONNECT fields: PSK devices are known by their PSK identity, the others by username and password. */
export function connectFields(edge, device, clientId) {
  return edge.setup.lan === 'psk'
    ? { clientId, keepalive: 60 }
    : { clientId, username: device.id, password: device.password, keepalive: 60 }
}
