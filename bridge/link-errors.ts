/**
 * What Node.js (22.15 and later, 24, 26) adds to a certificate verification error: advice to run
 * with `--use-system-ca`. The cloud link trusts `cloud.caFile` alone, never the system's store
 * (any public CA could then vouch for a server with the broker's name), so the advice would lead
 * an operator the wrong way.
 */
const SYSTEM_CA_HINT = /; if the root CA is installed locally, try running Node\.js with --use-system-ca\s*$/

/** A TLS or connection error's message, without Node's `--use-system-ca` advice; trimmed. */
export function linkErrorMessage(err: Error): string {
  return err.message.replace(SYSTEM_CA_HINT, '').trim()
}

/** Where a connection was when it failed: before the CONNACK, or after (the link was up). */
export type LinkPhase = 'set-up' | 'established'

/**
 * Turns what mqtt.js and OpenSSL report about a failed cloud connection into a
 * cause an operator can act on. The message is kept beside it in logs (without Node's
 * `--use-system-ca` advice: linkErrorMessage).
 * A reset means different things in the two phases: during set-up it is how a
 * refused client certificate shows under TLS 1.3; on an established link it is
 * the broker (or something on the path) dropping a working connection.
 */
export function describeLinkError(
  err: Error & { code?: string | number },
  target: string,
  phase: LinkPhase = 'set-up',
): string {
  const message = linkErrorMessage(err)
  const text = `${message} ${err.code ?? ''}`
  if (phase === 'established') {
    if (/ECONNRESET|socket hang up|EPIPE/i.test(text)) {
      return `the established connection to the cloud broker at ${target} was reset (${message})`
    }
    if (/ETIMEDOUT|keepalive|timed? ?out/i.test(text)) {
      return `the cloud broker at ${target} stopped answering on the established connection (${message})`
    }
    return `the established connection to the cloud broker at ${target} failed: ${message}`
  }
  // A broker certificate not made for servers (extended key usage without serverAuth): OpenSSL
  // says "unsuitable" (3.x) or "unsupported certificate purpose" (1.1), not a TLS alert from the broker.
  if (/INVALID_PURPOSE|unsuitable certificate purpose|unsupported certificate purpose/i.test(text)) {
    return `the gateway does not trust the certificate of the cloud broker at ${target} (${message}); check cloud.caFile and cloud.servername`
  }
  if (
    /unknown ca|bad certificate|certificate unknown|certificate required|alert unsupported certificate|revoked/i.test(
      text,
    )
  ) {
    return `the cloud broker at ${target} refused the gateway's client certificate (TLS alert: ${message}); is it signed by a CA the cloud trusts, and still valid?`
  }
  if (
    /self[- ]signed|unable to (get|verify)|UNABLE_TO_VERIFY|CERT_HAS_EXPIRED|CERT_NOT_YET_VALID|ERR_TLS_CERT_ALTNAME_INVALID|certificate has expired/i.test(
      text,
    )
  ) {
    return `the gateway does not trust the certificate of the cloud broker at ${target} (${message}); check cloud.caFile and cloud.servername`
  }
  if (/ECONNREFUSED/.test(text))
    return `the cloud broker at ${target} refused the connection (nothing listening?)`
  if (/ETIMEDOUT|connack timeout|timed? ?out/i.test(text))
    return `the cloud broker at ${target} did not answer in time`
  if (/ECONNRESET|socket hang up|EPIPE/i.test(text)) {
    return `the cloud broker at ${target} closed the connection during set-up (${message}); under TLS 1.3 a refused client certificate shows this way`
  }
  if (/not authori[sz]ed|bad user/i.test(text))
    return `the cloud broker at ${target} refused the gateway: ${message}`
  return `cloud connection to ${target} failed: ${message}`
}
