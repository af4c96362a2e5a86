import { chmod, mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { deleteLink } from '../../vpn/link.js'
import { rejectionOf } from '../helpers/catch.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

let dir: string

/** A PATH whose only `ip` prints `stderr` and exits with `code`. */
async function pathWithIp(name: string, stderr: string, code: number): Promise<string> {
  const bin = join(dir, name)
  await mkdir(bin)
  await writeFile(join(bin, 'ip'), `#!/bin/sh\necho '${stderr}' >&2\nexit ${code}\n`)
  await chmod(join(bin, 'ip'), 0o755)
  return bin
}

beforeAll(async () => {
  dir = await makeTempDir('vpn-link')
})

afterAll(async () => {
  await removeDir(dir)
})

describe('deleteLink', () => {
  // `Cannot find device` when the name is unknown; `No such device` when the link went between
  // the name lookup and the delete (a wireguard-go that died takes its interface with it).
  it.each([
    ['unknown', 'Cannot find device "wg9"'],
    ['gone', 'RTNETLINK answers: No such device'],
  ])('is false when the link is %s', async (name, stderr) => {
    const PATH = await pathWithIp(name, stderr, name === 'gone' ? 2 : 1)
    await expect(deleteLink('wg9', { env: { PATH } })).resolves.toBe(false)
  })

  it('passes any other failure on', async () => {
    const PATH = await pathWithIp('busy', 'RTNETLINK answers: Device or resource busy', 2)
    const err = await rejectionOf(deleteLink('wg9', { env: { PATH } }))
    expect(err).toMatchObject({ code: 'VPN_ERR_COMMAND_FAILED' })
    expect(String(err)).toMatch(/Device or resource busy/)
  })
})
