import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CommandNonces, MAX_REMEMBERED_NONCES } from '../../bridge/command-nonces.js'
import { Downlink, type DownlinkSink } from '../../bridge/downlink.js'
import { operatorKid, signCommand } from '../../bridge/envelope.js'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'
import { SecurityEvents } from '../../core/security-events.js'
import { prefilledNonces } from '../helpers/command-nonces.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { LogCapture } from '../integration/harness.js'

/**
 * docs/cloud-envelope.md: the nonces of accepted downlink commands are remembered, at most 100,000;
 * past that a command is refused as `too_many_nonces` (and its nonce is not remembered).
 */

let dir: string
beforeAll(async () => {
  dir = await makeTempDir('edge-gw-downlink-nonces-')
})
afterAll(async () => {
  await removeDir(dir)
})

const NOW = 1_800_000_000_000

describe('command nonces: at most 100,000 remembered', () => {
  it('the 100,000th is remembered, the next is refused as full until older ones expire', async () => {
    expect(MAX_REMEMBERED_NONCES).toBe(100_000)
    const nonces = await CommandNonces.open(await prefilledNonces(dir, 'cap', 99_999, NOW + 60_000), {
      now: () => NOW,
    })
    expect(nonces.size).toBe(99_999)
    const last = randomBytes(16)
    expect(await nonces.remember(last, NOW + 300_000, NOW)).toBe('fresh')
    const refused = randomBytes(16)
    expect(await nonces.remember(refused, NOW + 300_000, NOW)).toBe('full')
    expect(await nonces.remember(last, NOW + 300_000, NOW)).toBe('replayed')
    expect(nonces.size).toBe(100_000)
    // The 99,999 expire: there is room again, and the refused nonce was never remembered.
    expect(await nonces.remember(refused, NOW + 300_000, NOW + 60_001)).toBe('fresh')
    expect(nonces.size).toBe(2)
  })
})

describe('Downlink: a command past the nonce cap', () => {
  it('is refused as too_many_nonces (counted, a command_rejected event, not delivered); delivered once old nonces expire', async () => {
    const operator = generateKeyPairSync('ed25519')
    const kid = operatorKid(operator.publicKey)
    const logs = new LogCapture()
    const logger = createLogger({ level: 'info', destination: logs })
    const metrics = new Metrics()
    const delivered: Array<[string, string, string]> = []
    const sink: DownlinkSink = {
      deliverCommand: async (deviceId, topic, payload) => {
        delivered.push([deviceId, topic, payload.toString()])
        return 'delivered'
      },
    }
    const downlink = new Downlink(
      {
        topics: [{ cloud: 'cmd/gw-1/', local: 'commands/' }],
        operators: [{ name: 'ops', publicKeyFile: 'unused.pub' }],
        maxAgeSeconds: 300,
      },
      'gw-1',
      [{ name: 'ops', kid, key: operator.publicKey }],
      await CommandNonces.open(await prefilledNonces(dir, 'downlink', 100_000, NOW + 60_000), {
        now: () => NOW,
      }),
      sink,
      new SecurityEvents(logger, metrics),
      metrics,
      logger,
    )
    const topic = 'cmd/gw-1/dev-1/open'
    const command = signCommand(operator.privateKey, kid, topic, {
      gatewayId: 'gw-1',
      deviceId: 'dev-1',
      nonce: randomBytes(16),
      timestamp: NOW,
      body: Buffer.from('open'),
    })

    expect(await downlink.handle(topic, command, NOW)).toBe('too_many_nonces')
    expect(delivered).toEqual([])
    expect(metrics.get('downlink_refused_total{reason="too_many_nonces"}')).toBe(1)
    expect(logs.events('command_rejected')).toEqual([
      expect.objectContaining({ reason: 'too_many_nonces', topic, device: 'dev-1', operator: 'ops' }),
    ])

    // A minute later the 100,000 have expired; the same command is still fresh, and was never remembered.
    expect(await downlink.handle(topic, command, NOW + 60_001)).toBe('delivered')
    expect(delivered).toEqual([['dev-1', 'commands/dev-1/open', 'open']])
    expect(await downlink.handle(topic, command, NOW + 60_002)).toBe('replayed')
  })
})
