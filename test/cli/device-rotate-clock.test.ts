import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse, stringify } from 'yaml'
import { writeSecretFile } from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { absentCloud, runCli } from './run-cli.js'

/**
 * `device rotate` on a Pi whose clock is behind (after a power cut, before NTP): the overlap counts
 * from the latest time the gateway saw (`<stateDir>/clock`), not from the clock, whose correction
 * would end the overlap early; and the command says so.
 */
describe('edge-gateway device rotate with the clock behind the saved time', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-rotate-clock-')
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('counts the overlap from the saved time, and warns', async () => {
    await writeSecretFile(join(dir, 'keys', 'dev.psk'), `${'ab'.repeat(16)}\n`)
    const configFile = join(dir, 'gateway.yaml')
    await writeFile(
      configFile,
      stringify({
        gateway: { id: 'gw-rotate-clock' },
        lan: { listeners: [{ type: 'tls-psk', host: '127.0.0.1', port: 0 }] },
        devices: [{ id: 'dev', psk: { identity: 'dev', keyFile: join(dir, 'keys', 'dev.psk') } }],
        cloud: await absentCloud(dir),
      }),
      { mode: 0o600 },
    )
    const saved = Date.now() + 2 * 86_400_000
    await mkdir(join(dir, 'state'), { recursive: true })
    await writeFile(join(dir, 'state', 'clock'), `${saved}\n`, { mode: 0o600 })

    const rotated = await runCli(['device', 'rotate', 'dev', '-c', configFile, '--overlap-hours', '1'])
    expect(rotated, rotated.stderr).toMatchObject({ code: 0 })
    expect(rotated.stderr).toMatch(
      /^warning: the system clock is 28\d\d min behind the time the gateway last saw \(\S+\); the overlap counts from that time$/m,
    )
    const until = Date.parse(
      (
        parse(await readFile(configFile, 'utf8')) as {
          devices: Array<{ psk: { previous: { until: string } } }>
        }
      ).devices[0]!.psk.previous.until,
    )
    expect(until).toBeGreaterThanOrEqual(saved + 3_600_000)
    expect(until).toBeLessThan(saved + 3_600_000 + 60_000)
  })
})
