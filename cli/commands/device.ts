import type { Command } from 'commander'
import { hashPassword } from '../../gateway/index.js'

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of process.stdin) {
    size += (chunk as Buffer).length
    if (size > 4096) throw new Error('password on standard input is longer than 4096 bytes')
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '')
}

export function registerDevice(program: Command): void {
  const device = program.command('device').description('manage devices')
  device
    .command('hash-password')
    .description(
      'read a password on standard input and print its scrypt hash for `passwordHash` in the config',
    )
    .action(async () => {
      const password = await readStdin()
      if (password.length === 0) throw new Error('no password on standard input')
      process.stdout.write(`${await hashPassword(password)}\n`)
    })
}
