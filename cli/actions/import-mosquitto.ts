import { join, resolve } from 'node:path'
import { stringify } from 'yaml'
import { writePublicFile, writeSecretFile } from '../../pki/index.js'
import {
  aclToPolicy,
  parseAclFile,
  parsePasswordFile,
  parsePskFile,
  readMosquittoFile,
} from '../../policies/mosquitto/index.js'
import { UsageError } from '../fail.js'

export interface ImportOptions {
  aclFile?: string
  passwordFile?: string
  pskFile?: string
  out: string
}

/** The hash text of a password_file line, as written (everything after the first `:`, up to the next). */
function rawHash(text: string, line: number): string {
  const raw = text.split('\n')[line - 1] ?? ''
  return (raw.split(':')[1] ?? '').trim()
}

/**
 * Converts Mosquitto's files into ours: `devices.yaml` (a `devices:` list to
 * paste into the config, password hashes kept as they are, PSK keys moved to
 * 0600 key files) and `policies.yaml` (for `policies.file`). Every line that
 * could not be carried over is reported with its file and line number.
 */
export async function importMosquitto(options: ImportOptions): Promise<void> {
  if (!options.aclFile && !options.passwordFile && !options.pskFile) {
    throw new UsageError('Expected at least one of --acl-file, --password-file, --psk-file')
  }
  const out = resolve(options.out)
  const report: string[] = []
  const devices = new Map<string, Record<string, unknown>>()

  if (options.passwordFile) {
    const text = (await readMosquittoFile(options.passwordFile)).toString('utf8')
    const parsed = parsePasswordFile(text)
    for (const p of parsed.problems) report.push(`${options.passwordFile}:${p.line}: ${p.message}`)
    for (const e of parsed.entries) {
      devices.set(e.username, {
        id: e.username,
        username: e.username,
        passwordHash: rawHash(text, e.line),
        clientIds: ['*'],
      })
    }
  }
  if (options.pskFile) {
    const parsed = parsePskFile(await readMosquittoFile(options.pskFile))
    for (const p of parsed.problems) report.push(`${options.pskFile}:${p.line}: ${p.message}`)
    for (const e of parsed.entries) {
      const keyFile = join(out, 'keys', `${e.identity.replace(/[^A-Za-z0-9._-]/g, '_')}.psk`)
      await writeSecretFile(keyFile, `${e.key.toString('hex')}\n`)
      const existing = devices.get(e.identity)
      const psk = { identity: e.identity, keyFile }
      devices.set(e.identity, existing ? { ...existing, psk } : { id: e.identity, psk, clientIds: ['*'] })
    }
  }
  let rules = 0
  if (options.aclFile) {
    const conversion = aclToPolicy(parseAclFile(await readMosquittoFile(options.aclFile)), {
      deniedPublish: 'drop',
    })
    for (const u of conversion.unmapped)
      report.push(`${options.aclFile}:${u.line}: ${u.reason} (${u.outcome})`)
    rules = conversion.policy.rules.length
    await writePublicFile(
      join(out, 'policies.yaml'),
      `# Converted from ${resolve(options.aclFile)} by edge-gateway policy import-mosquitto.\n# deniedPublish: drop is what Mosquitto does; our default is disconnect.\n${stringify(conversion.policy)}`,
    )
  }
  if (devices.size > 0) {
    // Password hashes are not secrets in the way keys are, but there is no reason to leave them world-readable.
    await writeSecretFile(join(out, 'devices.yaml'), stringify({ devices: [...devices.values()] }))
  }
  process.stdout.write(`imported ${devices.size} device(s) and ${rules} rule(s) into ${out}\n`)
  for (const line of report) process.stdout.write(`not imported: ${line}\n`)
  if (report.length === 0) process.stdout.write('every line was imported\n')
}
