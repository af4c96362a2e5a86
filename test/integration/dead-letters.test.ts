import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { MqttClient } from 'mqtt'
import { afterEach, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { generateHpkeKeyPair } from '../../crypto/hpke.js'
import { runCli } from '../cli/run-cli.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connectDevice, publishOutcome, sleep } from './clients.js'
import { CLOUD_PREFIX, listLetters, PASSWORD_DEVICE, Stack, waitUntil } from './harness.js'

const COUNT = 5
const TOPIC = `devices/${PASSWORD_DEVICE.id}/dl/`
const NO_MAPPING = 'uplink_dead_letter_total{reason="no_mapping"}'

/** Rewrites `cloud.topics` (and, when given, `cloud.recipients`) of the stack's config file. */
async function setCloud(stack: Stack, cloud: Record<string, unknown>): Promise<void> {
  const config = parse(await readFile(stack.configFile, 'utf8')) as { cloud: Record<string, unknown> }
  config.cloud = { ...config.cloud, ...cloud }
  await writeFile(stack.configFile, stringify(config), { mode: 0o600 })
}

const device = (stack: Stack) =>
  connectDevice(stack.port('tcp'), {
    clientId: PASSWORD_DEVICE.id,
    username: PASSWORD_DEVICE.username,
    password: PASSWORD_DEVICE.password,
  })

/** `status` through the built CLI, once status.json shows what `ready` waits for (bounded). */
async function statusOnce(stack: Stack, ready: (json: Record<string, unknown>) => boolean): Promise<string> {
  const deadline = Date.now() + 10_000
  for (;;) {
    const json = await runCli(['status', '-c', stack.configFile, '--json'])
    expect(json.code, json.stderr).toBe(0)
    if (ready(JSON.parse(json.stdout) as Record<string, unknown>)) break
    if (Date.now() > deadline) throw new Error(`status.json never got there: ${json.stdout}`)
    await sleep(250)
  }
  const text = await runCli(['status', '-c', stack.configFile])
  expect(text.code, text.stderr).toBe(0)
  return text.stdout
}

const deadLetterDepth = (json: Record<string, unknown>) =>
  (json.bridge as { deadLetters?: { depth: number } }).deadLetters?.depth
const deadLetterBytes = (json: Record<string, unknown>) =>
  (json.bridge as { deadLetters?: { bytes: number } }).deadLetters?.bytes

describe('dead letters: a queued message the config no longer sends up is held aside, never sent raw', () => {
  let stack: Stack | undefined
  let sub: MosquittoSub | undefined
  let client: MqttClient | undefined
  let dir: string | undefined

  afterEach(async () => {
    await client?.endAsync().catch(() => undefined)
    await sub?.stop()
    await stack?.stop()
    if (dir) await removeDir(dir)
    stack = sub = client = dir = undefined
  })

  it('through a restart that removes the mapping: nothing reaches the cloud, all are dead letters shown by status; after the fix a retry delivers each once with its gw-seq', async () => {
    stack = await Stack.start({ persistence: true })
    await stack.waitLinkUp()
    await stack.cloud.stop()
    client = await device(stack)
    const payloads = Array.from({ length: COUNT }, (_, i) => `dead-letter-secret-${i}`)
    for (const [i, payload] of payloads.entries()) {
      expect(await publishOutcome(client, `${TOPIC}${i}`, payload)).toBe('acked')
    }
    await client.endAsync()
    client = undefined
    expect(stack.gateway.bridge.queue.size).toBe(COUNT)

    // Stop; the config now maps nothing these topics start with; start with the cloud up and watched.
    await stack.restartGateway(async () => {
      await setCloud(stack!, { topics: [{ local: 'other/', cloud: 'gateways/gw-test/other/' }] })
      await stack!.cloud.restart()
      sub = await MosquittoSub.start({ ...stack!.cloudClient(), qos: 1, topic: '#' })
    })
    await stack.waitLinkUp()
    await waitUntil(() => stack!.gateway.metrics.get(NO_MAPPING) === COUNT, 15_000, 'every message set aside')
    expect(stack.gateway.bridge.queue.size).toBe(0)
    const letters = await listLetters(stack)
    expect(letters.map((l) => [l.reason, l.state, l.device, l.topic, l.payloadBytes])).toEqual(
      payloads.map((p, i) => ['no_mapping', 'held', PASSWORD_DEVICE.id, `${TOPIC}${i}`, p.length]),
    )
    const seqs = letters.map((l) => l.seq)
    expect(new Set(seqs).size).toBe(COUNT)
    // Durable, in the state folder.
    expect((await stat(join(stack.dir, 'state', 'dead-letter', 'dead-letter.log'))).size).toBeGreaterThan(0)

    // Each is logged at warn with its gw-seq, device and LAN topic; no payload anywhere in the log.
    const warned = stack.logs.records.filter((r) => String(r.msg).startsWith('dead letter: gw-seq'))
    expect(warned.map((r) => [r.level, r.seq, r.device, r.topic, r.reason])).toEqual(
      letters.map((l) => [40, l.seq, PASSWORD_DEVICE.id, l.topic, 'no_mapping']),
    )
    const logText = JSON.stringify(stack.logs.records)
    for (const p of payloads) expect(logText).not.toContain(p)

    // status (text and JSON) shows them.
    const text = await statusOnce(stack, (json) => deadLetterDepth(json) === COUNT)
    const { bytes, quotaBytes } = stack.gateway.bridge.deadLetters.stats()
    expect(text.split('\n')).toContain(
      `dead letters ${COUNT} message(s) held aside, not sent: no_mapping ${COUNT}; ${bytes} of ${quotaBytes} bytes (edge-gateway deadletter list)`,
    )
    expect(text.split('\n')).toContain('forwarding   running')

    // Nothing reached the cloud: not on the raw LAN topic, not anywhere.
    await sleep(500)
    expect(sub!.messages).toEqual([])

    // Fix the config (a restart: cloud.topics is not reloadable), then retry them all.
    await stack.restartGateway(() =>
      setCloud(stack!, { topics: [{ local: 'devices/', cloud: CLOUD_PREFIX }] }),
    )
    await stack.waitLinkUp()
    expect(await listLetters(stack)).toHaveLength(COUNT)
    expect(sub!.messages).toEqual([])
    const retry = await runCli(['deadletter', 'retry', '--all', '-c', stack.configFile])
    expect(retry.code, retry.stderr).toBe(0)
    expect(retry.stdout).toBe(
      `retry of ${COUNT} dead letter(s) (gw-seq ${seqs.join(', ')}): taken by the running gateway; it sends them again with their gw-seq\n`,
    )
    await sub!.waitFor(COUNT, 15_000)
    await waitUntil(() => stack!.gateway.bridge.deadLetters.stats().depth === 0, 10_000, 'letters settled')
    await sleep(500)
    expect(sub!.messages.map((m) => [m.topic, m.payload])).toEqual(
      payloads.map((p, i) => [`${CLOUD_PREFIX}${PASSWORD_DEVICE.id}/dl/${i}`, p]),
    )
    expect(sub!.envelopes.map((e) => e?.seq)).toEqual(seqs)
    expect(await listLetters(stack)).toEqual([])
    // The space of the retried letters comes back after their depth reaches 0 (the segment is deleted in the background).
    const after = await statusOnce(
      stack,
      (json) => deadLetterDepth(json) === 0 && deadLetterBytes(json) === 0,
    )
    expect(after.split('\n').find((l) => l.startsWith('dead letters'))).toMatch(
      /^dead letters none; 0 of \d+ bytes$/,
    )
  })

  it('through a restart that drops sealFor: nothing leaves with less protection; restored, a retry delivers them sealed', async () => {
    dir = await makeTempDir('edge-gw-dl-hpke-')
    const recipient = await generateHpkeKeyPair()
    await writeFile(join(dir, 'analytics.pub'), `${recipient.publicKey.toString('hex')}\n`)
    const sealed = { local: 'devices/', cloud: CLOUD_PREFIX, sealFor: 'analytics' }
    stack = await Stack.start({
      persistence: true,
      cloud: {
        topics: [sealed],
        recipients: [{ name: 'analytics', publicKeyFile: join(dir, 'analytics.pub') }],
      },
    })
    await stack.waitLinkUp()
    await stack.cloud.stop()
    client = await device(stack)
    for (let i = 0; i < 3; i++)
      expect(await publishOutcome(client, `${TOPIC}${i}`, `sealed-${i}`)).toBe('acked')
    await client.endAsync()
    client = undefined

    await stack.restartGateway(async () => {
      await setCloud(stack!, { topics: [{ local: 'devices/', cloud: CLOUD_PREFIX }] })
      await stack!.cloud.restart()
      sub = await MosquittoSub.start({ ...stack!.cloudClient(), qos: 1, topic: '#' })
    })
    await stack.waitLinkUp()
    const changed = 'uplink_dead_letter_total{reason="protection_changed"}'
    await waitUntil(() => stack!.gateway.metrics.get(changed) === 3, 15_000, 'every message set aside')
    const letters = await listLetters(stack)
    expect(letters.map((l) => [l.reason, l.detail])).toEqual(
      Array(3).fill([
        'protection_changed',
        'accepted as HPKE-sealed; the mapping that covers it now gives plain (signed, not sealed)',
      ]),
    )
    await sleep(500)
    expect(sub!.messages).toEqual([])

    await stack.restartGateway(() => setCloud(stack!, { topics: [sealed] }))
    await stack.waitLinkUp()
    const retry = await runCli([
      'deadletter',
      'retry',
      ...letters.map((l) => String(l.seq)),
      '-c',
      stack.configFile,
    ])
    expect(retry.code, retry.stderr).toBe(0)
    await sub!.waitFor(3, 15_000)
    // HPKE-sealed (protection 1): the cloud broker never saw the plaintext.
    expect(sub!.envelopes.map((e) => [e?.seq, e?.protection])).toEqual(letters.map((l) => [l.seq, 1]))
    for (const raw of sub!.rawMessages) expect(raw.payload.toString('latin1')).not.toContain('sealed-')
  })
  it('deadletter list, drop and their refusals through the CLI, with the gateway stopped and running', async () => {
    stack = await Stack.start({ persistence: true })
    await stack.waitLinkUp()
    await stack.cloud.stop()
    client = await device(stack)
    for (let i = 0; i < 3; i++) expect(await publishOutcome(client, `${TOPIC}${i}`, `cli-${i}`)).toBe('acked')
    await client.endAsync()
    client = undefined
    await stack.restartGateway(async () => {
      await setCloud(stack!, { topics: [{ local: 'other/', cloud: 'gateways/gw-test/other/' }] })
      await stack!.cloud.restart()
    })
    await waitUntil(() => stack!.gateway.bridge.deadLetters.stats().depth === 3, 15_000, 'three dead letters')
    const seqs = (await listLetters(stack)).map((l) => l.seq)

    const list = await runCli(['deadletter', 'list', '-c', stack.configFile])
    expect(list.code, list.stderr).toBe(0)
    const lines = list.stdout.trimEnd().split('\n')
    expect(lines[0]).toMatch(/^gw-seq +state +reason +device +qos +bytes +received +topic +why$/)
    expect(lines.slice(1, 4).map((l) => l.split(/ {2,}/).slice(0, 6))).toEqual(
      seqs.map((seq) => [String(seq), 'held', 'no_mapping', PASSWORD_DEVICE.id, '1', '5']),
    )
    expect(lines[4]).toBe('3 dead letter(s): no_mapping 3')

    const unknown = await runCli(['deadletter', 'drop', '999999999', '-c', stack.configFile])
    expect([unknown.code, unknown.stderr]).toEqual([
      1,
      'edge-gateway: not a dead letter: gw-seq 999999999 (edge-gateway deadletter list)\n',
    ])
    const unnamed = await runCli(['deadletter', 'retry', '-c', stack.configFile])
    expect([unnamed.code, unnamed.stderr]).toEqual([
      2,
      'edge-gateway: name the dead letters to retry (gw-seq numbers, or --all)\n',
    ])

    // Stopped: the request waits, and the gateway applies it when it starts.
    await stack.restartGateway(async () => {
      const drop = await runCli(['deadletter', 'drop', String(seqs[0]), '-c', stack!.configFile])
      expect(drop.code, drop.stderr).toBe(0)
      expect(drop.stdout).toBe(
        `drop of 1 dead letter(s) (gw-seq ${seqs[0]}) requested; the gateway is not running: it applies the request when it starts\n`,
      )
      const waiting = await runCli(['deadletter', 'list', '-c', stack!.configFile])
      expect(waiting.stdout.trimEnd().split('\n').at(-1)).toBe(
        '3 dead letter(s): no_mapping 3; 1 request(s) waiting for the gateway',
      )
    })
    expect((await listLetters(stack)).map((l) => l.seq)).toEqual(seqs.slice(1))
    expect(
      stack.logs.records.filter((r) => String(r.msg).startsWith('dead letters dropped on operator request')),
    ).toEqual([expect.objectContaining({ level: 30, changed: [seqs[0]], unknown: [] })])

    // Running: the command waits until the gateway took it.
    const all = await runCli(['deadletter', 'drop', '--all', '-c', stack.configFile])
    expect(all.stdout).toBe(
      `drop of 2 dead letter(s) (gw-seq ${seqs.slice(1).join(', ')}): taken by the running gateway\n`,
    )
    expect(await listLetters(stack)).toEqual([])
    expect(stack.gateway.bridge.deadLetters.stats()).toMatchObject({ depth: 0, bytes: 0 })
  })
})
