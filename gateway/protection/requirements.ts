import { topicMatchesFilter } from '../../policies/topic-filter.js'

export type ProtectionMode = 'none' | 'mac' | 'sealed' | 'signed'

/** Per-topic protection requirement: the first entry whose filter matches the topic decides; default none. */
export class ProtectionRequirements {
  constructor(private readonly entries: ReadonlyArray<{ topic: string; mode: ProtectionMode }>) {}

  modeFor(topic: string): ProtectionMode {
    for (const entry of this.entries) if (topicMatchesFilter(topic, entry.topic)) return entry.mode
    return 'none'
  }

  get empty(): boolean {
    return this.entries.length === 0
  }
}
