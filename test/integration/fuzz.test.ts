import { join } from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { corpus, runFuzz } from '../../bench/lib/mqtt-fuzz.mjs'
import { deriveContext } from '../../crypto/context.js'
import { seal } from '../../crypto/encrypt0.js'
import { Alg } from '../../crypto/types.js'
import { hashPassword } from '../../gateway/index.js'
import { writeSecretFile } from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice } from './clients.js'
import { PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const heapUsedMb = () => Math.round(process.memoryUsage().heapUsed / 2 ** 20)
/** RSS after two full collections, in MiB (glibc keeps what scrypt's threads freed: RSS is not heap). */
function settledRssMb(): number {
  gc()
  gc()
  return Math.round(process.memoryUsage.rss() / 2 ** 20)
}

const SEED = 0x13
const CASES = 2000
/** 2,000 cases take 10-20 s on an idle 2-core machine; 45 s was not enough with other suites and benchmarks running. */
const BUDGET_MS = 100_000
const SECRET = Buffer.from('8899aabbccddeeff0011223344556677', 'hex')
const PRE_SECRET = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
/** Its CONNECTs are the ones mutated; FUZZ logs in cleanly before each case after authentication. */
const PRE = {
  clientId: 'fuzz-pre',
  username: 'fuzz-pre',
  password: 'pre password',
  topic: 'devices/fuzz-pre',
  sealedTopic: 'devices/fuzz-pre/sealed/kwh',
}
const FUZZ = {
  clientId: 'fuzz-dev',
  username: 'fuzz-dev',
  password: 'fuzz password',
  topic: 'devices/fuzz-dev',
  sealedTopic: 'devices/fuzz-dev/sealed/kwh',
}

/**
 * Seeded fuzzing of the whole gateway (LAN broker, protocol guard, hooks,
 * payload opener, queue and bridge to a real mosquitto): mutated packets from
 * mqtt-packet's generator, half before and half after a CONNECT that
 * authenticated, sealed payloads on a protected topic among them. A fixed
 * number of cases; the budget only stops a run that would overrun the test.
 */
describe('fuzz: mutated MQTT packets before and after authentication', () => {
  let stack: Stack
  let dir: string
  const uncaught: unknown[] = []
  const onUncaught = (err: unknown) => uncaught.push(err)

  beforeAll(async () => {
    process.on('uncaughtException', onUncaught)
    process.on('unhandledRejection', onUncaught)
    dir = await makeTempDir('edge-gw-fuzz-')
    await writeSecretFile(join(dir, 'fuzz.key'), SECRET.toString('hex'))
    await writeSecretFile(join(dir, 'pre.key'), PRE_SECRET.toString('hex'))
    // The cheapest scrypt the gateway accepts: hundreds of logins, not a password test.
    const cheap = { ln: 10, r: 8, p: 1 }
    stack = await Stack.start({
      devices: [
        {
          id: 'fuzz-dev',
          username: FUZZ.username,
          passwordHash: await hashPassword(FUZZ.password, cheap),
          clientIds: ['fuzz-dev*'],
          payloadKey: { kid: '0f', secretFile: join(dir, 'fuzz.key') },
        },
        {
          id: 'fuzz-pre',
          username: PRE.username,
          passwordHash: await hashPassword(PRE.password, cheap),
          clientIds: ['fuzz-pre*'],
          payloadKey: { kid: '0e', secretFile: join(dir, 'pre.key') },
        },
      ],
      protection: [{ topic: 'devices/+/sealed/#', mode: 'sealed' }],
    })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    process.off('uncaughtException', onUncaught)
    process.off('unhandledRejection', onUncaught)
    await stack?.stop()
    await removeDir(dir)
  })

  it(`${CASES} seeded cases: no crash, every connection released, a good device served at the end`, async () => {
    const ctx = deriveContext({ kid: Buffer.from([0x0f]), masterSecret: SECRET, aead: Alg.AES_CCM_16_64_128 })
    const preCtx = deriveContext({
      kid: Buffer.from([0x0e]),
      masterSecret: PRE_SECRET,
      aead: Alg.AES_CCM_16_64_128,
    })
    let seq = 0
    const sealed = (topic: string) =>
      seal(
        topic.startsWith(PRE.topic) ? preCtx : ctx,
        'device-to-gateway',
        ++seq,
        Buffer.from('kwh=1'),
        topic,
      )
    const base = corpus(FUZZ, sealed, PRE)
    const started = Date.now()
    const rssBefore = settledRssMb()
    const heapBefore = heapUsedMb()
    const result = await runFuzz({
      port: stack.port('tcp'),
      seed: SEED,
      cases: CASES,
      concurrency: 4,
      deadline: started + BUDGET_MS,
      base,
      beforeAddress: '127.0.0.2',
    })
    const snapshot = stack.gateway.metrics.snapshot()
    const refused = Object.entries(snapshot).filter(
      ([k, v]) => k.startsWith('lan_protocol_errors_total{') && v > 0,
    )
    console.log(
      `fuzz seed ${SEED}: ${result.sent} cases (${result.before} before, ${result.after} after authentication) in ${
        Date.now() - started
      } ms; ${result.closedByGateway} closed by the gateway; test process (gateway in it) RSS after GC ${rssBefore} -> ${settledRssMb()} MB, heap used ${heapBefore} -> ${heapUsedMb()} MB\n  guard: ${refused.map(([k, v]) => `${k.slice(26, -1)} ${v}`).join(', ')}`,
    )

    expect(result.sent).toBe(CASES)
    expect(result.authFailed).toBe(0)
    expect(result.before).toBeGreaterThan(CASES / 3)
    expect(result.after).toBeGreaterThan(CASES / 3)
    // The mutations reach the guard's refusals and get past it too.
    expect(refused.length).toBeGreaterThan(8)
    expect(result.closedByGateway).toBeLessThan(result.sent)
    expect(uncaught).toEqual([])

    // Every connection the fuzzer opened is released.
    let open = -1
    const deadline = Date.now() + 10_000
    while (open !== 0 && Date.now() < deadline) {
      const counts = await Promise.all(stack.gateway.lan.listeners.map((l) => l.connections()))
      open = counts.reduce((a, b) => a + b, 0)
      if (open !== 0) await new Promise((r) => setTimeout(r, 50))
    }
    expect(open).toBe(0)

    // A good device is served end to end: acknowledged, and acknowledged by the cloud.
    const delivered = () => stack.gateway.metrics.get('uplink_delivered_total')
    await waitUntil(() => stack.gateway.bridge.status().queue.depth === 0, 10_000, 'the queue drained')
    const before = delivered()
    const client = await connectDevice(stack.port('tcp'), {
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      clientId: 'pass-dev-after-fuzz',
    })
    await client.publishAsync('devices/pass-dev/after-fuzz', 'still here', { qos: 1 })
    await client.endAsync()
    await waitUntil(() => delivered() === before + 1, 10_000, 'the cloud acknowledged the good message')
    expect(stack.logs.records.filter((r) => (r.level as number) >= 50)).toEqual([])
  }, 150_000)
})
