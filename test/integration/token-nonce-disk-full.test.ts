/**
 * docs/wire-format.md: an accepted CONNECT token's nonce is fdatasync'd to <stateDir>/token-nonces
 * before the CONNACK; when it cannot be written, the device gets CONNACK 3 (server unavailable) and
 * the gateway logs `authentication failed internally`: a token is never accepted without being
 * remembered. The state folder is a 4 MiB tmpfs the test mounts and fills, as a full card would be;
 * a real `edge-gateway start`, its cloud away.
 */
import { execFile } from 'node:child_process'
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { deriveContext } from '../../crypto/context.js'
import { makeToken } from '../../crypto/token.js'
import { Alg } from '../../crypto/types.js'
import { writeSecretFile } from '../../pki/index.js'
import { absentCloud, type StartedGateway, startGatewayCli } from '../cli/run-cli.js'
import { freePort } from '../helpers/ports.js'
import { terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { connackCode } from './clients.js'

const run = promisify(execFile)
const SECRET = Buffer.from('00112233445566778899aabbccddeeff', 'hex')
const ctx = deriveContext({
  masterSecret: SECRET,
  kid: Buffer.from('31', 'hex'),
  aead: Alg.AES_CCM_16_64_128,
})
const token = () => makeToken(ctx, 'tiny', Math.floor(Date.now() / 1000))

describe('a CONNECT token whose nonce cannot be written (the state folder full)', () => {
  let dir: string
  let stateDir: string
  let mounted = false
  let gateway: StartedGateway | undefined
  let lanPort: number

  beforeAll(async () => {
    if (process.getuid?.() !== 0) {
      throw new Error('this test mounts a small tmpfs as the state folder: run it as root')
    }
    dir = await makeTempDir('edge-gw-nonce-full-')
    stateDir = join(dir, 'state')
    await mkdir(stateDir)
    await run('mount', ['-t', 'tmpfs', '-o', 'size=4m,mode=0700', 'tmpfs', stateDir])
    mounted = true
    lanPort = await freePort()
    await writeSecretFile(join(dir, 'tiny.secret'), `${SECRET.toString('hex')}\n`)
    const config = {
      gateway: { id: 'gw-nonce-full', stateDir },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: lanPort }] },
      devices: [{ id: 'tiny', payloadKey: { kid: '31', secretFile: join(dir, 'tiny.secret') } }],
      cloud: await absentCloud(dir),
    }
    await writeFile(join(dir, 'gateway.yaml'), stringify(config), { mode: 0o600 })
    gateway = await startGatewayCli(join(dir, 'gateway.yaml'))
  }, 60_000)

  afterAll(async () => {
    if (gateway) await terminate(gateway.child)
    if (mounted) await run('umount', [stateDir])
    if (dir) await removeDir(dir)
  })

  it('gets CONNACK 3 and an error line, and is refused as replayed once the disk has room again', async () => {
    const connect = (password: Buffer) =>
      connackCode(lanPort, { clientId: 'tiny', username: 'tiny', password })
    expect(await connect(token())).toBe(0)

    // Fill the folder: dd stops at ENOSPC (and exits 1 for it).
    const filler = join(stateDir, 'filler')
    await run('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k']).catch(() => undefined)
    // The journal's last page still has room for a few lines: tokens are accepted until it is
    // full, then the next append fails (a few hundred 30-byte lines at most).
    let refused: Buffer | undefined
    let accepted = 0
    for (let i = 0; i < 500 && refused === undefined; i++) {
      const next = token()
      const code = await connect(next)
      if (code === 0) accepted++
      else {
        expect(code).toBe(3)
        refused = next
      }
    }
    expect(refused, `all of ${accepted} tokens were accepted on a full disk`).toBeDefined()
    const errors = gateway!.logs.filter((l) => l.msg === 'authentication failed internally')
    expect(errors).toHaveLength(1)
    expect(errors[0]).toMatchObject({ level: 50, clientId: 'tiny' })
    expect(JSON.stringify(errors[0])).toMatch(/ENOSPC/)

    // Room again: a new token is accepted; the one refused for the disk is not accepted later.
    await rm(filler)
    expect(await connect(token())).toBe(0)
    expect(await connect(refused!)).toBe(4)
  }, 60_000)
})
