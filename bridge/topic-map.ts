/** A prefix rewrite between local and cloud topics. */
export interface PrefixMapping {
  readonly local: string
  readonly cloud: string
}

/** The first mapping whose `local` prefix starts the topic; undefined when none does. */
export function findMapping<M extends PrefixMapping>(
  mappings: ReadonlyArray<M>,
  localTopic: string,
): M | undefined {
  return mappings.find((m) => localTopic.startsWith(m.local))
}

/**
 * Prefix mapping from local to cloud topics: the first mapping whose `local`
 * prefix starts the topic wins, and that prefix is replaced by `cloud`.
 * Topics no mapping matches stay on the LAN.
 */
export function mapTopic(mappings: ReadonlyArray<PrefixMapping>, localTopic: string): string | undefined {
  const m = findMapping(mappings, localTopic)
  return m && m.cloud + localTopic.slice(m.local.length)
}

/** The reverse, for downlink: cloud topic to local topic by the first `cloud` prefix that starts it. */
export function mapCloudTopic(
  mappings: ReadonlyArray<PrefixMapping>,
  cloudTopic: string,
): string | undefined {
  const m = mappings.find((x) => cloudTopic.startsWith(x.cloud))
  return m && m.local + cloudTopic.slice(m.cloud.length)
}
