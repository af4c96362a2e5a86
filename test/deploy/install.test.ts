/**
 * Issue 16, acceptance 1: `deploy/install.sh` run as an operator runs it, from a fresh `npm pack`
 * tarball, in a Debian 12 container booted with systemd (podman, systemd as PID 1):
 * - the service is active and runs as `edge-gateway`;
 * - a TLS-PSK device (the real `mosquitto_pub --psk`) added to the config is refused until
 *   `systemctl reload edge-gateway`, then accepted, and its message reaches a cloud mosquitto that
 *   requires client certificates;
 * - a second run of the installer changes nothing and says so (the service keeps its PID);
 * - `--uninstall` leaves nothing but the config and the state: the file system, listed before the
 *   install and after the uninstall, differs in those two folders alone.
 *
 * Everything listens inside the container's own network namespace (podman makes it for the test).
 * The package has no dependency to fetch (the CLI is one bundle); npm in the container still trusts
 * what the host trusts (its CA bundle), should it ask a registry anything.
 */

import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mintLabPki } from '../../pki/index.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { HOST_CA_BUNDLE, nodeBinary, packProject, requireInstallTools, rootfsTar, run } from './rootfs.js'

const NAME = `edge-gateway-install-${process.pid}`
const IMAGE = `localhost/edge-gateway-install-test:${process.pid}`
const GATEWAY_ID = 'site-1'
const NEXT_VERSION = '0.1.1-next'
const CLOUD_PORT = 8884
/** Paths the listing leaves out: kernel and runtime trees, logs, caches, what the test itself copies in. */
const NOT_LISTED = [
  '/proc',
  '/sys',
  '/dev',
  '/run',
  '/tmp',
  '/var/tmp',
  '/var/log',
  '/var/cache',
  '/root',
  '/var/lib/systemd',
  '/var/lib/dbus',
  '/var/lib/mosquitto',
]

/** Runs `script` with bash inside the container; resolves with its output, rejects on a non-zero exit. */
async function inside(script: string, timeoutMs = 60_000): Promise<string> {
  const { stdout } = await run(
    'podman',
    ['exec', '-e', 'npm_config_cafile=/usr/local/share/host-ca.crt', NAME, 'bash', '-c', script],
    { timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024 },
  )
  return stdout
}

/** Like `inside`, but resolves with the exit code and both outputs whatever the code. */
async function tryInside(script: string, timeoutMs = 60_000) {
  try {
    const out = await inside(script, timeoutMs)
    return { code: 0, out }
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string }
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}` }
  }
}

async function podman(...args: string[]): Promise<string> {
  const { stdout } = await run('podman', args, { timeout: 300_000, maxBuffer: 16 * 1024 * 1024 })
  return stdout.trim()
}

/** Every path on the container's root file system but the NOT_LISTED trees, sorted. */
async function listing(): Promise<string[]> {
  const prune = NOT_LISTED.map((p) => `-path ${p}`).join(' -o ')
  const out = await inside(`find / -xdev \\( ${prune} \\) -prune -o -print | LC_ALL=C sort`, 120_000)
  return out.split('\n').filter(Boolean)
}

const installArgs = [
  '--package /root/release/edge-gateway.tgz',
  `--id ${GATEWAY_ID}`,
  `--cloud-host localhost --cloud-port ${CLOUD_PORT}`,
  '--cloud-ca /root/pki/ca.pem --cloud-cert /root/pki/client.pem --cloud-key /root/pki/client.key',
].join(' ')

describe('deploy/install.sh in a Debian 12 container with systemd', () => {
  let dir: string
  let before: string[]
  let firstRun: string

  beforeAll(async () => {
    await requireInstallTools(['podman', 'debootstrap', 'runc'])
    dir = await makeTempDir('eg-install')
    const [tar, node, tarball] = await Promise.all([rootfsTar('amd64'), nodeBinary('x64'), packProject(dir)])
    await podman('import', '-q', tar, IMAGE)
    // systemd as PID 1; hardened units (PrivateUsers, ProtectSystem...) need SYS_ADMIN to set up.
    await podman(
      'run',
      '-d',
      '--name',
      NAME,
      '--systemd=always',
      '--cap-add',
      'SYS_ADMIN',
      // For the managed tunnel: CAP_NET_ADMIN for the unit to give, and the tun device for
      // wireguard-go (this kernel has no WireGuard of its own).
      '--cap-add',
      'NET_ADMIN',
      '--device',
      '/dev/net/tun',
      IMAGE,
      '/sbin/init',
    )
    await inside('systemctl is-system-running --wait >/dev/null || true', 120_000)

    // Node.js as an operator installs it from nodejs.org (bin/node into /usr/local), npm beside it.
    await inside('mkdir -p /usr/local/lib/node_modules /root/release /root/pki')
    await podman('cp', node, `${NAME}:/usr/local/bin/node`)
    await podman('cp', '/usr/lib/node_modules/npm', `${NAME}:/usr/local/lib/node_modules/npm`)
    await inside('ln -sf ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm')
    await podman('cp', HOST_CA_BUNDLE, `${NAME}:/usr/local/share/host-ca.crt`)
    await podman('cp', tarball, `${NAME}:/root/release/edge-gateway.tgz`)
    // The next release, for --upgrade: the same package under version 0.1.1-next.
    await run('tar', ['-C', dir, '-xzf', tarball, 'package/package.json'])
    const manifest = JSON.parse(await readFile(join(dir, 'package/package.json'), 'utf8'))
    await writeFile(
      join(dir, 'package/package.json'),
      JSON.stringify({ ...manifest, version: NEXT_VERSION }, null, 2),
    )
    await run('bash', [
      '-c',
      `gzip -dc "$0" > "$1/next.tar" && tar -C "$1" -rf "$1/next.tar" package/package.json && gzip -c "$1/next.tar" > "$1/next.tgz"`,
      tarball,
      dir,
    ])
    await podman('cp', join(dir, 'next.tgz'), `${NAME}:/root/release/edge-gateway-next.tgz`)
    await podman('cp', join(ROOT_DIR, 'deploy/install.sh'), `${NAME}:/root/release/install.sh`)

    // The cloud: the container's mosquitto, with a listener that requires a client certificate.
    const pki = await mintLabPki(join(dir, 'pki'), { clientCommonName: GATEWAY_ID })
    for (const f of ['ca.pem', 'server.pem', 'server.key', 'client.pem', 'client.key']) {
      await podman('cp', join(pki.dir, f), `${NAME}:/root/pki/${f}`)
    }
    await writeFile(
      join(dir, 'cloud.conf'),
      [
        `listener ${CLOUD_PORT} 127.0.0.1`,
        'cafile /etc/mosquitto/certs/ca.pem',
        'certfile /etc/mosquitto/certs/server.pem',
        'keyfile /etc/mosquitto/certs/server.key',
        'require_certificate true',
        // The certificate's CN is the MQTT username: the gateway is `site-1`, nobody is anonymous.
        'use_identity_as_username true',
        '',
      ].join('\n'),
    )
    await podman('cp', join(dir, 'cloud.conf'), `${NAME}:/etc/mosquitto/conf.d/cloud.conf`)
    await inside(
      'install -m 0644 /root/pki/ca.pem /root/pki/server.pem /etc/mosquitto/certs/ && ' +
        'install -m 0640 -g mosquitto /root/pki/server.key /etc/mosquitto/certs/ && systemctl restart mosquitto',
    )

    // WireGuard as an operator adds it on a kernel without it (this one): the tools, wireguard-go
    // and ip, from the Debian archive; and /dev/net/tun usable by all, as Debian's udev rules make
    // it (podman copies the host's mode, here 0600).
    await inside(
      'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ' +
        'wireguard-tools wireguard-go iproute2 >/dev/null && chmod 0666 /dev/net/tun',
      300_000,
    )

    before = await listing()
    // stderr too: a shell error the script survives (a command substitution in a here-document) shows.
    firstRun = await inside(`bash /root/release/install.sh ${installArgs} 2>&1`, 300_000)
  }, 900_000)

  afterAll(async () => {
    // EDGE_GATEWAY_TEST_KEEP=1 leaves the container running, to look into it with `podman exec`.
    if (process.env.EDGE_GATEWAY_TEST_KEEP === '1') return
    await run('podman', ['rm', '-f', '-t', '0', NAME]).catch(() => undefined)
    await run('podman', ['rmi', '-f', IMAGE]).catch(() => undefined)
    if (dir) await removeDir(dir)
  }, 120_000)

  it('installs, writes a starter config that passes policy check, and starts the service as edge-gateway', async () => {
    expect(firstRun).toMatch(/changed: installed edge-gateway 0\.1\.0/)
    expect(firstRun).toMatch(/changed: created the system user edge-gateway/)
    expect(firstRun).toMatch(/changed: wrote the starter config \/etc\/edge-gateway\/gateway\.yaml/)
    expect(firstRun).toMatch(/policy check: ok: 0 device\(s\)/)
    expect(firstRun).toMatch(/changed: started edge-gateway\.service/)
    expect(firstRun).not.toMatch(/command not found|: line \d+: /)
    // The starter config says how to add a device, as written (nothing in it was run by the shell).
    expect(await inside('grep -F "replace \'devices: []\' below" /etc/edge-gateway/gateway.yaml')).toContain(
      "# replace 'devices: []' below with 'devices:' and paste the entry it prints under it, then:",
    )
    expect((await inside('systemctl is-active edge-gateway')).trim()).toBe('active')
    // The unit's cache folder (NODE_COMPILE_CACHE; this Node 20 leaves it empty), the service's alone.
    expect(await inside('stat -c "%U %a" /var/cache/edge-gateway')).toBe('edge-gateway 700\n')
    const user = await inside('ps -o user= -p "$(systemctl show -p MainPID --value edge-gateway)"')
    expect(user.trim()).toBe('edge-gateway')
    // The Node options of the `#!` line reach the service, which runs `node <script>`.
    expect(
      await inside(
        `tr '\\0' '\\n' < "/proc/$(systemctl show -p MainPID --value edge-gateway)/environ" | grep '^NODE_OPTIONS='`,
      ),
    ).toBe('NODE_OPTIONS=--max-old-space-size=512 --max-semi-space-size=2\n')
    // Config and state belong to the service user alone; the cloud key is 0600.
    expect(
      await inside(
        'stat -c "%n %a %U" /etc/edge-gateway /var/lib/edge-gateway /etc/edge-gateway/gateway.yaml /etc/edge-gateway/cloud/client.key',
      ),
    ).toBe(
      [
        '/etc/edge-gateway 700 edge-gateway',
        '/var/lib/edge-gateway 700 edge-gateway',
        '/etc/edge-gateway/gateway.yaml 600 edge-gateway',
        '/etc/edge-gateway/cloud/client.key 600 edge-gateway',
        '',
      ].join('\n'),
    )
    // The hardened unit is what runs: no capability, read-only system.
    expect(
      await inside(
        'systemctl show -p CapabilityBoundingSet -p ProtectSystem -p NoNewPrivileges edge-gateway',
      ),
    ).toBe('CapabilityBoundingSet=\nProtectSystem=strict\nNoNewPrivileges=yes\n')
    // Bounds for a gateway gone wrong: memory, tasks.
    expect(await inside('systemctl show -p MemoryMax -p TasksMax edge-gateway')).toBe(
      'MemoryMax=1073741824\nTasksMax=256\n',
    )
    // The status page and health on loopback inside the container.
    await waitFor(
      async () =>
        (
          await tryInside(
            'node -e "fetch(\'http://127.0.0.1:9464/healthz\').then(r=>process.exit(r.status===200?0:1),()=>process.exit(1))"',
          )
        ).code === 0,
      30_000,
    )
  }, 120_000)

  it('`systemctl reload` reloads the devices: a new PSK device connects and its message reaches the cloud', async () => {
    const added = await inside(
      'cd /etc/edge-gateway && entry="$(runuser -u edge-gateway -- edge-gateway device add sensor-1 --psk --key-dir /etc/edge-gateway/keys)" && ' +
        'awk -v entry="$entry" \'$0 == "devices: []" { print "devices:"; print entry; next } { print }\' gateway.yaml > gateway.yaml.new && ' +
        'chown edge-gateway:edge-gateway gateway.yaml.new && chmod 0600 gateway.yaml.new && mv gateway.yaml.new gateway.yaml && ' +
        'runuser -u edge-gateway -- edge-gateway policy check --config gateway.yaml',
    )
    expect(added).toMatch(/ok: 1 device\(s\)/)
    const publish = (payload: string) =>
      tryInside(
        `mosquitto_pub -h 127.0.0.1 -p 8883 --psk-identity sensor-1 --psk "$(cat /etc/edge-gateway/keys/sensor-1.psk)" -i sensor-1 -q 1 -t devices/sensor-1/temp -m '${payload}'`,
      )
    // `systemctl reload` is SIGHUP to the main process (ExecReload): the gateway reads its devices
    // again and logs it with why=SIGHUP; the process stays the same.
    const mainPid = (await inside('systemctl show -p MainPID --value edge-gateway')).trim()
    await inside('systemctl reload edge-gateway')
    expect((await inside('systemctl show -p MainPID --value edge-gateway')).trim()).toBe(mainPid)
    await waitFor(async () => {
      const journal = await inside('journalctl -u edge-gateway --no-pager -o cat')
      return journal
        .split('\n')
        .some(
          (l) =>
            l.includes('"why":"SIGHUP"') &&
            l.includes('reloaded devices and policies') &&
            l.includes('1 configured'),
        )
    }, 20_000)

    const sub = tryInside(
      `mosquitto_sub -h 127.0.0.1 -p ${CLOUD_PORT} --cafile /root/pki/ca.pem --cert /root/pki/client.pem --key /root/pki/client.key -i consumer -t 'sites/${GATEWAY_ID}/#' -C 1 -W 40 -F '%t %x'`,
      60_000,
    )
    let published = { code: -1, out: '' }
    for (let attempt = 0; attempt < 20 && published.code !== 0; attempt++) {
      await new Promise((r) => setTimeout(r, 1000))
      published = await publish('21.5')
    }
    expect(published, published.out).toMatchObject({ code: 0 })
    const received = await sub
    expect(received.code, received.out).toBe(0)
    const [topic, hex] = received.out.trim().split(' ')
    expect(topic).toBe(`sites/${GATEWAY_ID}/devices/sensor-1/temp`)
    expect(hex).toContain(Buffer.from('21.5').toString('hex'))
  }, 180_000)

  it('changes nothing on a second run, and says so', async () => {
    const pid = (await inside('systemctl show -p MainPID --value edge-gateway')).trim()
    const second = await inside(`bash /root/release/install.sh ${installArgs}`, 300_000)
    expect(second).toMatch(/nothing to change/)
    expect(second).not.toMatch(/changed:/)
    expect((await inside('systemctl show -p MainPID --value edge-gateway')).trim()).toBe(pid)
  }, 300_000)

  it('a second run keeps cloud credentials that changed since (a rotation writes them); --replace-cloud-credentials replaces them', async () => {
    const cert = '/etc/edge-gateway/cloud/client.pem'
    const original = await inside(`cat ${cert}`)
    // As a pushed certificate would: the file now differs from the one the command names.
    await inside(`printf '# rotated\\n' >> ${cert}`)
    const rotated = await inside(`cat ${cert}`)
    const pid = (await inside('systemctl show -p MainPID --value edge-gateway')).trim()
    // Run again without --package, as an operator adding credentials later would: installed, it needs none.
    const again = await inside(
      `bash /root/release/install.sh ${installArgs.replace('--package /root/release/edge-gateway.tgz ', '')}`,
      300_000,
    )
    expect(again).toContain(`kept: ${cert}, which differs from`)
    expect(again).toContain('--replace-cloud-credentials replaces it')
    expect(again).toMatch(/nothing to change/)
    expect(await inside(`cat ${cert}`)).toBe(rotated)
    expect((await inside('systemctl show -p MainPID --value edge-gateway')).trim()).toBe(pid)
    // Asked for: replaced, with the mode and owner of the others, and the service restarted on it.
    const replaced = await inside(
      `bash /root/release/install.sh ${installArgs} --replace-cloud-credentials`,
      300_000,
    )
    expect(replaced).toMatch(new RegExp(`changed: ${cert} \\(from `))
    expect(replaced).toMatch(
      /changed: restarted edge-gateway\.service \(new unit, package or cloud credentials\)/,
    )
    expect(await inside(`cat ${cert}`)).toBe(original)
    expect(await inside(`stat -c '%a %U' ${cert}`)).toBe('644 edge-gateway\n')
    expect((await inside('systemctl is-active edge-gateway')).trim()).toBe('active')
  }, 600_000)

  it('a config that watches a system tunnel (vpn.manage false) gets CAP_NET_ADMIN from its own drop-in, gone with the section', async () => {
    const config = '/etc/edge-gateway/gateway.yaml'
    const dropIns = '/etc/systemd/system/edge-gateway.service.d'
    await inside(`cp -p ${config} /root/gateway.yaml.bak`)
    await inside(
      `printf '%s\\n' 'vpn:' '  interfaceName: wgsys0' '  manage: false' '  peer:' ` +
        `'    publicKey: HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=' '    allowedIps: [127.0.0.1/32, "::1/128"]' >> ${config}`,
    )
    const watching = await inside(`bash /root/release/install.sh ${installArgs}`, 300_000)
    expect(watching).toContain(`changed: ${dropIns}/vpn-watch.conf (CAP_NET_ADMIN for the system tunnel)`)
    expect(watching).toMatch(/changed: restarted edge-gateway\.service/)
    expect(await inside(`ls ${dropIns}`)).toBe('vpn-watch.conf\n')
    expect(await inside('systemctl show -p AmbientCapabilities edge-gateway')).toBe(
      'AmbientCapabilities=cap_net_admin\n',
    )
    expect(await inside('systemctl show -p CapabilityBoundingSet edge-gateway')).toBe(
      'CapabilityBoundingSet=cap_net_admin\n',
    )
    expect((await inside('systemctl is-active edge-gateway')).trim()).toBe('active')

    await inside(`cp -p /root/gateway.yaml.bak ${config}`)
    const off = await inside(`bash /root/release/install.sh ${installArgs}`, 300_000)
    expect(off).toContain(`changed: removed ${dropIns}/vpn-watch.conf (the config's tunnel is off)`)
    expect(await inside(`test -e ${dropIns} && echo there || echo gone`)).toBe('gone\n')
    expect(await inside('systemctl show -p CapabilityBoundingSet edge-gateway')).toBe(
      'CapabilityBoundingSet=\n',
    )
    expect((await inside('systemctl is-active edge-gateway')).trim()).toBe('active')
  }, 600_000)

  it('a config that manages its tunnel runs wireguard-go under the hardened unit, and a message reaches a cloud only the tunnel leads to', async () => {
    const config = '/etc/edge-gateway/gateway.yaml'
    await inside(`cp -p ${config} /root/gateway.yaml.pre-tunnel`)
    // The cloud end, in a network namespace of its own behind a veth: a wireguard-go (with a
    // /run/wireguard of its own, so that nothing the unit does there touches it) and a mosquitto
    // that listens on its tunnel address alone and requires a client certificate.
    await inside(
      [
        'set -e',
        'ip netns add cloud',
        'ip link add veg0 type veth peer name veg1 netns cloud',
        'ip addr add 192.168.77.1/30 dev veg0 && ip link set veg0 up',
        'ip -n cloud addr add 192.168.77.2/30 dev veg1 && ip -n cloud link set veg1 up && ip -n cloud link set lo up',
        'mkdir -p -m 0700 /root/wg && (umask 077 && wg genkey > /root/wg/cloud.key) && wg pubkey < /root/wg/cloud.key > /root/wg/cloud.pub',
      ].join('\n'),
    )
    // The gateway's side: the cloud broker's tunnel address (its certificate names localhost), and
    // the vpn section; its key made by the gateway's own command, as the service user.
    await inside(
      [
        'set -e',
        `sed -i -e 's/^  host: localhost$/  host: 10.77.0.2/' -e 's/^  port: ${CLOUD_PORT}$/  port: 8885\\n  servername: localhost/' ${config}`,
        `printf '%s\\n' 'vpn:' '  interfaceName: wgeg0' '  privateKeyFile: keys/wg.key' '  addresses: [10.77.0.1/30]' '  pollMs: 1000' '  peer:' ` +
          `"    publicKey: $(cat /root/wg/cloud.pub)" '    endpoint: 192.168.77.2:51820' '    allowedIps: [10.77.0.2/32]' '    persistentKeepalive: 5' >> ${config}`,
        `cd /etc/edge-gateway && runuser -u edge-gateway -- edge-gateway vpn keys -c ${config} | head -1 > /root/wg/gateway.pub`,
      ].join('\n'),
    )
    expect(await inside('wc -c < /root/wg/gateway.pub')).toBe('45\n')
    await inside(
      [
        'set -e',
        `unshare --mount --propagation private bash -c 'set -e; mkdir -p /run/wireguard && mount -t tmpfs -o mode=0700 tmpfs /run/wireguard; ` +
          `setsid ip netns exec cloud wireguard-go -f wgcloud >/tmp/wgcloud.log 2>&1 & echo $! > /tmp/wgcloud.pid; ` +
          `for i in $(seq 100); do [ -S /run/wireguard/wgcloud.sock ] && break; sleep 0.1; done; ` +
          `ip netns exec cloud wg set wgcloud private-key /root/wg/cloud.key listen-port 51820 peer "$(cat /root/wg/gateway.pub)" allowed-ips 10.77.0.1/32'`,
        'ip -n cloud addr add 10.77.0.2/30 dev wgcloud && ip -n cloud link set wgcloud up',
        // The tunnel address for the gateway; the namespace's own loopback for the consumer (the
        // broker's certificate names localhost).
        "tls='cafile /etc/mosquitto/certs/ca.pem\\ncertfile /etc/mosquitto/certs/server.pem\\nkeyfile /etc/mosquitto/certs/server.key\\nrequire_certificate true\\nuse_identity_as_username true'",
        'printf \'pid_file /tmp/cloud-tunnel.pid\\nlistener 8885 10.77.0.2\\n%b\\nlistener 8885 127.0.0.1\\n%b\\n\' "$tls" "$tls" > /root/cloud-tunnel.conf',
        'ip netns exec cloud mosquitto -c /root/cloud-tunnel.conf -d',
      ].join('\n'),
    )

    // The installer gives the managed tunnel its drop-in and restarts the service; it says done
    // only once the gateway is up, tunnel included.
    const managed = await inside(`bash /root/release/install.sh ${installArgs} 2>&1`, 300_000)
    expect(managed).toContain(
      'changed: /etc/systemd/system/edge-gateway.service.d/vpn.conf (CAP_NET_ADMIN for the managed tunnel)',
    )
    expect(managed).toMatch(/changed: restarted edge-gateway\.service/)
    expect(managed).toMatch(/done: /)
    const mainPid = (await inside('systemctl show -p MainPID --value edge-gateway')).trim()
    // wireguard-go, the service's child, as edge-gateway; its socket where `wg` finds it.
    expect(await inside(`ps -o user=,args= --ppid ${mainPid} | grep wireguard-go`)).toBe(
      'edge-ga+ wireguard-go -f wgeg0\n',
    )
    expect(await inside('stat -c "%U %a" /run/wireguard /run/wireguard/wgeg0.sock')).toBe(
      'edge-gateway 700\nedge-gateway 700\n',
    )
    expect(await inside('systemctl show -p CapabilityBoundingSet -p ProtectSystem edge-gateway')).toBe(
      'CapabilityBoundingSet=cap_net_admin\nProtectSystem=strict\n',
    )

    // A device's message reaches the mosquitto inside the tunnel, and only the tunnel leads there.
    expect((await tryInside('ip route get 10.77.0.2')).out).toMatch(/dev wgeg0/)
    const sub = tryInside(
      `ip netns exec cloud mosquitto_sub -h localhost -p 8885 --cafile /root/pki/ca.pem --cert /root/pki/client.pem --key /root/pki/client.key -i tunnel-consumer -t 'sites/${GATEWAY_ID}/#' -C 1 -W 60 -F '%t %x'`,
      90_000,
    )
    let published = { code: -1, out: '' }
    for (let attempt = 0; attempt < 30 && published.code !== 0; attempt++) {
      await new Promise((r) => setTimeout(r, 1000))
      published = await tryInside(
        `mosquitto_pub -h 127.0.0.1 -p 8883 --psk-identity sensor-1 --psk "$(cat /etc/edge-gateway/keys/sensor-1.psk)" -i sensor-1 -q 1 -t devices/sensor-1/tunnel -m 'through the tunnel'`,
      )
    }
    expect(published, published.out).toMatchObject({ code: 0 })
    const received = await sub
    expect(received.code, received.out).toBe(0)
    const [topic, hex] = received.out.trim().split(' ')
    expect(topic).toBe(`sites/${GATEWAY_ID}/devices/sensor-1/tunnel`)
    expect(hex).toContain(Buffer.from('through the tunnel').toString('hex'))
    expect(await inside('wg show wgeg0 latest-handshakes')).not.toMatch(/\t0\n/)

    // Stopped: the interface and its wireguard-go are gone; the folder stays, so the cloud end's
    // wireguard-go (in its own folder here) would have kept its socket in a shared one too.
    await inside('systemctl stop edge-gateway')
    expect((await tryInside('ip link show wgeg0')).code).not.toBe(0)
    expect((await tryInside('pgrep -u edge-gateway wireguard-go')).code).not.toBe(0)
    expect(await inside('stat -c "%U %a" /run/wireguard')).toBe('edge-gateway 700\n')

    // Back to no tunnel: the drop-in goes, the service runs again.
    await inside(`cp -p /root/gateway.yaml.pre-tunnel ${config}`)
    const off = await inside(`bash /root/release/install.sh ${installArgs} 2>&1`, 300_000)
    expect(off).toContain('changed: removed /etc/systemd/system/edge-gateway.service.d/vpn.conf')
    expect((await inside('systemctl is-active edge-gateway')).trim()).toBe('active')
    await inside(
      'kill "$(cat /tmp/cloud-tunnel.pid)" "$(cat /tmp/wgcloud.pid)"; ip netns del cloud; ip link del veg0 2>/dev/null; rm -f /root/cloud-tunnel.conf',
    ).catch(() => undefined)
  }, 600_000)

  it('says the service did not start, with its error, when it cannot (its status port taken), and exits 1', async () => {
    await inside('systemctl stop edge-gateway')
    // Something else on 127.0.0.1:9464, the starter config's observability port.
    const blocker = (
      await inside(
        `setsid node -e "require('net').createServer().listen(9464, '127.0.0.1')" >/dev/null 2>&1 & echo $!`,
      )
    ).trim()
    try {
      const failed = await tryInside(`bash /root/release/install.sh ${installArgs} 2>&1`, 300_000)
      expect(failed.code, failed.out).toBe(1)
      expect(failed.out).toMatch(/edge-gateway\.service ended while starting/)
      expect(failed.out).toContain('address already in use 127.0.0.1:9464')
      expect(failed.out).toContain('the service does not run: fix the cause above')
      expect(failed.out).not.toMatch(/done: |changed: started/)
    } finally {
      await inside(`kill ${blocker}`)
    }
    // The cause gone, the service runs again: started by this run, or already by systemd's own
    // restart (Restart=on-failure, 2 s), whichever came first.
    const again = await inside(`bash /root/release/install.sh ${installArgs} 2>&1`, 300_000)
    expect(again).toMatch(/changed: started edge-gateway\.service|ok: edge-gateway\.service is active/)
    expect((await inside('systemctl is-active edge-gateway')).trim()).toBe('active')
  }, 600_000)

  it('--upgrade installs the next release, keeps config and state, and restarts the service', async () => {
    const kept =
      'sha256sum /etc/edge-gateway/gateway.yaml /etc/edge-gateway/keys/sensor-1.psk /var/lib/edge-gateway/signing.key'
    const before = await inside(kept)
    const pid = (await inside('systemctl show -p MainPID --value edge-gateway')).trim()
    const out = await inside(
      'bash /root/release/install.sh --upgrade --package /root/release/edge-gateway-next.tgz',
      300_000,
    )
    expect(out).toMatch(new RegExp(`changed: installed edge-gateway ${NEXT_VERSION.replace(/\./g, '\\.')}`))
    expect(out).toMatch(/changed: restarted edge-gateway\.service/)
    expect(out).not.toMatch(/starter config/)
    expect(await inside(kept)).toBe(before)
    // (--version prints what the build embedded; the package's own manifest says what npm installed.)
    expect(
      (
        await inside(
          'node -p "require(\'/opt/edge-gateway/lib/node_modules/edge-gateway/package.json\').version"',
        )
      ).trim(),
    ).toBe(NEXT_VERSION)
    expect((await inside('systemctl is-active edge-gateway')).trim()).toBe('active')
    expect((await inside('systemctl show -p MainPID --value edge-gateway')).trim()).not.toBe(pid)
    // The same tarball again: nothing to do.
    expect(
      await inside(
        'bash /root/release/install.sh --upgrade --package /root/release/edge-gateway-next.tgz',
        300_000,
      ),
    ).toMatch(/nothing to change/)
    // With --no-start a different package goes in under the running service, which is not
    // restarted: the installer says that it runs what it started with.
    const running = (await inside('systemctl show -p MainPID --value edge-gateway')).trim()
    const noStart = await inside(
      'bash /root/release/install.sh --upgrade --no-start --package /root/release/edge-gateway.tgz 2>&1',
      300_000,
    )
    expect(noStart).toMatch(/changed: installed edge-gateway 0\.1\.0/)
    expect(noStart).toContain(
      'warning: edge-gateway.service still runs what it started with, and the package or unit changed under it: restart it soon (systemctl restart edge-gateway)',
    )
    expect((await inside('systemctl show -p MainPID --value edge-gateway')).trim()).toBe(running)
    await inside('systemctl restart edge-gateway')
  }, 300_000)

  it('--uninstall leaves nothing but the config and the state', async () => {
    const out = await inside('bash /root/release/install.sh --uninstall', 120_000)
    expect(out).toMatch(/kept: \/etc\/edge-gateway/)
    expect(out).toMatch(/kept: \/var\/lib\/edge-gateway/)
    const after = await listing()
    const kept = (p: string) => p.startsWith('/etc/edge-gateway') || p.startsWith('/var/lib/edge-gateway')
    // useradd and userdel leave their backups of the account files (passwd-, group-, shadow-, gshadow-).
    const accountBackup = (p: string) => /^\/etc\/(passwd|group|shadow|gshadow)-$/.test(p)
    const beforeSet = new Set(before)
    const added = after.filter((p) => !beforeSet.has(p) && !kept(p) && !accountBackup(p))
    const afterSet = new Set(after)
    const removed = before.filter((p) => !afterSet.has(p))
    expect(added).toEqual([])
    expect(removed).toEqual([])
    expect(after).toContain('/etc/edge-gateway/gateway.yaml')
    expect(after).toContain('/var/lib/edge-gateway')
    expect((await tryInside('id edge-gateway')).code).not.toBe(0)
    expect((await tryInside('systemctl cat edge-gateway')).code).not.toBe(0)
    expect(await inside('stat -c "%U" /etc/edge-gateway /var/lib/edge-gateway')).toBe('root\nroot\n')
    // The listing leaves /var/cache out: the compile cache folder is checked on its own.
    expect(out).toMatch(/changed: removed \/var\/cache\/edge-gateway/)
    expect((await tryInside('test -e /var/cache/edge-gateway')).code).not.toBe(0)
  }, 180_000)

  it('--uninstall --purge removes the config and the state too', async () => {
    const out = await inside('bash /root/release/install.sh --uninstall --purge', 120_000)
    expect(out).toMatch(/purged \/etc\/edge-gateway/)
    expect(out).toMatch(/purged \/var\/lib\/edge-gateway/)
    const beforeSet = new Set(before)
    const accountBackup = (p: string) => /^\/etc\/(passwd|group|shadow|gshadow)-$/.test(p)
    expect((await listing()).filter((p) => !beforeSet.has(p) && !accountBackup(p))).toEqual([])
  }, 180_000)
})

const ROOT_DIR = new URL('../../', import.meta.url).pathname

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await check()) return
    await new Promise((r) => setTimeout(r, 500))
  }
  throw new Error(`not true within ${timeoutMs} ms`)
}
