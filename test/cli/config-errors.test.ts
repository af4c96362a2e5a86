import { chmod, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { writeSecretFile } from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { runCli } from './run-cli.js'

/** `edge-gateway start` with a bad config: one line naming the path, a non-zero exit, no stack trace. */
describe('edge-gateway start refuses bad configuration', () => {
  let dir: string
  let base: Record<string, unknown>

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-cli-')
    for (const name of ['ca.pem', 'client.pem'])
      await writeFile(join(dir, name), 'not read before validation\n')
    await writeSecretFile(join(dir, 'client.key'), 'not read before validation\n')
    await writeSecretFile(join(dir, 'dev.psk'), `${'ab'.repeat(16)}\n`)
    base = {
      gateway: { id: 'gw-1' },
      lan: { listeners: [{ type: 'tcp', port: 0 }] },
      devices: [{ id: 'dev', psk: { identity: 'dev', keyFile: 'dev.psk' } }],
      cloud: {
        host: '127.0.0.1',
        caFile: 'ca.pem',
        certFile: 'client.pem',
        keyFile: 'client.key',
        topics: [{ local: 'devices/', cloud: 'gw/' }],
      },
    }
  })

  afterAll(async () => {
    await removeDir(dir)
  })

  async function startWith(
    name: string,
    config: unknown,
  ): Promise<{ code: number | null; stderr: string; file: string }> {
    const file = join(dir, name)
    await writeFile(file, stringify(config))
    const result = await runCli(['start', '--config', file])
    return { code: result.code, stderr: result.stderr, file }
  }

  function expectOneLine(stderr: string): string {
    const lines = stderr.trimEnd().split('\n')
    expect(lines).toHaveLength(1)
    expect(stderr).not.toMatch(/^\s+at /m)
    return lines[0]!
  }

  it('a missing file', async () => {
    const file = join(dir, 'nowhere.yaml')
    const result = await runCli(['start', '--config', file])
    expect(result.code).toBe(2)
    expect(expectOneLine(result.stderr)).toBe(
      `edge-gateway: ${file}: config file not found [CONFIG_ERR_NOT_FOUND]`,
    )
  })

  it('an unknown key', async () => {
    const { code, stderr, file } = await startWith('unknown-key.yaml', { ...base, colour: 'blue' })
    expect(code).toBe(2)
    expect(expectOneLine(stderr)).toBe(
      `edge-gateway: ${file}: colour: unknown key "colour" [CONFIG_ERR_SCHEMA]`,
    )
  })

  it('a wrong type', async () => {
    const config = { ...base, lan: { listeners: [{ type: 'tcp', port: 'eighteen-eighty-three' }] } }
    const { code, stderr, file } = await startWith('wrong-type.yaml', config)
    expect(code).toBe(2)
    expect(expectOneLine(stderr)).toBe(
      `edge-gateway: ${file}: lan.listeners[0].port: expected number, got "eighteen-eighty-three" (string) [CONFIG_ERR_SCHEMA]`,
    )
  })

  it('a plain password for a passwordHash and an inline psk, without printing either', async () => {
    const password = 'hunter2-correct-horse-battery'
    const psk = '1f2e3d4c5b6a79880716253443526170'
    const config = {
      ...base,
      devices: [
        { id: 'dev', username: 'dev', passwordHash: password },
        { id: 'valve', psk },
      ],
    }
    const { code, stderr, file } = await startWith('secrets.yaml', config)
    expect(code).toBe(2)
    expect(expectOneLine(stderr)).toBe(
      `edge-gateway: ${file}: devices[0].passwordHash: a hash written by \`edge-gateway device hash-password\`, got a string (value not shown, it may be secret); devices[1].psk: expected object, got a string (value not shown, it may be secret) [CONFIG_ERR_SCHEMA]`,
    )
    expect(stderr).not.toContain('hunter2')
    expect(stderr).not.toContain(psk.slice(0, 8))
  })

  it('a key file readable by others', async () => {
    const keyFile = join(dir, 'dev.psk')
    await chmod(keyFile, 0o644)
    try {
      const { code, stderr, file } = await startWith('open-key.yaml', base)
      expect(code).toBe(2)
      expect(expectOneLine(stderr)).toBe(
        `edge-gateway: ${file}: devices[0].psk.keyFile: ${keyFile} has mode 0644; a key file must be 0600 or tighter (chmod 600 ${keyFile}) [CONFIG_ERR_SECRET_FILE]`,
      )
    } finally {
      await chmod(keyFile, 0o600)
    }
  })

  it('an observability token file that is empty, blank, too short or too long: the start stops, naming the file', async () => {
    const cases: Array<[string, string, number]> = [
      ['empty.token', '', 0],
      ['blank.token', ' \n\t\n', 0],
      ['short.token', 'fifteen-bytes!!\n', 15],
      ['long.token', `${'a'.repeat(1025)}\n`, 1025],
    ]
    for (const [name, content, bytes] of cases) {
      const tokenFile = join(dir, name)
      await writeSecretFile(tokenFile, content)
      const config = { ...base, observability: { listen: '127.0.0.1:9464', tokenFile: name } }
      const { code, stderr, file } = await startWith(`token-${name}.yaml`, config)
      expect(code, name).toBe(2)
      expect(expectOneLine(stderr), name).toBe(
        `edge-gateway: ${file}: observability.tokenFile: ${tokenFile} holds a token of ${bytes} bytes; a bearer token must be 16 to 1024 bytes (for example: openssl rand -hex 32 > ${tokenFile}) [CONFIG_ERR_SECRET_FILE]`,
      )
    }
  })

  it('a file over 1 MiB, or one whose size says nothing (a device): refused before it is parsed', async () => {
    const big = join(dir, 'big.yaml')
    await writeFile(big, `${stringify(base)}# ${'x'.repeat(1024 * 1024)}\n`)
    const over = await runCli(['start', '--config', big])
    expect(over.code).toBe(2)
    expect(expectOneLine(over.stderr)).toMatch(
      new RegExp(
        `^edge-gateway: ${big}: config file is \\d+ bytes, more than the 1048576 allowed \\[CONFIG_ERR_UNREADABLE\\]$`,
      ),
    )
    // /dev/zero's size reads 0 and it never ends: the read stops at the limit.
    const endless = await runCli(['start', '--config', '/dev/zero'])
    expect(endless.code).toBe(2)
    expect(expectOneLine(endless.stderr)).toBe(
      'edge-gateway: /dev/zero: config file is more than the 1048576 bytes allowed [CONFIG_ERR_UNREADABLE]',
    )
  })

  it('EDGE_GATEWAY_DEBUG=1 adds the stack trace after the one line', async () => {
    const file = join(dir, 'nowhere.yaml')
    process.env.EDGE_GATEWAY_DEBUG = '1'
    try {
      const result = await runCli(['start', '--config', file])
      expect(result.code).toBe(2)
      const lines = result.stderr.trimEnd().split('\n')
      expect(lines[0]).toBe(`edge-gateway: ${file}: config file not found [CONFIG_ERR_NOT_FOUND]`)
      expect(lines[1]).toMatch(/^ConfigError: /)
      expect(lines.slice(2).some((l) => /^\s+at /.test(l))).toBe(true)
    } finally {
      delete process.env.EDGE_GATEWAY_DEBUG
    }
  })

  it('an HPKE recipient key of low order: the start stops, naming the recipient, before any message is taken', async () => {
    // All zeros: accepted as an X25519 key, but every seal to it fails, so each message of the
    // mapping would stay queued for ever and hold a place in the uplink's read-ahead window.
    await writeFile(join(dir, 'zero.pub'), `${'00'.repeat(32)}\n`)
    const config = {
      ...base,
      gateway: { id: 'gw-1', stateDir: join(dir, 'state-recipient') },
      cloud: {
        ...(base.cloud as Record<string, unknown>),
        recipients: [{ name: 'analytics', publicKeyFile: 'zero.pub' }],
        topics: [{ local: 'devices/', cloud: 'gw/', sealFor: 'analytics' }],
      },
    }
    const { code, stderr } = await startWith('low-order-recipient.yaml', config)
    expect(code).toBe(1)
    expect(expectOneLine(stderr)).toBe(
      'edge-gateway: cloud.recipients "analytics": The HPKE recipient public key is unusable (low order) [BRIDGE_ERR_KEY_FILE]',
    )
  })

  it('broken YAML', async () => {
    const file = join(dir, 'broken.yaml')
    await writeFile(file, 'gateway:\n  id: gw-1\n lan: [\n')
    const result = await runCli(['start', '--config', file])
    expect(result.code).toBe(2)
    expect(expectOneLine(result.stderr)).toMatch(
      new RegExp(
        `^edge-gateway: ${file.replaceAll('/', '\\/')}: line \\d+, column \\d+: .+ \\[CONFIG_ERR_YAML\\]$`,
      ),
    )
  })
})
