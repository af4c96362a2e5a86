import { spawn } from 'node:child_process'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { parsePasswordHash, verifyPassword } from '../../gateway/auth/password.js'
import { passwordVerifier } from '../../gateway/auth/password-verifier.js'
import { readPepperFile } from '../../gateway/auth/pepper.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { builtCli, type CliResult, runCli } from './run-cli.js'

/** Runs the built CLI with `input` on standard input (killed by PID after 20 s). */
function runWithInput(args: string[], input: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [builtCli(), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c
    })
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    child.stdin.end(input)
  })
}

const PASSWORD = 'a device password'
let dir: string
let pepperFile: string

beforeAll(async () => {
  dir = await makeTempDir('edge-gw-cli-pepper-')
  pepperFile = join(dir, 'keys', 'password.pepper')
})
afterAll(async () => {
  await removeDir(dir)
})

describe('edge-gateway device pepper / hash-password --pepper-file', () => {
  it('device pepper writes 32 random bytes as hex, mode 0600, and prints nothing of them', async () => {
    const result = await runCli(['device', 'pepper', pepperFile])
    expect(result).toMatchObject({ code: 0, stdout: '' })
    expect(result.stderr).toBe(
      `password pepper written to ${pepperFile} (mode 0600); back it up apart from the config, never log it\n`,
    )
    const text = await readFile(pepperFile, 'utf8')
    expect(text).toMatch(/^[0-9a-f]{64}\n$/)
    expect((await stat(pepperFile)).mode & 0o777).toBe(0o600)
  })

  it('device pepper never overwrites a pepper', async () => {
    const before = await readFile(pepperFile, 'utf8')
    const result = await runCli(['device', 'pepper', pepperFile])
    expect(result.code).not.toBe(0)
    expect(result.stderr).toContain(
      `${pepperFile} exists; a new pepper would break every hash made with the old one, so it is not overwritten`,
    )
    expect(await readFile(pepperFile, 'utf8')).toBe(before)
  })

  it('hash-password --pepper-file writes a $scrypt-pepper$ hash the gateway accepts with that pepper', async () => {
    const result = await runWithInput(
      ['device', 'hash-password', '--pepper-file', pepperFile],
      `${PASSWORD}\n`,
    )
    expect(result.code).toBe(0)
    const encoded = result.stdout.trim()
    const pepper = await readPepperFile(pepperFile)
    expect(encoded.startsWith(`$scrypt-pepper$id=${pepper.id},ln=10,r=8,p=1$`)).toBe(true)
    expect(await passwordVerifier(encoded, pepper)(Buffer.from(PASSWORD))).toBe(true)
    expect(await passwordVerifier(encoded, pepper)(Buffer.from(`${PASSWORD}!`))).toBe(false)
  })

  it("hash-password --config uses the config's lan.passwordPepperFile, and writes $scrypt$ without one", async () => {
    const config = (pepper: boolean) => `gateway:
  id: gw-1
lan:
  listeners:
    - type: tcp
      port: 1883
${pepper ? '  passwordPepperFile: keys/password.pepper\n' : ''}cloud:
  host: 127.0.0.1
  caFile: pki/ca.pem
  certFile: pki/client.pem
  keyFile: pki/client.key
  topics:
    - local: devices/
      cloud: gw/devices/
`
    const withPepper = join(dir, 'with-pepper.yaml')
    const without = join(dir, 'without.yaml')
    await writeFile(withPepper, config(true))
    await writeFile(without, config(false))
    const pepper = await readPepperFile(pepperFile)
    const peppered = await runWithInput(['device', 'hash-password', '--config', withPepper], PASSWORD)
    expect(peppered.code).toBe(0)
    expect(parsePasswordHash(peppered.stdout.trim()).pepperId).toBe(pepper.id)
    const plain = await runWithInput(['device', 'hash-password', '--config', without], PASSWORD)
    expect(plain.code).toBe(0)
    const parsed = parsePasswordHash(plain.stdout.trim())
    expect(parsed).toMatchObject({ params: { ln: 14, r: 8, p: 1 } })
    expect(parsed.pepperId).toBeUndefined()
    expect(await verifyPassword(Buffer.from(PASSWORD), parsed)).toBe(true)
  })

  it('device add --username --pepper-file prints an entry with a peppered hash', async () => {
    const result = await runWithInput(
      ['device', 'add', 'sensor-9', '--username', 'sensor-9', '--pepper-file', pepperFile],
      PASSWORD,
    )
    expect(result.code).toBe(0)
    const [entry] = parse(result.stdout) as Array<{ id: string; username: string; passwordHash: string }>
    expect(entry).toMatchObject({ id: 'sensor-9', username: 'sensor-9' })
    const pepper = await readPepperFile(pepperFile)
    expect(await passwordVerifier(entry!.passwordHash, pepper)(Buffer.from(PASSWORD))).toBe(true)
  })

  it('refuses a pepper file others can read, without hashing anything', async () => {
    const open = join(dir, 'open.pepper')
    await writeFile(open, `${'ab'.repeat(32)}\n`, { mode: 0o644 })
    const result = await runWithInput(['device', 'hash-password', '--pepper-file', open], PASSWORD)
    expect(result.code).not.toBe(0)
    expect(result.stdout).toBe('')
    expect(result.stderr).toContain(
      `password pepper: ${open} has mode 0644; a key file must be 0600 or tighter`,
    )
    expect(result.stderr).not.toContain('ab'.repeat(8))
  })
})
