/**
 * Connections not yet proven: accepted by a LAN listener, but whose client has
 * not been authenticated (TLS handshake or CONNECT still to come). Each costs
 * memory (a TLS session is tens of kilobytes) and a file descriptor before the
 * peer has shown anything, so they are bounded per source address and in all;
 * one past a bound is closed as it is accepted, before any TLS state exists.
 * An authenticated device no longer counts, however many there are.
 */
export interface AdmissionLimits {
  /** Unproven connections from one address at once. */
  perAddress: number
  /** Unproven connections at once, over every address and listener. */
  total: number
}

export type AdmissionRefusal = 'pending_per_address' | 'pending_total'

export class Admission {
  /** Unproven connections by address. */
  private readonly byAddress = new Map<string, number>()
  /** The address of each unproven connection, by `address|port`. */
  private readonly slots = new Map<string, string>()

  constructor(private readonly limits: AdmissionLimits) {}

  /** Unproven connections now. */
  get pending(): number {
    return this.slots.size
  }

  /** Takes a slot for a connection just accepted; the reason when it must be closed instead. */
  admit(address: string, port: number | undefined): AdmissionRefusal | undefined {
    if (this.slots.size >= this.limits.total) return 'pending_total'
    const held = this.byAddress.get(address) ?? 0
    if (held >= this.limits.perAddress) return 'pending_per_address'
    this.byAddress.set(address, held + 1)
    this.slots.set(Admission.key(address, port), address)
    return undefined
  }

  /** Gives the slot back (the client was authenticated, or the connection closed); once only. */
  release(address: string, port: number | undefined): void {
    const key = Admission.key(address, port)
    if (!this.slots.delete(key)) return
    const held = (this.byAddress.get(address) ?? 1) - 1
    if (held > 0) this.byAddress.set(address, held)
    else this.byAddress.delete(address)
  }

  static key(address: string, port: number | undefined): string {
    return `${address}|${port ?? ''}`
  }
}
