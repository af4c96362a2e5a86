import { readFile, stat } from 'node:fs/promises'
import type { GatewayConfig } from '../../config/index.js'
import type { Logger } from '../../core/logger.js'
import { type Metrics, series } from '../../core/metrics.js'
import type { GatewayCertificate } from '../control.js'
import { readBundle } from './check.js'

const DAY_MS = 86_400_000

/** One certificate (or key) the gateway uses, and how long it has left. */
export interface ExpiryEntry {
  /** `cloud client`, `cloud CA`, `issuer CA`, `lan listener <name>`, `lan listener <name> CA`, `signing key`. */
  use: string
  file: string
  subject?: string
  serial?: string
  notAfter?: string
  /** Whole days until notAfter (negative once expired); absent for the signing key. */
  daysLeft?: number
  /** The signing key's age in days (from its file's modification time). */
  ageDays?: number
  /** At or below the largest of cloud.rotation.warnDays. */
  warning: boolean
}

/** The gauge label of each use. */
const LABELS: Array<[RegExp, string]> = [
  [/^cloud client$/, 'cloud_client'],
  [/^cloud CA$/, 'cloud_ca'],
  [/^issuer CA$/, 'issuer_ca'],
  [/^lan listener .* CA$/, 'lan_listener_ca'],
  [/^lan listener /, 'lan_listener'],
]

function labelOf(use: string): string | undefined {
  return LABELS.find(([pattern]) => pattern.test(use))?.[1]
}

/**
 * The expiry watch (docs/rotation.md): every certificate the gateway uses (its cloud client
 * certificate, the CA bundle it verifies the broker with, the issuer CA of rotations, each `tls`
 * listener's certificate and CA) with its days left, and the signing key's age; in
 * `edge-gateway status`, in the health message, as the gauges `certificate_days_left{use=...}`
 * (the smallest per use) and `signing_key_age_days`, and as a warning in the log each time a
 * certificate crosses one of cloud.rotation.warnDays.
 */
export class ExpiryWatch {
  private current: ExpiryEntry[] = []
  /** Per certificate (use and serial): the smallest threshold already warned about. */
  private readonly warned = new Map<string, number>()

  constructor(
    private readonly config: Readonly<GatewayConfig>,
    private readonly certificate: GatewayCertificate,
    metrics: Metrics,
    private readonly logger: Logger,
  ) {
    // A gauge per use the config has: a missing one must not read as "0 days left".
    const uses = ['cloud_client', 'cloud_ca']
    if (config.cloud.rotation.issuerCaFile) uses.push('issuer_ca')
    if (config.lan.listeners.some((l) => l.type === 'tls')) uses.push('lan_listener', 'lan_listener_ca')
    for (const label of uses) {
      metrics.gauge(series('certificate_days_left', { use: label }), () => this.smallest(label))
    }
    metrics.gauge(
      'signing_key_age_days',
      () => this.current.find((e) => e.use === 'signing key')?.ageDays ?? 0,
    )
  }

  get entries(): readonly ExpiryEntry[] {
    return this.current
  }

  private smallest(label: string): number {
    const days = this.current.filter((e) => labelOf(e.use) === label && e.daysLeft !== undefined)
    return days.length === 0 ? 0 : Math.min(...days.map((e) => e.daysLeft as number))
  }

  /** Reads the files again (a rotation, a reload or an operator may have replaced them). */
  async refresh(now = Date.now()): Promise<readonly ExpiryEntry[]> {
    const { cloud, lan } = this.config
    const warnAt = Math.max(...cloud.rotation.warnDays)
    const entries: ExpiryEntry[] = []
    const add = (use: string, file: string, cert: import('node:crypto').X509Certificate) => {
      const notAfter = Date.parse(cert.validTo)
      const daysLeft = Math.floor((notAfter - now) / DAY_MS)
      entries.push({
        use,
        file,
        subject: cert.subject.replace(/\n/g, ', '),
        serial: cert.serialNumber,
        notAfter: new Date(notAfter).toISOString(),
        daysLeft,
        warning: daysLeft <= warnAt,
      })
    }
    add('cloud client', cloud.certFile, this.certificate.certificate)
    const bundle = async (use: string, file: string) => {
      try {
        for (const cert of readBundle(await readFile(file, 'utf8')) ?? []) add(use, file, cert)
      } catch {
        // Unreadable now: the link and the listeners report their own errors.
      }
    }
    await bundle('cloud CA', cloud.caFile)
    if (cloud.rotation.issuerCaFile) await bundle('issuer CA', cloud.rotation.issuerCaFile)
    for (const [i, listener] of lan.listeners.entries()) {
      if (listener.type !== 'tls') continue
      const name = listener.name ?? `lan.listeners[${i}]`
      await bundle(`lan listener ${name}`, listener.certFile)
      await bundle(`lan listener ${name} CA`, listener.caFile)
    }
    const signingFile = cloud.signing.keyFile
    if (signingFile) {
      try {
        const ageDays = Math.floor((now - (await stat(signingFile)).mtimeMs) / DAY_MS)
        entries.push({ use: 'signing key', file: signingFile, ageDays, warning: false })
      } catch {
        // Not made yet.
      }
    }
    this.current = entries
    this.warn(warnAt)
    return entries
  }

  private warn(warnAt: number): void {
    const thresholds = [...this.config.cloud.rotation.warnDays].sort((a, b) => a - b)
    for (const e of this.current) {
      if (e.daysLeft === undefined || e.daysLeft > warnAt) continue
      const crossed = thresholds.find((t) => (e.daysLeft as number) <= t) as number
      const key = `${e.use}\u0000${e.serial}`
      if ((this.warned.get(key) ?? Number.POSITIVE_INFINITY) <= crossed) continue
      this.warned.set(key, crossed)
      this.logger.warn(
        {
          use: e.use,
          file: e.file,
          subject: e.subject,
          serial: e.serial,
          notAfter: e.notAfter,
          daysLeft: e.daysLeft,
        },
        e.daysLeft < 0
          ? `the ${e.use} certificate (${e.file}) expired on ${e.notAfter}`
          : `the ${e.use} certificate (${e.file}) expires in ${e.daysLeft} day(s), on ${e.notAfter}`,
      )
    }
  }
}
