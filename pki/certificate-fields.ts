import { randomBytes } from 'node:crypto'
import forge from 'node-forge'
import { PkiError } from './errors.js'

/** Leaves room for clocks that run a little behind ours. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000
const DAY_MS = 24 * 60 * 60 * 1000
/** RFC 5280 ub-common-name. */
const MAX_COMMON_NAME = 64
/** @types/node-forge types `valueTagClass` as an asn1.Class; forge really stores the universal tag there. */
const UTF8_STRING_TAG = forge.asn1.Type.UTF8 as number as forge.asn1.Class

/**
 * A random 16-byte serial as forge wants it (hex). The top bit is cleared so the
 * DER INTEGER is positive, and the next one set so it stays 16 bytes with no
 * leading zero byte (OpenSSL refuses padded INTEGERs): 126 random bits.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16)
  bytes[0] = (bytes[0]! & 0x7f) | 0x40
  return bytes.toString('hex')
}

/** notBefore a few minutes in the past for clock skew; notAfter `validDays` from now. */
export function validityWindow(validDays: number, now = Date.now()): { notBefore: Date; notAfter: Date } {
  return { notBefore: new Date(now - CLOCK_SKEW_MS), notAfter: new Date(now + validDays * DAY_MS) }
}

export function checkCommonName(commonName: unknown): string {
  if (typeof commonName !== 'string' || commonName.trim() === '' || commonName.length > MAX_COMMON_NAME) {
    throw new PkiError(
      'PKI_ERR_BAD_OPTION',
      `Expected the \`commonName\` option to be a non-empty string of at most ${MAX_COMMON_NAME} characters, got ${quote(commonName)}`,
    )
  }
  return commonName
}

export function checkValidDays(validDays: unknown, fallback: number): number {
  if (validDays === undefined) return fallback
  if (typeof validDays !== 'number' || !Number.isInteger(validDays) || validDays < 1 || validDays > 36_500) {
    throw new PkiError(
      'PKI_ERR_BAD_OPTION',
      `Expected the \`validDays\` option to be an integer from 1 to 36500, got ${quote(validDays)}`,
    )
  }
  return validDays
}

/** A subject of just a CN, as a UTF8String (RFC 5280); forge would default to PrintableString. */
export function commonNameAttributes(commonName: string): forge.pki.CertificateField[] {
  return [{ name: 'commonName', value: commonName, valueTagClass: UTF8_STRING_TAG }]
}

/**
 * The issuer's subject, ready to be written as a new certificate's issuer.
 * forge parses UTF8String values as raw UTF-8 bytes but encodes them again when
 * writing, which would mangle non-ASCII names; decode them first so the issuer
 * comes out byte-identical.
 */
export function issuerAttributes(issuer: forge.pki.Certificate): forge.pki.CertificateField[] {
  return issuer.subject.attributes.map((attr) =>
    attr.valueTagClass === UTF8_STRING_TAG && typeof attr.value === 'string'
      ? { ...attr, value: forge.util.decodeUtf8(attr.value) }
      : attr,
  )
}

function quote(value: unknown): string {
  return typeof value === 'string' ? `\`${value}\` (string)` : `\`${String(value)}\` (${typeof value})`
}
