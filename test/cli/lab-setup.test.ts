/**
 * `edge-gateway lab-setup` (the container lab's `setup` service): what it makes is a config the
 * gateway accepts as it is, secrets are 0600, and a second run keeps the lab it finds.
 */
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../config/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { runCli } from './run-cli.js'

describe('edge-gateway lab-setup', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-lab-setup-')
  })
  afterAll(async () => {
    if (dir) await removeDir(dir)
  })

  it('makes a lab the gateway accepts, with secrets 0600, and keeps it on a second run', async () => {
    const lab = join(dir, 'lab')
    const first = await runCli(['lab-setup', lab])
    expect(first.stdout).toBe(`lab-setup: made the lab in ${lab}\n`)
    const config = await loadConfig(join(lab, 'gateway.yaml'))
    expect(config.devices.map((d) => d.id).sort()).toEqual(['lab-hpke', 'lab-pass', 'lab-psk', 'lab-sealed'])
    expect(config.vpn?.peer.endpoint).toBe('cloud:51820')
    expect(config.cloud.host).toBe('10.78.0.2')
    for (const secret of [
      'keys/lab-psk.psk',
      'keys/gateway-wg.key',
      'keys/cloud-wg.key',
      'keys/consumer-hpke.key',
      'pki/client.key',
      'cloud.yaml',
    ]) {
      expect(((await stat(join(lab, secret))).mode & 0o777).toString(8), secret).toBe('600')
    }
    const before = await readFile(join(lab, 'gateway.yaml'), 'utf8')
    const second = await runCli(['lab-setup', lab])
    expect(second.stdout).toBe(`lab-setup: ${lab} has the lab already\n`)
    expect(await readFile(join(lab, 'gateway.yaml'), 'utf8')).toBe(before)
  })
})
