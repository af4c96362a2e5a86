import { join } from 'node:path'
import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type LabPki, mintLabPki } from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { PASSWORD_DEVICE, Stack } from './harness.js'

describe('a gateway certificate not signed by the cloud CA', () => {
  let stack: Stack
  let otherDir: string
  let otherPki: LabPki

  beforeAll(async () => {
    otherDir = await makeTempDir('edge-gw-other-ca-')
    otherPki = await mintLabPki(join(otherDir, 'pki'))
    stack = await Stack.start({ gatewayPki: otherPki })
  })

  afterAll(async () => {
    await stack?.stop()
    await removeDir(otherDir)
  })

  it('is refused by the cloud; the gateway names the cause and retries with capped backoff', async () => {
    const warning = await stack.logs.waitFor(
      (r) =>
        r.module === 'bridge' &&
        typeof r.msg === 'string' &&
        r.msg.includes("refused the gateway's client certificate"),
    )
    expect(warning.level).toBe(40)
    expect(warning.cloud).toBe(`127.0.0.1:${stack.cloud.port}`)
    // The refusal is on the cloud side too: mosquitto logs the failed handshake.
    expect(stack.cloud.logTail(50)).toMatch(/OpenSSL Error|certificate verify failed|unknown ca/i)

    // Six retries: each delay is jittered between the initial delay and the cap (100..1000 ms in this config).
    const retries = await waitForRetries(stack, 6)
    for (const r of retries) {
      expect(r.retryInMs).toBeGreaterThanOrEqual(100)
      expect(r.retryInMs).toBeLessThanOrEqual(1000)
    }
    // Each failed attempt is one line, cause and retry together: no second line per failure.
    const warnings = stack.logs.records.filter((r) => r.module === 'bridge' && r.level === 40)
    expect(warnings.filter((r) => typeof r.retryInMs !== 'number')).toEqual([])
    expect(stack.logs.records.filter((r) => r.msg === 'cloud link: retrying')).toEqual([])
    expect(warnings[0]).toMatchObject({ phase: 'set-up', attempt: 1 })
    expect(stack.gateway.bridge.status().link.status).not.toBe('connected')
    expect(stack.gateway.metrics.get('cloud_connect_attempts_total')).toBeGreaterThanOrEqual(6)
  })

  it('while the LAN side keeps serving devices, holding their messages', async () => {
    const device = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })
    const depth = stack.gateway.bridge.status().queue.depth
    let acknowledged = false
    // mqtt.js calls back for a QoS 1 publish only when the PUBACK arrived.
    device.publish(
      `devices/${PASSWORD_DEVICE.id}/telemetry`,
      'held while the cloud refuses us',
      { qos: 1 },
      (err) => {
        acknowledged = !err
      },
    )
    await new Promise<void>((resolve) => device.once('packetreceive', (p) => p.cmd === 'puback' && resolve()))
    expect(acknowledged).toBe(true)
    await device.endAsync()
    expect(stack.gateway.bridge.status().queue.depth).toBe(depth + 1)
  })
})

async function waitForRetries(stack: Stack, count: number): Promise<Array<{ retryInMs: number }>> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const retries = stack.logs.records.filter((r) => typeof r.retryInMs === 'number') as Array<{
      retryInMs: number
    }>
    if (retries.length >= count) return retries
    if (Date.now() > deadline) throw new Error(`only ${retries.length} retries within 20 s`)
    await new Promise((r) => setTimeout(r, 50))
  }
}
