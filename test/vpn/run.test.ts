import { access, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createLogger } from '../../core/logger.js'
import { VpnError } from '../../vpn/errors.js'
import { runWithSecretFile } from '../../vpn/fifo.js'
import { run, spawnDaemon } from '../../vpn/run.js'
import { findBinary } from '../helpers/binaries.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

const key = (byte: number) => Buffer.alloc(32, byte).toString('base64')
const WG_HINT = 'install it with `apt-get install wireguard-tools`'

let dir: string
/** A PATH with nothing in it. */
let emptyPath: string

beforeAll(async () => {
  dir = await makeTempDir('vpn-run')
  emptyPath = join(dir, 'empty')
  await mkdir(emptyPath)
})

afterAll(async () => {
  await removeDir(dir)
})

describe('run', () => {
  it('passes input on stdin and returns stdout', async () => {
    await findBinary('wg', WG_HINT)
    // The public key of the all-0xa1 private key (X25519 with the clamped scalar).
    const { stdout } = await run('wg', ['pubkey'], { input: `${key(0xa1)}\n` })
    expect(stdout).toMatch(/^[A-Za-z0-9+/]{43}=\n$/)
  })

  it.each([
    ['wg', ['genkey'], 'VPN_ERR_WG_NOT_FOUND', 'wireguard-tools'],
    ['wireguard-go', ['--version'], 'VPN_ERR_WG_GO_NOT_FOUND', 'wireguard-go'],
    ['ip', ['-V'], 'VPN_ERR_IP_NOT_FOUND', 'iproute2'],
  ])('names the Debian package when `%s` is not in PATH', async (cmd, args, code, pkg) => {
    const err = await rejectionOf(run(cmd, args, { env: { PATH: emptyPath } }))
    expect(err).toBeInstanceOf(VpnError)
    expect(err).toMatchObject({
      code,
      message: `\`${cmd}\` was not found in PATH (${emptyPath}): install the Debian package ${pkg} (apt-get install ${pkg})${cmd === 'wireguard-go' ? ', or run a kernel with WireGuard and set vpn.implementation to kernel' : ''}`,
    })
  })

  it('kills a command that outlives its timeout', async () => {
    const started = Date.now()
    const err = await rejectionOf(run('sleep', ['30'], { timeoutMs: 200 }))
    expect(err).toMatchObject({
      code: 'VPN_ERR_TIMEOUT',
      message: '`sleep 30` did not finish within 200 ms and was killed',
    })
    expect(Date.now() - started).toBeLessThan(5000)
  })

  it.each([0, -1, 1.5, 10 * 60_000 + 1])('refuses a timeout of %s ms', async (timeoutMs) => {
    expect(await rejectionOf(run('true', [], { timeoutMs }))).toMatchObject({ code: 'VPN_ERR_BAD_CONFIG' })
  })

  it('refuses to put a secret on the command line, before running anything', async () => {
    const err = await rejectionOf(run('wg', ['pubkey', key(0xa1)], { secrets: [key(0xa1)] }))
    expect(err).toMatchObject({
      code: 'VPN_ERR_SECRET_IN_ARGS',
      message: 'Refusing to run `wg` with a secret in its arguments; secrets go on stdin',
    })
    expect((err as Error).message).not.toContain(key(0xa1))
  })

  it('logs commands at debug level without their output or input', async () => {
    await findBinary('wg', WG_HINT)
    const lines: string[] = []
    const destination = new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk))
        done()
      },
    })
    const logger = createLogger({ level: 'debug', destination })
    const { stdout } = await run('wg', ['genkey'], { logger })
    await run('wg', ['pubkey'], { input: stdout, logger })
    const log = lines.join('')
    expect(log).toContain('"command":"wg genkey"')
    expect(log).toContain('"command":"wg pubkey"')
    expect(log).not.toContain(stdout.trim())
  })
})

describe('runWithSecretFile', () => {
  it('hands the text to the program through a path that is a FIFO, and removes it', async () => {
    let seen = ''
    const { stdout } = await runWithSecretFile(
      process.execPath,
      (path) => {
        seen = path
        return [
          '-e',
          'const fs = require("fs"); const p = process.argv[1]; process.stdout.write(fs.statSync(p).isFIFO() + " " + fs.readFileSync(p, "utf8"))',
          path,
        ]
      },
      'hello through a fifo\n',
    )
    expect(stdout).toBe('true hello through a fifo\n')
    await expect(access(seen)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('does not hang when the program fails without opening the FIFO', async () => {
    const err = await rejectionOf(runWithSecretFile('false', () => [], 'never read\n', { timeoutMs: 5000 }))
    expect(err).toMatchObject({ code: 'VPN_ERR_COMMAND_FAILED', message: '`false` failed with exit code 1' })
  })

  it('times out like run', async () => {
    const err = await rejectionOf(
      runWithSecretFile('sleep', () => ['30'], 'never read\n', { timeoutMs: 200 }),
    )
    expect(err).toMatchObject({ code: 'VPN_ERR_TIMEOUT' })
  })

  it('redacts a key that wg setconf echoes back in its error', async () => {
    await findBinary('wg', WG_HINT)
    // wg quotes a malformed key in its error; here the malformed key starts with a real one.
    const text = `[Interface]\nPrivateKey = ${key(0xa1)}Z\n`
    const err = await rejectionOf(runWithSecretFile('wg', (path) => ['setconf', 'egnotthere0', path], text))
    expect(err).toBeInstanceOf(VpnError)
    const shown = `${(err as VpnError).message} ${JSON.stringify((err as VpnError).details)}`
    expect(shown).toContain('Key is not the correct length or format')
    expect(shown).toContain('[redacted]')
    expect(shown).not.toContain(key(0xa1))
  })
})

describe('spawnDaemon', () => {
  it('starts a process, collects its output lines and stops it by PID', async () => {
    const lines: string[] = []
    const daemon = await spawnDaemon(
      process.execPath,
      ['-e', 'console.log("ready"); console.error("on stderr"); setInterval(() => {}, 1000)'],
      { onLine: (line) => lines.push(line) },
    )
    expect(daemon.pid).toBeGreaterThan(1)
    for (let i = 0; i < 100 && lines.length < 2; i++) await new Promise((r) => setTimeout(r, 20))
    expect(lines.sort()).toEqual(['on stderr', 'ready'])
    expect(daemon.hasExited()).toBe(false)
    expect(await daemon.stop(2000)).toEqual({ code: null, signal: 'SIGTERM' })
    expect(daemon.hasExited()).toBe(true)
  })

  it('kills a process that ignores SIGTERM after the grace period', async () => {
    let ready: () => void = () => {}
    const started = new Promise<void>((resolve) => {
      ready = resolve
    })
    const daemon = await spawnDaemon(
      process.execPath,
      ['-e', 'process.on("SIGTERM", () => {}); console.log("ignoring SIGTERM"); setInterval(() => {}, 1000)'],
      { onLine: () => ready() },
    )
    await started
    expect(await daemon.stop(300)).toEqual({ code: null, signal: 'SIGKILL' })
  })

  it('names the package when the program is missing', async () => {
    const err = await rejectionOf(spawnDaemon('wireguard-go', ['-f', 'wg0'], { env: { PATH: emptyPath } }))
    expect(err).toMatchObject({ code: 'VPN_ERR_WG_GO_NOT_FOUND' })
  })

  it('explains an early exit from its output', async () => {
    const daemon = await spawnDaemon(process.execPath, [
      '-e',
      'console.error("ERROR: (wg0) Failed to create TUN device: operation not permitted"); process.exit(1)',
    ])
    expect(await daemon.exited).toEqual({ code: 1, signal: null })
    expect(daemon.failure()).toMatchObject({ code: 'VPN_ERR_NO_PRIVILEGE' })
  })

  it('redacts its output lines', async () => {
    const lines: string[] = []
    const daemon = await spawnDaemon(process.execPath, ['-e', `console.log("PrivateKey = abc")`], {
      onLine: (line) => lines.push(line),
    })
    await daemon.exited
    await new Promise((r) => setTimeout(r, 50))
    expect(lines).toEqual(['PrivateKey = [redacted]'])
  })
})
