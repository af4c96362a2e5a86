import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { writeSecretFile } from '../../pki/index.js'
import { freePort } from '../helpers/ports.js'
import { hasExited, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { absentCloud, runCli, type StartedGateway, startGatewayCli } from './run-cli.js'

/**
 * A second `edge-gateway start` on the state folder of a running gateway (run by hand while the
 * service runs) is refused before it opens anything: the queue, the nonce journals and the tunnel
 * records of the running one stay its own.
 */
describe('edge-gateway start on a state folder in use', () => {
  let dir: string
  let configFile: string
  let running: StartedGateway | undefined

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-state-in-use-')
    await writeSecretFile(join(dir, 'dev.psk'), `${'ab'.repeat(16)}\n`)
    configFile = join(dir, 'gateway.yaml')
    const config = {
      gateway: { id: 'gw-lock', stateDir: join(dir, 'state') },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: await freePort() }] },
      devices: [{ id: 'dev', psk: { identity: 'dev', keyFile: 'dev.psk' } }],
      cloud: await absentCloud(dir),
    }
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    running = await startGatewayCli(configFile)
  })

  afterAll(async () => {
    if (running) await terminate(running.child)
    await removeDir(dir)
  })

  it('refuses it with one line naming the running gateway, and the running one goes on', async () => {
    const pid = running!.child.pid!
    const lock = await readFile(join(dir, 'state', 'gateway.lock'), 'utf8')
    expect(lock.split(' ')[0]).toBe(String(pid))
    const second = await runCli(['start', '--config', configFile])
    expect(second.code).toBe(1)
    expect(second.stderr).toBe(
      `edge-gateway: ${join(dir, 'state')} is in use by the gateway running as pid ${pid}: one gateway at a time per gateway.stateDir (stop it first, or give this one a state folder of its own) [STATE_ERR_IN_USE]\n`,
    )
    // Nothing of the second's own start ran: no log line, and the first still holds the folder.
    expect(second.stdout).toBe('')
    expect(hasExited(running!.child)).toBe(false)
    expect(await readFile(join(dir, 'state', 'gateway.lock'), 'utf8')).toBe(lock)
    // A clean stop gives the folder back.
    await terminate(running!.child)
    running = undefined
    await expect(readFile(join(dir, 'state', 'gateway.lock'), 'utf8')).rejects.toMatchObject({
      code: 'ENOENT',
    })
  })
})
