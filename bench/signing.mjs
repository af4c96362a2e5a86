/**
 * What signing and sealing cost per message, alone: the gateway's per-message
 * cloud work (bridge/envelope.ts signEnvelope, crypto/hpke.ts hpkeSeal) and
 * what a consumer pays to check it, beside the bare node:crypto operations.
 *
 *   npm run build && taskset -c 1 node bench/signing.mjs     # one core; bench/run.mjs does this
 *   node bench/signing.mjs --json --ms 500
 *
 * Each cell runs for `--ms` (default 1000) after a warm-up, 3 times, the runs
 * of all cells interleaved; the median is printed, as operations per second of
 * wall time and CPU µs per operation (the process's user + system time, so
 * work WebCrypto hands to libuv's thread pool is counted too). The inputs are
 * those of a 64-byte reading: the envelope a `closed-q1-64` message becomes.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { createHpkeOpener } from './lib/envelope.mjs'

const DIST = new URL('../dist/', import.meta.url)
const RUNS = 3
const CONCURRENT = 64

function parse(argv) {
  const options = { json: false, ms: 1000 }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--json') options.json = true
    else if (argv[i] === '--ms') options.ms = Number(argv[++i])
    else throw new Error(`Unknown option ${argv[i]} (use --json, --ms N)`)
  }
  if (!(options.ms > 0)) throw new Error('Expected --ms to be a positive number')
  return options
}

const cpuNow = () => {
  const { user, system } = process.cpuUsage()
  return user + system
}

/** Runs `op` (sync, or async with `concurrency` in flight) for `ms`; { perSec, cpuMicros per op }. */
async function measure(op, ms, concurrency) {
  let n = 0
  const cpu0 = cpuNow()
  const t0 = performance.now()
  const end = t0 + ms
  if (concurrency === 0) {
    while (performance.now() < end) {
      for (let i = 0; i < 32; i++) op(n++)
    }
  } else {
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (performance.now() < end) await op(n++)
      }),
    )
  }
  const seconds = (performance.now() - t0) / 1000
  return { perSec: n / seconds, cpuMicros: (cpuNow() - cpu0) / n }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]

export async function buildCells() {
  const { signEnvelope, signingKid, verifyEnvelope } = await import(new URL('bridge/envelope.js', DIST).href)
  const { generateHpkeKeyPair, hpkeOpen, hpkeSeal } = await import(new URL('crypto/hpke.js', DIST).href)
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const kid = signingKid(privateKey)
  const cloudTopic = 'gateways/bench/devices/pub-0/data'
  const topic = 'devices/pub-0/data'
  const reading = Buffer.alloc(64, 0x78)
  const envelope = (seq, body, protection) => ({
    kind: 1,
    gatewayId: 'edge-gateway',
    deviceId: 'pub-0',
    topic,
    seq,
    timestamp: Date.now(),
    protection,
    body,
  })
  const signed = signEnvelope(privateKey, kid, cloudTopic, envelope(1, reading, 0))
  // What the signature covers for this envelope: the Sig_structure is about this long.
  const message = Buffer.alloc(signed.length - 64 - 20, 0x5a)
  const signature = sign(null, message, privateKey)
  const resolve = () => ({ key: publicKey, gatewayId: 'edge-gateway' })
  const pair = await generateHpkeKeyPair()
  const recipientKid = Buffer.from('bench-cloud')
  const recipient = { kid: recipientKid, publicKey: pair.publicKey }
  const openRecipient = { kid: recipientKid, privateKey: pair.privateKey }
  const sealed = await hpkeSeal(recipient, reading, topic)
  const fastOpen = createHpkeOpener(pair.privateKey, recipientKid)
  const { HpkeSealer } = await import(new URL('crypto/hpke-seal-sync.js', DIST).href)
  const gatewaySealer = new HpkeSealer(recipient)
  if (!fastOpen(gatewaySealer.seal(reading, topic), Buffer.from(topic))?.equals(reading))
    throw new Error('the bench opener did not open HpkeSealer')
  const topicBytes = Buffer.from(topic)
  // Cross-checks: each implementation opens what the other sealed.
  const crossA = await hpkeOpen(openRecipient, gatewaySealer.seal(reading, topic), topic, 4096)
  if (!crossA.plaintext?.equals(reading)) throw new Error('crypto/hpke.ts did not open the node:crypto seal')
  if (!fastOpen(sealed, topicBytes)?.equals(reading))
    throw new Error('node:crypto did not open crypto/hpke.ts')

  return [
    { name: 'Ed25519 sign, node:crypto', side: 'gateway', op: () => sign(null, message, privateKey) },
    {
      name: 'signEnvelope (CBOR + Ed25519), bridge/envelope.ts',
      side: 'gateway',
      op: (i) => signEnvelope(privateKey, kid, cloudTopic, envelope(i, reading, 0)),
    },
    {
      name: 'hpkeSeal, crypto/hpke.ts, one at a time',
      side: 'gateway',
      concurrency: 1,
      op: () => hpkeSeal(recipient, reading, topic),
    },
    {
      name: `hpkeSeal, crypto/hpke.ts, ${CONCURRENT} at once`,
      side: 'gateway',
      concurrency: CONCURRENT,
      op: () => hpkeSeal(recipient, reading, topic),
    },
    {
      name: 'HpkeSealer.seal (node:crypto), crypto/hpke-seal-sync.ts, what the gateway uses',
      side: 'gateway',
      op: () => gatewaySealer.seal(reading, topic),
    },
    {
      name: 'Ed25519 verify, node:crypto',
      side: 'consumer',
      op: () => verify(null, message, publicKey, signature),
    },
    {
      name: 'verifyEnvelope (CBOR + Ed25519), bridge/envelope.ts',
      side: 'consumer',
      op: () => verifyEnvelope(resolve, cloudTopic, signed),
    },
    {
      name: 'hpkeOpen, crypto/hpke.ts, one at a time',
      side: 'consumer',
      concurrency: 1,
      op: () => hpkeOpen(openRecipient, sealed, topic, 4096),
    },
    {
      name: 'HPKE open, same suite on node:crypto (bench subscriber)',
      side: 'consumer',
      op: () => fastOpen(sealed, topicBytes),
    },
  ]
}

export async function runCells(ms) {
  const cells = await buildCells()
  const runs = cells.map(() => [])
  for (const cell of cells) await measure(cell.op, Math.min(200, ms), cell.concurrency ?? 0)
  for (let r = 0; r < RUNS; r++) {
    for (const [i, cell] of cells.entries()) runs[i].push(await measure(cell.op, ms, cell.concurrency ?? 0))
  }
  return cells.map((cell, i) => ({
    name: cell.name,
    side: cell.side,
    perSec: Math.round(median(runs[i].map((x) => x.perSec))),
    cpuMicrosPerOp: Math.round(median(runs[i].map((x) => x.cpuMicros)) * 10) / 10,
  }))
}

export function formatCells(cells) {
  const header = ['operation (64-byte reading)', 'side', 'ops/s', 'CPU µs/op']
  const lines = cells.map((c) => [c.name, c.side, String(c.perSec), String(c.cpuMicrosPerOp)])
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)))
  const fmt = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`
  return [fmt(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...lines.map(fmt)].join('\n')
}

async function main() {
  const options = parse(process.argv.slice(2))
  const cells = await runCells(options.ms)
  process.stdout.write(options.json ? `${JSON.stringify(cells)}\n` : `${formatCells(cells)}\n`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err) => {
    process.stderr.write(`signing bench failed: ${err instanceof Error ? err.message : String(err)}\n`)
    process.exit(1)
  })
}
