/** The topic prefix a device owns until policies land: `%d` replaced by its id. */
export function devicePrefix(template: string, deviceId: string): string {
  return template.replaceAll('%d', deviceId)
}

/** True when a topic or filter lies wholly under the prefix (so wildcards cannot reach outside it). */
export function isUnderPrefix(topicOrFilter: string, prefix: string): boolean {
  return topicOrFilter.startsWith(prefix) && topicOrFilter.length > prefix.length
}
