import { z } from 'zod'
import { isWireGuardKey } from '../vpn/secret.js'

/** PEM, several lines, or a bare run of 32 or more hex digits (a PSK or master secret): a key, not a path. */
function looksLikeKeyMaterial(text: string): boolean {
  const trimmed = text.trim()
  return (
    /[\r\n]/.test(text) ||
    trimmed.includes('-----BEGIN') ||
    /^(?:[0-9a-fA-F]{2}){16,}$/.test(trimmed) ||
    isWireGuardKey(trimmed)
  )
}

/**
 * The path of a file holding a secret. A value that looks like the secret itself is refused
 * here, by the schema, whose messages never quote it (config/secret-keys.ts); otherwise the
 * file check would print it as a missing file name.
 */
export const secretFilePath = z
  .string()
  .min(1)
  .refine(
    (text) => !looksLikeKeyMaterial(text),
    'the path of a file holding the secret, not the secret itself',
  )
