import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { writeSecretFile } from '../../pki/index.js'
import { MosquittoSub } from '../helpers/mosquitto-sub.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { CLOUD_PREFIX, PSK_DEVICE, Stack } from '../integration/harness.js'
import { runCli } from './run-cli.js'

describe('edge-gateway device simulate', () => {
  let dir: string
  let stack: Stack
  let sub: MosquittoSub

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-sim-')
    await writeSecretFile(join(dir, 'sim.key'), '00112233445566778899aabbccddeeff')
    stack = await Stack.start({
      devices: [
        { id: 'sim-1', username: 'sim-1', payloadKey: { kid: '51', secretFile: join(dir, 'sim.key') } },
      ],
      protection: [
        { topic: 'devices/+/sealed/#', mode: 'sealed' },
        { topic: 'devices/+/mac/#', mode: 'mac' },
      ],
    })
    sub = await MosquittoSub.start({ ...stack.cloudClient(), topic: `${CLOUD_PREFIX}#`, qos: 1 })
    await stack.waitLinkUp()
  })

  afterAll(async () => {
    await sub?.stop()
    await stack?.stop()
    await removeDir(dir)
  })

  const simulate = (mode: string, devices: string, port: number, topic: string) =>
    runCli([
      'device',
      'simulate',
      '-c',
      stack.configFile,
      '--mode',
      mode,
      '--devices',
      devices,
      '--port',
      String(port),
      '--messages',
      '3',
      '--interval',
      '10',
      '--topic',
      topic,
      '--state-dir',
      join(dir, 'sim-state'),
    ])

  it.each([
    ['sealed', 'devices/%d/sealed/t'],
    ['mac', 'devices/%d/mac/t'],
    ['token', 'devices/%d/plain/t'],
  ])('%s mode: every reading acknowledged and delivered opened to the cloud', async (mode, topic) => {
    const before = sub.messages.length
    const result = await simulate(mode, 'sim-1', stack.port('tcp'), topic)
    expect(result.stdout).toBe('sim-1: sent 3, acknowledged 3\n')
    expect(result.code).toBe(0)
    await sub.waitFor(before + 3)
    const got = sub.messages.slice(before)
    expect(got.map((m) => m.topic)).toEqual(
      Array(3).fill(`${CLOUD_PREFIX}${topic.replace('devices/%d/', 'sim-1/')}`),
    )
    expect(got.map((m) => (JSON.parse(m.payload) as { n: number }).n)).toEqual([1, 2, 3])
  })

  it('psk mode over the TLS-PSK listener', async () => {
    const result = await simulate('psk', PSK_DEVICE.id, stack.port('tls-psk'), 'devices/%d/t')
    expect(result.stdout).toBe(`${PSK_DEVICE.id}: sent 3, acknowledged 3\n`)
  })
})
