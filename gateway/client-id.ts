/** Client ids never allowed: wildcards, topic separators, control characters. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
const FORBIDDEN = /[+#/\u0000-\u001f\u007f]/

export function isAcceptableClientId(clientId: string): boolean {
  return clientId.length > 0 && clientId.length <= 128 && !FORBIDDEN.test(clientId)
}

/** Compiles client id patterns (exact, or `*` for any run of characters) into one matcher. */
export function compileClientIdPatterns(patterns: ReadonlyArray<string>): (clientId: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.includes('*')))
  const globs = patterns
    .filter((p) => p.includes('*'))
    .map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`, 's'))
  return (clientId) => exact.has(clientId) || globs.some((re) => re.test(clientId))
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}
