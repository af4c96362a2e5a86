import { join, resolve } from 'node:path'
import { createCertificateAuthority } from './ca.js'
import { writePublicFile, writeSecretFile } from './files.js'
import { issueCertificate } from './issue.js'
import type { LabPki } from './types.js'

export const LAB_CA_COMMON_NAME = 'edge-gateway lab CA'
export const LAB_SERVER_COMMON_NAME = 'cloud-broker'
export const LAB_DEFAULT_SERVER_NAMES: readonly string[] = ['127.0.0.1', '::1', 'localhost']
export const LAB_DEFAULT_CLIENT_COMMON_NAME = 'edge-gateway'

/**
 * A throwaway PKI for the lab and tests: a CA, a server certificate for the
 * cloud broker and a client certificate for the gateway, written into `dir` as
 * ca.pem, server.pem, server.key, client.pem, client.key (keys 0600). The CA key
 * is not kept: nothing more can be issued from this CA.
 */
export async function mintLabPki(
  dir: string,
  opts: { serverNames?: string[]; clientCommonName?: string } = {},
): Promise<LabPki> {
  const ca = createCertificateAuthority({ commonName: LAB_CA_COMMON_NAME })
  const server = issueCertificate(ca, {
    commonName: LAB_SERVER_COMMON_NAME,
    kind: 'server',
    altNames: opts.serverNames ?? [...LAB_DEFAULT_SERVER_NAMES],
  })
  const client = issueCertificate(ca, {
    commonName: opts.clientCommonName ?? LAB_DEFAULT_CLIENT_COMMON_NAME,
    kind: 'client',
  })

  const root = resolve(dir)
  const pki: LabPki = {
    dir: root,
    caFile: join(root, 'ca.pem'),
    serverCertFile: join(root, 'server.pem'),
    serverKeyFile: join(root, 'server.key'),
    clientCertFile: join(root, 'client.pem'),
    clientKeyFile: join(root, 'client.key'),
  }
  // Keys first: the directory is created 0700 by the first secret written.
  await writeSecretFile(pki.serverKeyFile, server.keyPem)
  await writeSecretFile(pki.clientKeyFile, client.keyPem)
  await writePublicFile(pki.caFile, ca.certPem)
  await writePublicFile(pki.serverCertFile, server.certPem)
  await writePublicFile(pki.clientCertFile, client.certPem)
  return pki
}
