import type { TopicMapping } from '../config/index.js'

/**
 * Prefix mapping from local to cloud topics: the first mapping whose `local`
 * prefix starts the topic wins, and that prefix is replaced by `cloud`.
 * Topics no mapping matches stay on the LAN.
 */
export function mapTopic(mappings: ReadonlyArray<TopicMapping>, localTopic: string): string | undefined {
  for (const m of mappings) {
    if (localTopic.startsWith(m.local)) return m.cloud + localTopic.slice(m.local.length)
  }
  return undefined
}
