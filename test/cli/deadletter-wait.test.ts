import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stringify } from 'yaml'
import { readDeadLetters } from '../../bridge/dead-letter/inspect.js'
import { pendingRequests } from '../../bridge/dead-letter/requests.js'
import { DeadLetterStore, deadLetterDir } from '../../bridge/dead-letter/store.js'
import { statusFilePath } from '../../cli/status-file.js'
import { createLogger } from '../../core/logger.js'
import { message } from '../bridge/queue/contract.js'
import { signalPid, terminate } from '../helpers/processes.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'
import { sleep } from '../integration/clients.js'
import { LogCapture } from '../integration/harness.js'
import { absentCloud, runCli, type StartedGateway, startGatewayCli } from './run-cli.js'

/**
 * docs/bridge.md: `deadletter retry|drop` leave a request that a running gateway applies within a
 * second; the command waits for it `--wait-ms` (0 to 600000, default 10 s) and exits 1 if it was
 * not taken. The gateway here is a real `edge-gateway start` (its cloud away) over a state folder
 * holding three dead letters; "running but not taking requests" is that gateway frozen (SIGSTOP)
 * right after it wrote its status file, which then still says it runs.
 *
 * Taken by a running gateway with the default wait, and left for a stopped gateway (exit 0, applied
 * when it starts): test/integration/dead-letters.test.ts.
 */
describe('deadletter retry --wait-ms', () => {
  let dir: string
  let stateDir: string
  let letters: string
  let configFile: string
  let gateway: StartedGateway | undefined

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-dl-wait-')
    stateDir = join(dir, 'state')
    letters = deadLetterDir(stateDir)
    // Three letters set aside by an earlier run, as the gateway writes them.
    const { store } = await DeadLetterStore.open(letters, {
      quotaBytes: 1024 * 1024,
      logger: createLogger({ level: 'info', destination: new LogCapture() }),
    })
    for (const seq of [1, 2, 3]) {
      expect(await store.add({ seq, message: message(seq) }, 'no_mapping', 'no cloud.topics mapping')).toBe(
        'held',
      )
    }
    await store.close()
    configFile = join(dir, 'gateway.yaml')
    const config = {
      gateway: { id: 'gw-dl-wait', stateDir },
      log: { level: 'info', pretty: false },
      lan: { listeners: [{ type: 'tcp', host: '127.0.0.1', port: 0 }] },
      devices: [],
      cloud: await absentCloud(dir),
    }
    await writeFile(configFile, stringify(config), { mode: 0o600 })
    gateway = await startGatewayCli(configFile, 30_000)
  }, 60_000)

  afterAll(async () => {
    // terminate() sends SIGCONT too: a gateway left frozen by a failed test stops as well.
    if (gateway) await terminate(gateway.child)
    await removeDir(dir)
  })

  const stateOf = async (seq: number) => (await readDeadLetters(letters)).find((l) => l.seq === seq)?.state

  it('a value outside 0 to 600000, or not a whole number, is a usage error (exit 2) and leaves no request', async () => {
    for (const value of ['-1', '600001', '1.5', 'ten', '', ' ', '0x10', '1e3']) {
      const result = await runCli(['deadletter', 'retry', '1', '--wait-ms', value, '-c', configFile])
      expect([result.code, result.stderr], `--wait-ms ${value}`).toEqual([
        2,
        'edge-gateway: --wait-ms must be 0 to 600000\n',
      ])
      expect(result.stdout).toBe('')
    }
    expect(await pendingRequests(letters)).toEqual([])
    expect(await stateOf(1)).toBe('held')
  })

  it('with the gateway running, --wait-ms 600000 (the most) waits until it took the request: exit 0', async () => {
    const result = await runCli(['deadletter', 'retry', '1', '--wait-ms', '600000', '-c', configFile])
    expect([result.code, result.stderr]).toEqual([0, ''])
    expect(result.stdout).toBe(
      'retry of 1 dead letter(s) (gw-seq 1): taken by the running gateway; it sends them again with their gw-seq\n',
    )
    expect(await pendingRequests(letters)).toEqual([])
  })

  it('a running gateway that does not take it within --wait-ms: exit 1 after that long, the request left for later', async () => {
    const child = gateway!.child
    // Frozen just after a status write: for the next 10 s the status file says it runs.
    const statusFile = statusFilePath(stateDir)
    const before = await readFile(statusFile, 'utf8')
    const deadline = Date.now() + 15_000
    let current = before
    while (current === before && Date.now() < deadline) {
      await sleep(20)
      current = await readFile(statusFile, 'utf8').catch(() => before)
    }
    expect(current, 'the status file was not rewritten within 15 s').not.toBe(before)
    signalPid(child.pid, 'SIGSTOP')
    try {
      const startedAt = performance.now()
      const result = await runCli(['deadletter', 'retry', '2', '--wait-ms', '2000', '-c', configFile])
      const tookMs = performance.now() - startedAt
      expect([result.code, result.stdout, result.stderr]).toEqual([
        1,
        '',
        `edge-gateway: the running gateway did not take the request within 2000 ms; it stays waiting in ${letters}/requests and is applied when the gateway reads it\n`,
      ])
      // The wait asked for, not the default 10 s.
      expect(tookMs).toBeGreaterThanOrEqual(2000)
      expect(tookMs).toBeLessThan(9000)
      expect(await pendingRequests(letters)).toHaveLength(1)
      expect(await stateOf(2)).toBe('held')
    } finally {
      signalPid(child.pid, 'SIGCONT')
    }
    // Running again, the gateway reads the request it left: the letter is retried.
    const again = Date.now() + 15_000
    while ((await pendingRequests(letters)).length > 0 && Date.now() < again) await sleep(100)
    expect(await pendingRequests(letters)).toEqual([])
    expect(await stateOf(2)).not.toBe('held')
    expect(await stateOf(3)).toBe('held')
  }, 60_000)
})
