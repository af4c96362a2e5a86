import { assertKidHex } from './replay-snapshot.js'
import type { ReplayStore } from './replay-store.js'
import { assertSeq, type ReplayVerdict, ReplayWindow } from './replay-window.js'

/**
 * Per-sender replay windows backed by a ReplayStore. `acceptIfFresh` resolves
 * `ok` only once the window that records the number is durable, so the caller
 * can gate the MQTT PUBACK (and the forwarding) on it: a message acknowledged
 * before a crash is refused after the restart.
 */
export class ReplayGuard {
  private readonly windows = new Map<string, ReplayWindow>()
  private loading: Promise<void> | undefined

  constructor(private readonly store: ReplayStore) {}

  /** A guard whose windows are already loaded from `store`. */
  static async open(store: ReplayStore): Promise<ReplayGuard> {
    const guard = new ReplayGuard(store)
    await guard.ready()
    return guard
  }

  /** Loads the windows from the store (once); `acceptIfFresh` calls it itself. */
  ready(): Promise<void> {
    this.loading ??= this.store.load().then(
      (states) => {
        for (const [kidHex, state] of states) this.windows.set(kidHex, ReplayWindow.from(state))
      },
      (err: unknown) => {
        this.loading = undefined
        throw err
      },
    )
    return this.loading
  }

  /**
   * Records `seq` for the sender `kidHex` (its key id as lowercase hex) when it
   * is fresh, and resolves `ok` once that is durable; otherwise resolves why not,
   * without changing anything. Rejects when the store fails; the number is then
   * forgotten again, so the sender's retransmission is not refused as a replay.
   */
  async acceptIfFresh(kidHex: string, seq: number): Promise<ReplayVerdict> {
    assertKidHex(kidHex)
    assertSeq(seq)
    await this.ready()
    let window = this.windows.get(kidHex)
    if (!window) {
      window = new ReplayWindow()
      this.windows.set(kidHex, window)
    }
    const verdict = window.accept(seq)
    if (verdict !== 'ok') return verdict
    try {
      await this.store.save(kidHex, window.state())
    } catch (err) {
      window.forget(seq)
      throw err
    }
    return 'ok'
  }

  /** What `acceptIfFresh` would answer now, without recording anything. */
  async check(kidHex: string, seq: number): Promise<ReplayVerdict> {
    assertKidHex(kidHex)
    assertSeq(seq)
    await this.ready()
    return this.windows.get(kidHex)?.check(seq) ?? 'ok'
  }
}
