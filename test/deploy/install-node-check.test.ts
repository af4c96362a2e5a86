/**
 * deploy/install.sh's first check: Node.js 20 or later, and npm. When either is missing or too old,
 * the installer stops and says where to get a Node.js that still gets security fixes (nodejs.org
 * ended Node 20 on 2026-04-30; Debian 13 keeps its own Node 20 up to date).
 *
 * The script runs with a PATH of a folder made here and nothing else: the few tools it calls before
 * that check, a stand-in `id` that says root, and a stand-in `node` and `npm` where a case needs
 * them. With no other tool reachable, a script that went past the check could change nothing on
 * this machine.
 */
import { copyFile, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { run } from './rootfs.js'

const INSTALL = new URL('../../deploy/install.sh', import.meta.url).pathname
const TOOLS = ['bash', 'sed', 'uname', 'cat', 'dirname', 'readlink']

const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(removeDir))
})

/**
 * A folder for PATH: the TOOLS, `id` saying root, and the given stand-ins (name -> script body); in
 * the temp folder, or under `parent`.
 */
async function pathWith(standIns: Record<string, string>, parent?: string): Promise<string> {
  const dir =
    parent === undefined
      ? await makeTempDir('eg-install-node-')
      : await mkdtemp(join(parent, 'eg-install-node-'))
  dirs.push(dir)
  for (const tool of TOOLS) {
    const { stdout } = await run('sh', ['-c', `command -v ${tool}`])
    await symlink(stdout.trim(), join(dir, tool))
  }
  const scripts = { id: 'echo 0', ...standIns }
  for (const [name, body] of Object.entries(scripts)) {
    await writeFile(join(dir, name), `#!${join(dir, 'bash')}\n${body}\n`, { mode: 0o755 })
  }
  return dir
}

async function install(
  path: string,
  script = INSTALL,
  args = ['--package', '/nonexistent/edge-gateway.tgz'],
): Promise<{ code: number; stderr: string }> {
  try {
    await run(join(path, 'bash'), [script, ...args], {
      env: { PATH: path },
      timeout: 30_000,
    })
    return { code: 0, stderr: '' }
  } catch (error) {
    const e = error as { code?: number; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stderr: e.stderr ?? '' }
  }
}

/** The advice every refusal gives: Debian 13's own Node, or Node 24 from NodeSource or nodejs.org. */
function expectAdvice(stderr: string): void {
  expect(stderr).toContain('nodejs.org ended Node 20 on 2026-04-30')
  expect(stderr).toContain('apt-get install -y nodejs npm')
  expect(stderr).toContain('https://deb.nodesource.com/setup_24.x')
  expect(stderr).toMatch(
    /https:\/\/nodejs\.org\/dist\/latest-v24\.x\/ \(node-v24\.\*-linux-(x64|arm64|armv7l)\.tar\.xz\)/,
  )
  // What each build costs in memory, from docs/performance.md.
  expect(stderr).toContain("Memory at rest is about 71 MiB on Debian 13's nodejs and 77 MiB")
  // No longer advised: a Node.js line nodejs.org no longer fixes.
  expect(stderr).not.toContain('setup_20.x')
  expect(stderr).not.toContain('latest-v20.x')
}

describe('deploy/install.sh: Node.js and npm', () => {
  it('stops when there is no node, and says where to get one that still gets security fixes', async () => {
    const r = await install(await pathWith({}))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('edge-gateway install: Node.js 20 or later is needed (no `node` on PATH)')
    expectAdvice(r.stderr)
  })

  it('stops on a node older than 20, naming its version and where it is', async () => {
    const path = await pathWith({ node: 'echo 18.19.0', npm: 'echo 9.2.0' })
    const r = await install(path)
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(`Node.js 20 or later is needed (found 18.19.0 at ${join(path, 'node')})`)
    expectAdvice(r.stderr)
  })

  it('names the build of the user space, not of the kernel: armhf under a 64-bit kernel gets armv7l', async () => {
    const r = await install(await pathWith({ dpkg: 'echo armhf' }))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('https://nodejs.org/dist/latest-v24.x/ (node-v24.*-linux-armv7l.tar.xz)')
    const arm64 = await install(await pathWith({ dpkg: 'echo arm64' }))
    expect(arm64.stderr).toContain('(node-v24.*-linux-arm64.tar.xz)')
  })

  it('stops on a node under a home folder, which the unit (ProtectHome=yes) could not start', async () => {
    const home = homedir()
    const r = await install(await pathWith({ node: 'echo 24.22.3', npm: 'echo 11.0.0' }, home))
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(
      new RegExp(
        `edge-gateway install: node at ${home}/eg-install-node-\\w+/node \\(.*\\) is under a home folder, which the service cannot see \\(ProtectHome=yes\\): install Node.js system-wide`,
      ),
    )
  })

  it('stops on a node without npm beside it', async () => {
    const r = await install(await pathWith({ node: 'echo 20.19.2' }))
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('(node 20.19.2 is there, but not npm)')
    expectAdvice(r.stderr)
  })
})

describe('deploy/install.sh: the package it installs', () => {
  /** A copy of the script in a folder of its own, with `beside` release tarballs (empty files). */
  async function scriptWith(beside: string[]): Promise<string> {
    const dir = await makeTempDir('eg-install-pkg-')
    dirs.push(dir)
    await copyFile(INSTALL, join(dir, 'install.sh'))
    for (const name of beside) await writeFile(join(dir, name), '')
    return join(dir, 'install.sh')
  }
  // npm is a stand-in that says it was called: the script must stop before it.
  const standIns = { node: 'echo 20.19.2', npm: 'echo "npm was called: $*" >&2; exit 1' }

  it('without --package and with no tarball beside it, stops: it never asks a registry for a name', async () => {
    const script = await scriptWith([])
    const r = await install(await pathWith(standIns), script, [])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `edge-gateway install: no release tarball (edge-gateway-*.tgz) beside ${script}, and no --package: make one with \`npm pack\` in a checkout and pass --package FILE (docs/install.md); nothing is fetched from a registry unless named`,
    )
    expect(r.stderr).not.toContain('npm was called')
  })

  it('with two tarballs beside it, stops and names them', async () => {
    const script = await scriptWith(['edge-gateway-0.1.0.tgz', 'edge-gateway-0.1.1.tgz'])
    const r = await install(await pathWith(standIns), script, [])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `2 release tarballs beside ${script} (edge-gateway-0.1.0.tgz edge-gateway-0.1.1.tgz): pass the one to install with --package FILE`,
    )
    expect(r.stderr).not.toContain('npm was called')
  })

  it('refuses a gateway id the config would refuse, before changing anything', async () => {
    for (const id of ['site/17', '-x', 'a b', `${'a'.repeat(65)}`]) {
      const r = await install(await pathWith(standIns), INSTALL, ['--id', id])
      expect(r.code, id).toBe(1)
      expect(r.stderr).toContain(
        `edge-gateway install: --id: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; got '${id}'`,
      )
    }
  })

  it('runs npm without package scripts', async () => {
    expect(await readFile(INSTALL, 'utf8')).toMatch(/npm install --global .*--ignore-scripts .*"\$spec"/)
  })
})
