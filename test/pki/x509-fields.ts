import forge from 'node-forge'

/** Hex keyIdentifier of a certificate's authorityKeyIdentifier extension (forge leaves it unparsed). */
export function authorityKeyIdHex(certPem: string): string | undefined {
  const ext = forge.pki.certificateFromPem(certPem).getExtension('authorityKeyIdentifier') as
    | { value: string }
    | undefined
  if (ext === undefined) return undefined
  const seq = forge.asn1.fromDer(ext.value)
  const keyId = (seq.value as forge.asn1.Asn1[]).find(
    (part) => part.tagClass === forge.asn1.Class.CONTEXT_SPECIFIC && part.type === 0,
  )
  return keyId === undefined ? undefined : forge.util.bytesToHex(keyId.value as string)
}

/** Hex subjectKeyIdentifier as written in the certificate. */
export function subjectKeyIdHex(certPem: string): string | undefined {
  const ext = forge.pki.certificateFromPem(certPem).getExtension('subjectKeyIdentifier') as
    | { subjectKeyIdentifier: string }
    | undefined
  return ext?.subjectKeyIdentifier
}

/** The parsed extension `name` of a PEM certificate, as forge reads it. */
export function extension(certPem: string, name: string): Record<string, unknown> | undefined {
  return forge.pki.certificateFromPem(certPem).getExtension(name) as Record<string, unknown> | undefined
}

/** notAfter - notBefore, in seconds. */
export function validitySeconds(certPem: string): number {
  const { notBefore, notAfter } = forge.pki.certificateFromPem(certPem).validity
  return (notAfter.getTime() - notBefore.getTime()) / 1000
}

export function signatureAlgorithm(certPem: string): string | undefined {
  return forge.pki.oids[forge.pki.certificateFromPem(certPem).siginfo.algorithmOid]
}
