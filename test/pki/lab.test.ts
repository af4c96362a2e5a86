import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readdir, readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { mintLabPki } from '../../pki/lab.js'
import type { LabPki } from '../../pki/types.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

async function x509(path: string): Promise<X509Certificate> {
  return new X509Certificate(await readFile(path))
}

describe('mintLabPki', () => {
  let dir: string
  let pki: LabPki
  beforeAll(async () => {
    dir = await makeTempDir('pki-lab-')
    pki = await mintLabPki(join(dir, 'lab'))
  })
  afterAll(async () => {
    await removeDir(dir)
  })

  it('returns the paths of the five files it wrote, and nothing else is in the directory', async () => {
    const lab = join(dir, 'lab')
    expect(pki).toEqual({
      dir: lab,
      caFile: join(lab, 'ca.pem'),
      serverCertFile: join(lab, 'server.pem'),
      serverKeyFile: join(lab, 'server.key'),
      clientCertFile: join(lab, 'client.pem'),
      clientKeyFile: join(lab, 'client.key'),
    })
    expect((await readdir(lab)).sort()).toEqual([
      'ca.pem',
      'client.key',
      'client.pem',
      'server.key',
      'server.pem',
    ])
  })

  it('writes keys 0600, certificates 0644, in a 0700 directory', async () => {
    const mode = async (path: string) => (await stat(path)).mode & 0o777
    expect(await mode(pki.dir)).toBe(0o700)
    expect(await mode(pki.serverKeyFile)).toBe(0o600)
    expect(await mode(pki.clientKeyFile)).toBe(0o600)
    expect(await mode(pki.caFile)).toBe(0o644)
    expect(await mode(pki.serverCertFile)).toBe(0o644)
    expect(await mode(pki.clientCertFile)).toBe(0o644)
  })

  it('makes the lab CA, a cloud-broker server certificate and an edge-gateway client certificate', async () => {
    const ca = await x509(pki.caFile)
    const server = await x509(pki.serverCertFile)
    const client = await x509(pki.clientCertFile)
    expect(ca.subject).toBe('CN=edge-gateway lab CA')
    expect(ca.ca).toBe(true)
    expect(server.subject).toBe('CN=cloud-broker')
    expect(server.subjectAltName).toBe('IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1, DNS:localhost')
    expect(server.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1'])
    expect(client.subject).toBe('CN=edge-gateway')
    expect(client.keyUsage).toEqual(['1.3.6.1.5.5.7.3.2'])
    for (const leaf of [server, client]) {
      expect(leaf.checkIssued(ca)).toBe(true)
      expect(leaf.verify(ca.publicKey)).toBe(true)
    }
  })

  it('pairs each certificate with its key file', async () => {
    const server = await x509(pki.serverCertFile)
    const client = await x509(pki.clientCertFile)
    expect(server.checkPrivateKey(createPrivateKey(await readFile(pki.serverKeyFile)))).toBe(true)
    expect(client.checkPrivateKey(createPrivateKey(await readFile(pki.clientKeyFile)))).toBe(true)
  })

  it('takes other server names and client common name', async () => {
    const other = await mintLabPki(join(dir, 'other'), {
      serverNames: ['10.0.0.5', 'cloud.lan'],
      clientCommonName: 'gw-42',
    })
    expect((await x509(other.serverCertFile)).subjectAltName).toBe('IP Address:10.0.0.5, DNS:cloud.lan')
    expect((await x509(other.clientCertFile)).subject).toBe('CN=gw-42')
    // A new CA each time.
    expect((await x509(other.serverCertFile)).verify((await x509(pki.caFile)).publicKey)).toBe(false)
  })
})
