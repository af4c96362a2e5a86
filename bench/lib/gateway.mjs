/**
 * The gateway's config for a trial and starting it exactly as a user would:
 * `node dist/bin/edge-gateway.js start --config <file>`, JSON log lines to a file.
 * Both LAN listeners are always on (as the Mosquitto edge has both); the
 * sealed setups add the devices' payload keys and `lan.protection`; the hpke
 * setups HPKE-seal every payload to the cloud recipient (`sealFor`). Every
 * setup signs every message (the gateway always does).
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { CLOUD_TOPIC_PREFIX } from './mosquitto.mjs'
import { spawnServer } from './processes.mjs'

const MAIN = fileURLToPath(new URL('../../dist/bin/edge-gateway.js', import.meta.url))
export const SEALED_TOPIC_FILTER = 'devices/+/sealed'
/** The gateway id: the edge certificate's CN, which the key binding must name for a consumer to trust it. */
export const GATEWAY_ID = 'edge-gateway'
const AT_REST_CONTROL_PREFIX = '$gw-at-rest'

export function gatewayConfig({
  tcpPort,
  pskPort,
  cloudPort,
  pki,
  fixtures,
  sealed,
  hpke,
  durability,
  idle,
  queueStore,
  atRest,
}) {
  const devices = fixtures.publishers.map((d) => ({
    id: d.id,
    username: d.id,
    passwordHash: d.passwordHash,
    psk: { identity: d.psk.identity, keyFile: d.pskKeyFile },
    clientIds: [d.id, `${d.id}-*`],
    ...(sealed && { payloadKey: { kid: d.payload.kidHex, secretFile: d.payloadKeyFile } }),
  }))
  if (idle) {
    for (const d of fixtures.idle)
      devices.push({ id: d.id, psk: { identity: d.psk.identity, keyFile: d.pskKeyFile } })
  }
  return {
    gateway: { id: GATEWAY_ID, stateDir: 'state' },
    log: { level: 'info', pretty: false },
    lan: {
      listeners: [
        { name: 'lan-plain', type: 'tcp', host: '127.0.0.1', port: tcpPort },
        { name: 'lan-psk', type: 'tls-psk', host: '127.0.0.1', port: pskPort },
      ],
      ...(sealed && { protection: [{ topic: SEALED_TOPIC_FILTER, mode: 'sealed' }] }),
      // The throughput loads measure the path, not the per-device rate limit (100/s by default):
      // raised as an operator with fast devices would (the attack bench keeps the default).
      deviceRate: { messagesPerSecond: 1_000_000, burst: 1_000_000 },
    },
    devices,
    cloud: {
      host: '127.0.0.1',
      port: cloudPort,
      servername: 'localhost',
      caFile: pki.caFile,
      certFile: pki.edgeCertFile,
      keyFile: pki.edgeKeyFile,
      topics: [
        {
          local: 'devices/',
          cloud: `${CLOUD_TOPIC_PREFIX}devices/`,
          ...(hpke && { mode: 'client-to-broker', sealFor: fixtures.recipient.name }),
        },
      ],
      ...(hpke && {
        recipients: [{ name: fixtures.recipient.name, publicKeyFile: fixtures.recipient.publicKeyFile }],
      }),
      // Unset: the gateway's default (a durable queue on disk, in the trial's state folder).
      ...((queueStore || durability) && {
        queue: { ...(queueStore && { store: queueStore }), ...(durability && { durability }) },
      }),
      // An edge at rest beside a trial's (bench/lib/at-rest.mjs): its own cloud session, and its key
      // binding and health messages under a prefix the subscriber does not read, so that neither
      // replaces the trial gateway's binding nor counts in the trial.
      ...(atRest && { clientId: `${GATEWAY_ID}-at-rest`, control: { prefix: AT_REST_CONTROL_PREFIX } }),
    },
  }
}

/** The value the launchers set for MALLOC_MMAP_THRESHOLD_ (bytes). */
export const MALLOC_MMAP_THRESHOLD = 4_194_304

/**
 * The Node options the gateway's launchers put in NODE_OPTIONS (`npm run lab`, the README's start
 * command, the systemd unit): V8's old generation bounded at 512 MiB, as Node bounds it by itself
 * on a machine with 1 GiB. V8 lets old space grow between full collections by a factor it scales
 * with that bound: 1.4 there, 4.0 from 4 GiB up (this machine), which held tens of MiB of garbage
 * (docs/performance.md, "Old-space growth and the machine's memory").
 */
export const LAUNCHER_NODE_OPTIONS = '--max-old-space-size=512'

/**
 * The environment the gateway is started with, as its launchers set it (`npm run lab`, the
 * README's start command, the systemd unit): glibc's mmap threshold fixed at 4 MiB, so buffers
 * that large (a `$scrypt$` check's 16 MiB) go back to the system when freed instead of staying
 * in malloc's arenas, while a `$scrypt-pepper$` check's 1 MiB is reused (docs/performance.md,
 * "Memory after a burst"); and NODE_OPTIONS with LAUNCHER_NODE_OPTIONS. `EDGE_GATEWAY_BENCH_MALLOC=default`
 * measures glibc's own dynamic threshold instead, `EDGE_GATEWAY_BENCH_HEAP=default` V8's own bound
 * of the old generation (from the machine's memory).
 */
export function gatewayEnv(env = process.env) {
  return {
    ...env,
    ...(env.EDGE_GATEWAY_BENCH_HEAP !== 'default' && {
      NODE_OPTIONS: [env.NODE_OPTIONS, LAUNCHER_NODE_OPTIONS].filter(Boolean).join(' '),
    }),
    ...(env.EDGE_GATEWAY_BENCH_MALLOC !== 'default' && {
      MALLOC_MMAP_THRESHOLD_: env.MALLOC_MMAP_THRESHOLD_ ?? String(MALLOC_MMAP_THRESHOLD),
    }),
  }
}

/**
 * The Node options the installed command runs with, read from its `#!` line
 * (`#!/usr/bin/env -S node --max-semi-space-size=2`; `npm run lab` and the README's start command
 * pass the same, test/bundle.test.ts checks they agree): V8's young generation kept to 2 MiB
 * semi-spaces. By default V8 grows them to 16 MiB each under a burst of allocation (thousands of
 * connections opened and reset, a flood) and keeps them for a while after: tens of MiB of
 * resident memory that the gateway does not need (docs/performance.md, "Young generation").
 * `EDGE_GATEWAY_BENCH_SEMI_SPACE=default` measures V8's own sizing instead.
 */
export function gatewayNodeArgs(env = process.env) {
  if (env.EDGE_GATEWAY_BENCH_SEMI_SPACE === 'default') return []
  const text = readFileSync(MAIN, 'utf8')
  const shebang = /^#!\/usr\/bin\/env -S node((?: --\S+)*)\n/.exec(text)
  if (!shebang) throw new Error(`${MAIN} does not start with '#!/usr/bin/env -S node ...': rebuild`)
  return shebang[1].split(' ').filter(Boolean)
}

/**
 * `EDGE_GATEWAY_BENCH_NODE_ARGS` adds Node options for the gateway process only, to
 * profile it under a load, e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`.
 */
export function startGateway({ dir, configFile, cpus, logFile }) {
  const nodeArgs = [
    ...gatewayNodeArgs(),
    ...(process.env.EDGE_GATEWAY_BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean),
  ]
  return spawnServer(process.execPath, [...nodeArgs, MAIN, 'start', '--config', configFile], {
    cpus,
    cwd: dir,
    logFile,
    env: gatewayEnv(),
  })
}
