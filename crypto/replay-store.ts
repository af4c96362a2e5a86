import { ReplayStoreError } from './replay-errors.js'
import { checkSave, copyWindows } from './replay-snapshot.js'
import type { ReplayState } from './replay-window.js'

export type { ReplayState } from './replay-window.js'

/**
 * Durable home of the replay windows, one per sender key (`kidHex`: the key
 * id as lowercase hex). Every implementation passes the contract suite in
 * test/crypto/replay-store-contract.ts.
 */
export interface ReplayStore {
  /** Every window saved so far (copies). */
  load(): Promise<Map<string, ReplayState>>
  /**
   * Records the window of `kidHex`. Resolves only once that state is durable,
   * so a caller may acknowledge the message (MQTT PUBACK) after it.
   */
  save(kidHex: string, state: ReplayState): Promise<void>
  /** Waits for the saves in progress, then refuses new ones. */
  close(): Promise<void>
}

/**
 * In-memory store for tests. Pass the same `backing` map to a second instance
 * to simulate a restart.
 */
export class MemoryReplayStore implements ReplayStore {
  /** Number of completed saves. */
  writes = 0
  private closed = false

  constructor(readonly backing: Map<string, ReplayState> = new Map()) {}

  async load(): Promise<Map<string, ReplayState>> {
    return copyWindows(this.backing)
  }

  async save(kidHex: string, state: ReplayState): Promise<void> {
    const copy = checkSave(kidHex, state)
    if (this.closed)
      throw new ReplayStoreError('CRYPTO_ERR_REPLAY_STORE_CLOSED', 'The replay store is closed')
    await Promise.resolve()
    this.backing.set(kidHex, copy)
    this.writes++
  }

  async close(): Promise<void> {
    this.closed = true
  }
}

export { FileReplayStore, type FileReplayStoreOptions, type ReplayRecovery } from './replay-file-store.js'
