import { describe, expect, it } from 'vitest'
import { describeLinkError, linkErrorMessage } from '../../bridge/link-errors.js'

const TARGET = 'cloud.example.com:8883'

function error(message: string, code?: string | number): Error & { code?: string | number } {
  return Object.assign(new Error(message), code === undefined ? {} : { code })
}

describe('describeLinkError', () => {
  it('reads a TLS alert about the client certificate as the cloud refusing it', () => {
    const expected = (alert: string) =>
      `the cloud broker at ${TARGET} refused the gateway's client certificate (TLS alert: ${alert}); is it signed by a CA the cloud trusts, and still valid?`
    const unknownCa = 'C0D2B1A5A27F0000:error:0A000418:SSL routines:ssl3_read_bytes:tlsv1 alert unknown ca'
    expect(describeLinkError(error(`${unknownCa}\n`, 'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA'), TARGET)).toBe(
      expected(unknownCa),
    )
    expect(describeLinkError(error('tlsv13 alert certificate required'), TARGET)).toBe(
      expected('tlsv13 alert certificate required'),
    )
    expect(describeLinkError(error('sslv3 alert bad certificate'), TARGET)).toBe(
      expected('sslv3 alert bad certificate'),
    )
    expect(describeLinkError(error('sslv3 alert certificate revoked'), TARGET)).toBe(
      expected('sslv3 alert certificate revoked'),
    )
  })

  it("reads a broker certificate not made for servers as the gateway's distrust, in OpenSSL 3 and 1.1 words", () => {
    const expected = (message: string) =>
      `the gateway does not trust the certificate of the cloud broker at ${TARGET} (${message}); check cloud.caFile and cloud.servername`
    expect(describeLinkError(error('unsuitable certificate purpose', 'INVALID_PURPOSE'), TARGET)).toBe(
      expected('unsuitable certificate purpose'),
    )
    expect(describeLinkError(error('unsupported certificate purpose'), TARGET)).toBe(
      expected('unsupported certificate purpose'),
    )
    // The broker's TLS alert about the gateway's own certificate is still the cloud refusing it.
    expect(describeLinkError(error('sslv3 alert unsupported certificate'), TARGET)).toMatch(
      /refused the gateway's client certificate/,
    )
  })

  it("reads a self-signed, unverifiable, expired or misnamed server certificate as the gateway's distrust", () => {
    const expected = (message: string) =>
      `the gateway does not trust the certificate of the cloud broker at ${TARGET} (${message}); check cloud.caFile and cloud.servername`
    const cases: Array<[string, string]> = [
      ['self-signed certificate in certificate chain', 'SELF_SIGNED_CERT_IN_CHAIN'],
      ['self signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'],
      ['certificate has expired', 'CERT_HAS_EXPIRED'],
      ['unable to verify the first certificate', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
      ['unable to get local issuer certificate', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
      [
        "Hostname/IP does not match certificate's altnames: Host: x. is not in the cert's altnames",
        'ERR_TLS_CERT_ALTNAME_INVALID',
      ],
      ['certificate is not yet valid', 'CERT_NOT_YET_VALID'],
    ]
    for (const [message, code] of cases) {
      expect(describeLinkError(error(message, code), TARGET), code).toBe(expected(message))
    }
    // The code alone is enough.
    expect(describeLinkError(error('verification failed', 'CERT_HAS_EXPIRED'), TARGET)).toBe(
      expected('verification failed'),
    )
  })

  it("leaves out Node's advice to use the system's CAs: the cloud link trusts cloud.caFile alone", () => {
    // As Node.js 24 words an unverifiable broker certificate (22.15 and later add the same advice).
    const node24 =
      'unable to verify the first certificate; if the root CA is installed locally, try running Node.js with --use-system-ca'
    const err = error(node24, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE')
    expect(linkErrorMessage(err)).toBe('unable to verify the first certificate')
    expect(describeLinkError(err, TARGET)).toBe(
      `the gateway does not trust the certificate of the cloud broker at ${TARGET} (unable to verify the first certificate); check cloud.caFile and cloud.servername`,
    )
    // Only that advice, at the end, is taken out.
    expect(linkErrorMessage(error('use-system-ca is mentioned here; and more'))).toBe(
      'use-system-ca is mentioned here; and more',
    )
    expect(linkErrorMessage(error('  socket hang up\n'))).toBe('socket hang up')
  })

  it('reads ECONNREFUSED as nothing listening', () => {
    expect(describeLinkError(error('connect ECONNREFUSED 127.0.0.1:8883', 'ECONNREFUSED'), TARGET)).toBe(
      `the cloud broker at ${TARGET} refused the connection (nothing listening?)`,
    )
  })

  it('reads a timeout as no answer in time', () => {
    const expected = `the cloud broker at ${TARGET} did not answer in time`
    expect(describeLinkError(error('connect ETIMEDOUT 203.0.113.1:8883', 'ETIMEDOUT'), TARGET)).toBe(expected)
    expect(describeLinkError(error('connack timeout'), TARGET)).toBe(expected)
  })

  it('reads a reset during set-up as a closed connection, hinting at TLS 1.3', () => {
    const expected = (message: string) =>
      `the cloud broker at ${TARGET} closed the connection during set-up (${message}); under TLS 1.3 a refused client certificate shows this way`
    expect(describeLinkError(error('read ECONNRESET', 'ECONNRESET'), TARGET)).toBe(
      expected('read ECONNRESET'),
    )
    expect(describeLinkError(error('socket hang up'), TARGET)).toBe(expected('socket hang up'))
    expect(describeLinkError(error('write EPIPE', 'EPIPE'), TARGET)).toBe(expected('write EPIPE'))
  })

  it('reads a reset of an established link as a reset of that link, never as a set-up failure', () => {
    const reset = (message: string) =>
      `the established connection to the cloud broker at ${TARGET} was reset (${message})`
    expect(describeLinkError(error('read ECONNRESET', 'ECONNRESET'), TARGET, 'established')).toBe(
      reset('read ECONNRESET'),
    )
    expect(describeLinkError(error('socket hang up'), TARGET, 'established')).toBe(reset('socket hang up'))
    expect(describeLinkError(error('write EPIPE', 'EPIPE'), TARGET, 'established')).toBe(reset('write EPIPE'))
    expect(describeLinkError(error('Keepalive timeout'), TARGET, 'established')).toBe(
      `the cloud broker at ${TARGET} stopped answering on the established connection (Keepalive timeout)`,
    )
    expect(describeLinkError(error('something else'), TARGET, 'established')).toBe(
      `the established connection to the cloud broker at ${TARGET} failed: something else`,
    )
    // The same reset during set-up keeps its TLS 1.3 hint; set-up is the default.
    expect(describeLinkError(error('read ECONNRESET', 'ECONNRESET'), TARGET, 'set-up')).toBe(
      describeLinkError(error('read ECONNRESET', 'ECONNRESET'), TARGET),
    )
    expect(describeLinkError(error('read ECONNRESET', 'ECONNRESET'), TARGET)).toContain('during set-up')
  })

  it('reads a CONNACK refusal as the cloud refusing the gateway', () => {
    expect(describeLinkError(error('Connection refused: Not authorized', 5), TARGET)).toBe(
      `the cloud broker at ${TARGET} refused the gateway: Connection refused: Not authorized`,
    )
    expect(describeLinkError(error('Connection refused: Bad User Name or Password', 4), TARGET)).toBe(
      `the cloud broker at ${TARGET} refused the gateway: Connection refused: Bad User Name or Password`,
    )
  })

  it('falls back to the raw message for anything else', () => {
    expect(describeLinkError(error('Connection refused: Server unavailable', 3), TARGET)).toBe(
      `cloud connection to ${TARGET} failed: Connection refused: Server unavailable`,
    )
    expect(describeLinkError(error('getaddrinfo ENOTFOUND cloud.example.com', 'ENOTFOUND'), TARGET)).toBe(
      `cloud connection to ${TARGET} failed: getaddrinfo ENOTFOUND cloud.example.com`,
    )
    expect(describeLinkError(error(''), TARGET)).toBe(`cloud connection to ${TARGET} failed: `)
  })

  it('names the target in every branch', () => {
    const samples = [
      error('tlsv1 alert unknown ca'),
      error('self signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'),
      error('connect ECONNREFUSED', 'ECONNREFUSED'),
      error('connack timeout'),
      error('read ECONNRESET', 'ECONNRESET'),
      error('Connection refused: Not authorized', 5),
      error('something else'),
    ]
    const texts = samples.map((e) => describeLinkError(e, 'mqtts://other-target:9999'))
    expect(new Set(texts).size).toBe(samples.length)
    for (const text of texts) expect(text).toContain('mqtts://other-target:9999')
  })
})
