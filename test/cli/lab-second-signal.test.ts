import type { ChildProcess } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { threeFreePorts } from '../helpers/ports.js'
import { exitOf, hasExited, onLines, signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { sleep } from '../integration/clients.js'
import { waitUntil } from '../integration/harness.js'
import { spawnCli } from './run-cli.js'

/**
 * README.md: the lab stops cleanly on SIGTERM or SIGINT (exit 0, last line `edge-gateway lab:
 * stopped`); a second signal more than a second after the first exits at once (cli/shutdown.ts:
 * 130), and one within that second is the same request (Ctrl-C under `npm run` arrives twice).
 *
 * To see what a second signal does, the stop must still be going on when it comes: a TCP
 * connection to the lab's TLS-PSK port that never sends its ClientHello holds the listener's close
 * until the connection ends (or its handshake deadline, 10 s, closes it), so the stop lasts as long
 * as the test keeps that connection open.
 */
interface Lab {
  child: ChildProcess
  out: string[]
  err: string[]
  /** The TLS-PSK port. */
  psk: number
}

const READY = 'messages arriving at the cloud side:'
const STOPPED = 'edge-gateway lab: stopped'

describe('edge-gateway lab: a second signal', () => {
  let dir: string | undefined
  let lab: Lab | undefined
  let held: Socket | undefined

  afterEach(async () => {
    held?.destroy()
    if (lab) await terminate(lab.child)
    if (dir) await removeDir(dir)
    dir = lab = held = undefined
  })

  /** The lab, up (its banner printed); a start that lost a port to another process is tried again. */
  async function startLab(): Promise<Lab> {
    dir = await makeTempDir('edge-gw-lab-signal-')
    for (let attempt = 1; ; attempt++) {
      const base = await threeFreePorts()
      const child = spawnCli([
        'lab',
        '--state-dir',
        join(dir, `state-${attempt}`),
        '--base-port',
        String(base),
      ])
      const started: Lab = { child, out: [], err: [], psk: base + 1 }
      lab = started
      onLines(child.stdout, (line) => started.out.push(line))
      onLines(child.stderr, (line) => started.err.push(line))
      await waitUntil(() => started.out.includes(READY) || hasExited(child), 60_000, 'the lab banner')
      if (!hasExited(child)) return started
      await exitOf(child)
      if (attempt === 3 || !started.err.some((l) => l.includes('EADDRINUSE'))) {
        throw new Error(`the lab did not start:\n${started.err.join('\n')}`)
      }
    }
  }

  /** A connection to the TLS-PSK port that sends nothing: the lab's stop waits for it. */
  async function holdStop(port: number): Promise<Socket> {
    const socket = connect(port, '127.0.0.1')
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve)
      socket.once('error', reject)
    })
    socket.on('error', () => undefined)
    return socket
  }

  const context = (l: Lab) => `stdout:\n${l.out.join('\n')}\nstderr:\n${l.err.join('\n')}`

  it('more than a second after the first: exits at once (130), without finishing the stop', async () => {
    const l = await startLab()
    held = await holdStop(l.psk)
    signalPid(l.child.pid, 'SIGTERM')
    await waitUntil(
      () => l.err.includes('edge-gateway: SIGTERM received, stopping...'),
      30_000,
      'the first signal taken',
    )
    await sleep(1_500)
    // The stop is still held by the connection: what ends the lab now is the second signal.
    expect(hasExited(l.child), context(l)).toBe(false)
    expect(l.out, context(l)).not.toContain(STOPPED)
    signalPid(l.child.pid, 'SIGINT')
    const exit = await exitOf(l.child)
    expect(exit, context(l)).toEqual({ code: 130, signal: null })
    expect(l.out, context(l)).not.toContain(STOPPED)
    // Only the first signal is announced; the second ends the process without a word.
    expect(
      l.err.filter((line) => line.endsWith('received, stopping...')),
      context(l),
    ).toEqual(['edge-gateway: SIGTERM received, stopping...'])
  }, 120_000)

  it('within a second of the first: the same request, the stop goes on to a clean exit 0', async () => {
    const l = await startLab()
    held = await holdStop(l.psk)
    // Back to back, as a Ctrl-C under `npm run` arrives (the terminal's, and the one npm passes on).
    signalPid(l.child.pid, 'SIGINT')
    signalPid(l.child.pid, 'SIGTERM')
    await waitUntil(
      () => l.err.some((line) => line.endsWith('received, stopping...')),
      30_000,
      'the first signal taken',
    )
    await sleep(1_500)
    expect(hasExited(l.child), context(l)).toBe(false)
    // Let the stop finish: the lab closes, exit 0, its last line the stop line.
    held.destroy()
    const exit = await exitOf(l.child)
    expect(exit, context(l)).toEqual({ code: 0, signal: null })
    expect(l.out.at(-1), context(l)).toBe(STOPPED)
    expect(
      l.err.filter((line) => line.endsWith('received, stopping...')),
      context(l),
    ).toHaveLength(1)
  }, 120_000)
})
