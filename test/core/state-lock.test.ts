import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { readFile, stat, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StateLock } from '../../core/state-lock.js'
import { exitOf, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

function startTimeOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!
}

/** core/state-lock.ts: one gateway per state folder; a record a killed gateway left is taken over. */
describe('StateLock', () => {
  let dir: string
  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-lock-')
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('records this process (0600), takes its own record again, and removes it on release', async () => {
    const state = join(dir, 'own')
    const lock = await StateLock.acquire(state)
    const file = join(state, 'gateway.lock')
    expect(await readFile(file, 'utf8')).toBe(`${process.pid} ${startTimeOf(process.pid)}\n`)
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    // The same process started again (a gateway closed and started in one process, as tests do).
    const again = await StateLock.acquire(state)
    await again.release()
    await lock.release()
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' })
  })

  it('refuses a folder another running process holds, naming its PID', async () => {
    const state = join(dir, 'held')
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' })
    try {
      const pid = other.pid!
      await (await StateLock.acquire(state)).release()
      await writeFile(join(state, 'gateway.lock'), `${pid} ${startTimeOf(pid)}\n`)
      await expect(StateLock.acquire(state)).rejects.toMatchObject({
        code: 'STATE_ERR_IN_USE',
        message: `${state} is in use by the gateway running as pid ${pid}: one gateway at a time per gateway.stateDir (stop it first, or give this one a state folder of its own)`,
      })
      // Its PID, but another start time: the PID was given to another process since (a reboot).
      await writeFile(join(state, 'gateway.lock'), `${pid} 1\n`)
      const taken = await StateLock.acquire(state)
      expect(await readFile(join(state, 'gateway.lock'), 'utf8')).toMatch(new RegExp(`^${process.pid} `))
      await taken.release()
    } finally {
      await terminate(other)
    }
  })

  it('takes over the record of a gateway that no longer runs (killed)', async () => {
    const state = join(dir, 'stale')
    const gone = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' })
    await exitOf(gone)
    await (await StateLock.acquire(state)).release()
    await writeFile(join(state, 'gateway.lock'), `${gone.pid} 12345\n`)
    const lock = await StateLock.acquire(state)
    expect(await readFile(join(state, 'gateway.lock'), 'utf8')).toMatch(new RegExp(`^${process.pid} `))
    await lock.release()
  })
})
