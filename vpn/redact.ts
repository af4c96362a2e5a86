import { REDACTED } from './secret.js'

/** Any WireGuard-key-shaped token (public keys included: over-redacting is cheap). */
const KEY_TOKEN = /[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/g
/** `PrivateKey = ...` and `PresharedKey = ...` lines of a config, whatever the value. */
const KEY_LINE = /\b(PrivateKey|PresharedKey|private[-_ ]?key|preshared[-_ ]?key)(\s*[=:]\s*)\S+/gi

/** The key-shaped tokens in `text` (for example the keys inside a config sent on stdin). */
export function keyTokens(text: string): string[] {
  return [...new Set(text.match(KEY_TOKEN) ?? [])]
}

/**
 * `text` with every occurrence of a `secrets` entry and every `PrivateKey = ...` style value
 * replaced by `[redacted]`. Used on everything a command prints before it reaches an error or a log.
 */
export function redact(text: string, secrets: readonly string[] = []): string {
  let out = text
  // Longest first, so a secret that contains another is replaced whole.
  for (const secret of [...secrets].sort((a, b) => b.length - a.length)) {
    if (secret.length >= 8) out = out.split(secret).join(REDACTED)
  }
  return out.replace(KEY_LINE, `$1$2${REDACTED}`)
}
