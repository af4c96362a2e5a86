/**
 * The Node.js builds deploy/install.sh points an operator to when it finds no usable Node
 * (test/deploy/install-node-check.test.ts): Debian 13's own `nodejs` (Node 20, built by Debian
 * against its shared OpenSSL, libuv and ICU) and Node 24 from nodejs.org (on Debian 12). The rest
 * of the suite runs on this machine's Node; here the lab (lab PKI, LAN broker with a TLS-PSK and a
 * password device, the bridge, an embedded cloud broker that requires client certificates and
 * checks the key binding and every message's signature) runs on each of them, from the built
 * bundle, and must deliver verified messages from both devices and stop cleanly.
 *
 * Debian 13's Node runs in a chroot of a Debian tree built once (scripts/build-debian-node-tree.sh,
 * kept in the install tests' cache folder), inside a mount namespace of its own (`unshare
 * --mount`), so that the checkout, /proc and /dev mounted into the tree go away with the process.
 * Node 24 is the npm package node-linux-<arch> (the nodejs.org build), unpacked once into the cache
 * (rootfs.ts, nodeBinary).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { threeFreePorts } from '../helpers/ports.js'
import { exitOf, onLines, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { BIG, CACHE, nodeBinary, ROOT, requireInstallTools, run } from './rootfs.js'

const NODE_24 = '24.22.3'
// Long enough for both devices to be heard on a loaded machine (the lab test saw over 10 s to the first message).
const LAB_SECONDS = 30

interface LabRun {
  code: number | null
  stdout: string[]
  stderr: string[]
}

/** Runs the lab for LAB_SECONDS through `start(base)`; a start that lost a port race is tried again. */
async function runLab(start: (base: number) => ChildProcess): Promise<LabRun> {
  for (let attempt = 1; ; attempt++) {
    const child = start(await threeFreePorts())
    const stdout: string[] = []
    const stderr: string[] = []
    onLines(child.stdout, (line) => stdout.push(line))
    onLines(child.stderr, (line) => stderr.push(line))
    // The lab stops by itself after --duration; the timer only ends a lab that hangs.
    const timer = setTimeout(() => void terminate(child), (LAB_SECONDS + 60) * 1000)
    const exit = await exitOf(child)
    clearTimeout(timer)
    if (attempt < 3 && stderr.some((l) => l.includes('EADDRINUSE'))) continue
    return { code: exit.code, stdout, stderr }
  }
}

function expectVerifiedLab(lab: LabRun): void {
  const context = `stdout:\n${lab.stdout.join('\n')}\nstderr:\n${lab.stderr.join('\n')}`
  const output = lab.stdout.join('\n')
  expect(output, context).toMatch(
    /^cloud <- \$gw\/lab\/binding: key binding for gateway lab verified against the lab CA$/m,
  )
  // Both devices: lab-psk over TLS-PSK, lab-pass over plain TCP with a password.
  expect(output, context).toMatch(/signature verified, device lab-psk, gw-seq \d+\)$/m)
  expect(output, context).toMatch(/signature verified, device lab-pass, gw-seq \d+\)$/m)
  expect(output, context).not.toMatch(/REFUSED/)
  expect(lab.code, context).toBe(0)
  expect(lab.stdout.at(-1), context).toBe('edge-gateway lab: stopped')
}

const labArgs = (stateDir: string, base: number) => [
  'lab',
  '--state-dir',
  stateDir,
  '--base-port',
  String(base),
  '--duration',
  String(LAB_SECONDS),
]

describe('the lab on the Node.js builds the installer points to', () => {
  const dirs: string[] = []
  afterAll(async () => {
    for (const dir of dirs) await removeDir(dir)
  })

  it(`Node ${NODE_24} from nodejs.org (npm package node-linux-<arch>)`, async () => {
    const node = await nodeBinary(process.arch === 'arm64' ? 'arm64' : 'x64', NODE_24)
    const { stdout: version } = await run(node, ['--version'])
    expect(version.trim()).toBe(`v${NODE_24}`)
    const dir = await makeTempDir('edge-gw-node24-')
    dirs.push(dir)
    // As the systemd unit runs it: Node's compile cache in a folder of its own (Node 22 and later).
    const cache = join(dir, 'compile-cache')
    const lab = await runLab((base) =>
      spawn(node, [join(ROOT, 'dist/bin/edge-gateway.js'), ...labArgs(join(dir, 'lab'), base)], {
        cwd: dir,
        env: { ...process.env, NODE_COMPILE_CACHE: cache },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    )
    expectVerifiedLab(lab)
    // Node wrote the code it compiled from the bundle there, for the next start to read.
    const cached = await readdir(cache, { recursive: true })
    expect(cached.length, cached.join('\n')).toBeGreaterThan(0)
  }, 420_000)

  it("Debian 13's own nodejs package, in a chroot", async () => {
    await requireInstallTools(['debootstrap', 'unshare', 'chroot'])
    await run('bash', [join(ROOT, 'scripts/build-debian-node-tree.sh'), 'trixie', CACHE], {
      ...BIG,
      timeout: 900_000,
    })
    const { stdout: arch } = await run('dpkg', ['--print-architecture'])
    const tree = join(CACHE, `trixie-nodejs-${arch.trim()}`)
    const { stdout: version } = await run('chroot', [tree, '/usr/bin/node', '--version'])
    expect(version.trim()).toMatch(/^v20\./)
    const state = await makeTempDir('edge-gw-trixie-')
    dirs.push(state)
    const lab = await runLab((base) =>
      spawn(
        'unshare',
        [
          '--mount',
          '--propagation',
          'private',
          'sh',
          '-ec',
          [
            'tree="$1"; repo="$2"; state="$3"; shift 3',
            'mount --bind "$repo" "$tree/srv/edge-gateway"',
            'mount -o remount,bind,ro "$tree/srv/edge-gateway"',
            'mount --bind "$state" "$tree/srv/state"',
            'mount -t proc proc "$tree/proc"',
            'mount --bind /dev "$tree/dev"',
            'exec chroot "$tree" /usr/bin/node /srv/edge-gateway/dist/bin/edge-gateway.js "$@"',
          ].join('\n'),
          'lab-in-chroot',
          tree,
          ROOT,
          state,
          ...labArgs(`/srv/state/lab-${Date.now()}`, base),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      ),
    )
    expectVerifiedLab(lab)
  }, 1_200_000)
})
