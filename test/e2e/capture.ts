import type { LabProcess, NetnsLab } from './netns.js'

export interface CaptureResult {
  /** Packets tcpdump counted ("N packets captured"). */
  captured: number
  /** One line per packet (`tcpdump -n -l`). */
  packets: string[]
}

/** A running `tcpdump` inside a namespace. */
export class Capture {
  constructor(private readonly proc: LabProcess) {}

  /** Stops tcpdump (SIGINT, so it prints its counts) and returns what it saw. */
  async stop(): Promise<CaptureResult> {
    this.proc.signal('SIGINT')
    const exit = await Promise.race([
      this.proc.daemon.exited,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 5000)),
    ])
    if (exit === null) await this.proc.stop(1000)
    const lines = this.proc.lines()
    const counted = lines.map((l) => /^(\d+) packets? captured/.exec(l)?.[1]).find((n) => n !== undefined)
    if (counted === undefined) {
      throw new Error(`tcpdump printed no packet count: ${lines.slice(-5).join(' | ')}`)
    }
    const packets = lines.filter((l) => /^\d{2}:\d{2}:\d{2}\.\d+ /.test(l))
    return { captured: Number(counted), packets }
  }
}

/**
 * Starts `tcpdump -i <iface> -n -l <filter>` inside `ns` and resolves once it is capturing.
 * The filter is one argument (no shell).
 */
export async function startCapture(
  lab: NetnsLab,
  ns: string,
  iface: string,
  filter: string,
): Promise<Capture> {
  const proc = await lab.spawn(ns, 'tcpdump', ['-i', iface, '-n', '-l', '-p', filter])
  await proc.waitForLine(/^listening on /)
  return new Capture(proc)
}
