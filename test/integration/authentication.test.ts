import mqtt from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mosquittoPub } from '../helpers/mosquitto-clients.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { connackCode as connackAt } from './clients.js'
import { CLOUD_PREFIX, PASSWORD_DEVICE, PSK_DEVICE, Stack } from './harness.js'

describe('authentication fails closed, and every refusal is a security event', () => {
  let stack: Stack
  let sub: MosquittoSub

  beforeAll(async () => {
    stack = await Stack.start()
    sub = await MosquittoSub.start({ ...stack.cloudClient(), topic: `${CLOUD_PREFIX}#`, qos: 1 })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    await sub?.stop()
    await stack?.stop()
  })

  const connackCode = ({ port, ...options }: mqtt.IClientOptions & { port: number }) =>
    connackAt(port, options)

  const pskPub = (keyHex: string, identity: string, clientId: string, message: string) =>
    mosquittoPub({
      host: '127.0.0.1',
      port: stack.port('tls-psk'),
      psk: { identity, keyHex },
      clientId,
      topic: `devices/${PSK_DEVICE.id}/telemetry`,
      message,
      qos: 1,
    })

  it('a wrong PSK fails the TLS handshake, logged with the device identity', async () => {
    const result = await pskPub('00'.repeat(16), PSK_DEVICE.identity, PSK_DEVICE.id, 'wrong key')
    expect(result.code).not.toBe(0)
    const event = await stack.logs.waitFor((r) => r.event === 'tls_handshake_failed')
    expect(event).toMatchObject({
      security: true,
      device: PSK_DEVICE.id,
      pskIdentity: PSK_DEVICE.identity,
      listener: 'psk',
    })
    expect(JSON.stringify(stack.logs.records)).not.toContain(PSK_DEVICE.keyHex)
  })

  it('an unknown PSK identity fails the TLS handshake, logged with the claimed identity', async () => {
    const result = await pskPub(PSK_DEVICE.keyHex, 'intruder', 'intruder', 'unknown identity')
    expect(result.code).not.toBe(0)
    const event = await stack.logs.waitFor((r) => r.event === 'psk_unknown_identity')
    expect(event).toMatchObject({ security: true, pskIdentity: 'intruder', listener: 'psk' })
  })

  it('a wrong password gets CONNACK 4', async () => {
    const code = await connackCode({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: 'Tr0ub4dor&3',
    })
    expect(code).toBe(4)
    const event = await stack.logs.waitFor((r) => r.event === 'auth_bad_password')
    expect(event).toMatchObject({
      device: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      returnCode: 4,
    })
    expect(JSON.stringify(stack.logs.records)).not.toContain('Tr0ub4dor')
  })

  it('an unknown username gets CONNACK 4, and no credentials at all get CONNACK 5', async () => {
    const unknown = await connackCode({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: 'who',
      username: 'nobody',
      password: 'x',
    })
    expect(unknown).toBe(4)
    await stack.logs.waitFor((r) => r.event === 'auth_unknown_user' && r.username === 'nobody')
    const anonymous = await connackCode({ host: '127.0.0.1', port: stack.port('tcp'), clientId: 'anon' })
    expect(anonymous).toBe(5)
    await stack.logs.waitFor((r) => r.event === 'auth_missing_credentials' && r.clientId === 'anon')
  })

  it('a client id the device may not use gets CONNACK 2, over password and over PSK', async () => {
    const code = await connackCode({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: 'someone-else',
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
    })
    expect(code).toBe(2)
    const event = await stack.logs.waitFor(
      (r) => r.event === 'client_id_refused' && r.clientId === 'someone-else',
    )
    expect(event).toMatchObject({ device: PASSWORD_DEVICE.id, returnCode: 2 })

    const psk = await pskPub(PSK_DEVICE.keyHex, PSK_DEVICE.identity, 'not-mine', 'bad client id')
    expect(psk.code).not.toBe(0)
    expect(psk.stderr).toMatch(/identifier rejected/i)
    await stack.logs.waitFor((r) => r.event === 'client_id_refused' && r.clientId === 'not-mine')
  })

  it('the PSK identity of one device with the username of another is refused with CONNACK 5', async () => {
    const result = await mosquittoPub({
      host: '127.0.0.1',
      port: stack.port('tls-psk'),
      psk: { identity: PSK_DEVICE.identity, keyHex: PSK_DEVICE.keyHex },
      clientId: PSK_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      topic: `devices/${PSK_DEVICE.id}/telemetry`,
      message: 'mixed identity',
      qos: 1,
    })
    expect(result.code).not.toBe(0)
    expect(result.stderr).toMatch(/not authori[sz]ed/i)
    const event = await stack.logs.waitFor((r) => r.event === 'auth_identity_mismatch')
    expect(event).toMatchObject({ device: PSK_DEVICE.id, username: PASSWORD_DEVICE.username, returnCode: 5 })
  })

  it('after all the refusals the broker still serves both devices, and nothing refused reached the cloud', async () => {
    const ok = await pskPub(PSK_DEVICE.keyHex, PSK_DEVICE.identity, PSK_DEVICE.id, 'still served (psk)')
    expect(ok.code).toBe(0)
    const device = await mqtt.connectAsync({
      host: '127.0.0.1',
      port: stack.port('tcp'),
      clientId: PASSWORD_DEVICE.id,
      username: PASSWORD_DEVICE.username,
      password: PASSWORD_DEVICE.password,
      reconnectPeriod: 0,
    })
    await device.publishAsync(`devices/${PASSWORD_DEVICE.id}/telemetry`, 'still served (password)', {
      qos: 1,
    })
    await device.endAsync()
    await sub.waitFor(2, 10_000)
    expect(sub.messages.map((m) => m.payload).sort()).toEqual([
      'still served (password)',
      'still served (psk)',
    ])
    const counted = stack.gateway.metrics.snapshot()
    for (const event of [
      'tls_handshake_failed',
      'psk_unknown_identity',
      'auth_bad_password',
      'auth_unknown_user',
      'auth_missing_credentials',
      'client_id_refused',
      'auth_identity_mismatch',
    ]) {
      expect(counted[`security_events_total{event="${event}"}`], event).toBeGreaterThanOrEqual(1)
    }
  })
})
