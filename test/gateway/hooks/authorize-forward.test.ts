import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { AedesPublishPacket, Client } from 'aedes'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../../core/logger.js'
import { Metrics } from '../../../core/metrics.js'
import { SecurityEvents } from '../../../core/security-events.js'
import { deriveContext } from '../../../crypto/context.js'
import { Alg } from '../../../crypto/types.js'
import { AccessControl } from '../../../gateway/access-control.js'
import { principalFor, setSession } from '../../../gateway/connection-context.js'
import { createAuthorizeForward } from '../../../gateway/hooks/authorize-forward.js'
import { DEFAULT_POLICY } from '../../../gateway/load-access.js'
import { GatewaySequence } from '../../../gateway/protection/gateway-sequence.js'
import { ProtectionRequirements } from '../../../gateway/protection/requirements.js'
import type { ProtectionRuntime } from '../../../gateway/protection/runtime.js'
import { DeviceRegistry } from '../../../gateway/registry.js'
import { compilePolicy } from '../../../policies/engine.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

let dir: string

beforeAll(async () => {
  dir = await makeTempDir('edge-gw-forward-')
})

afterAll(async () => {
  await removeDir(dir)
})

describe('authorizeForward on a sealed topic', () => {
  it('withholds (and counts) a delivery when no sequence number is durably reserved, without throwing', async () => {
    const payload = {
      kid: Buffer.from([0x21]),
      context: deriveContext({
        masterSecret: Buffer.alloc(16, 7),
        kid: Buffer.from([0x21]),
        aead: Alg.AES_CCM_16_64_128,
      }),
    }
    const registry = new DeviceRegistry([{ id: 'dev', username: 'dev', payload }])
    const access = new AccessControl(
      { registry, engine: compilePolicy(DEFAULT_POLICY) },
      { maxFailures: 5, windowSeconds: 300, lockSeconds: 300, maxEntries: 100 },
    )
    const metrics = new Metrics()
    const file = join(dir, 'gateway-sequence')
    const sequence = await GatewaySequence.open(file, { block: 2 })
    const forward = createAuthorizeForward({
      access,
      metrics,
      security: new SecurityEvents(createLogger({ level: 'silent' }), metrics),
      protection: {
        requirements: new ProtectionRequirements([{ topic: 'devices/+/cmd', mode: 'sealed' }]),
        sequence,
        lastKid: new Map<string, string>(),
      } as unknown as ProtectionRuntime,
    })
    const client = { id: 'dev' } as Client
    const device = registry.byDeviceId('dev')!
    setSession(client, {
      device,
      transport: { listener: 'tcp', remoteAddress: '127.0.0.1' },
      principal: principalFor(device, 'dev', 'dev'),
    })
    const packet = {
      cmd: 'publish',
      topic: 'devices/dev/cmd',
      payload: Buffer.from('on'),
      qos: 1,
      retain: false,
      dup: false,
    } as AedesPublishPacket
    // Every further reservation fails: the temp file's path is a directory.
    await mkdir(`${file}.tmp`)
    const outcomes = [forward(client, packet), forward(client, packet), forward(client, packet)]
    await sequence.settled()
    expect(outcomes.map((o) => (o ? Buffer.from(o.payload)[0] : null))).toEqual([0x83, 0x83, null])
    expect(metrics.get('downlink_withheld_total{reason="sequence_unavailable"}')).toBe(1)
  })
})
