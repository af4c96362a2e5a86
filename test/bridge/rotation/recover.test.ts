import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { recoverRotation, rotationFiles } from '../../../bridge/rotation/rotation.js'
import type { CloudConfig } from '../../../config/index.js'
import {
  createCertificateAuthority,
  issueCertificate,
  writePublicFile,
  writeSecretFile,
} from '../../../pki/index.js'
import { makeTempDir, removeDir } from '../../helpers/tmp.js'

const ca = createCertificateAuthority({ commonName: 'CA' })
const oldPair = issueCertificate(ca, { commonName: 'gw', kind: 'client' })
const newPair = issueCertificate(ca, { commonName: 'gw', kind: 'client' })

/**
 * The states a kill -9 can leave a rotation in (docs/rotation.md, "Crash safety"), and what the
 * next start makes of each: always a certificate and key that belong together.
 */
describe('recoverRotation: a rotation cut short by a crash', () => {
  let dir: string
  let cloud: CloudConfig
  let files: ReturnType<typeof rotationFiles>
  const exists = (f: string) =>
    stat(f).then(
      () => true,
      () => false,
    )
  async function installed(): Promise<string> {
    const cert = new X509Certificate(await readFile(cloud.certFile))
    expect(cert.checkPrivateKey(createPrivateKey(await readFile(cloud.keyFile)))).toBe(true)
    return cert.serialNumber
  }
  const serial = (pem: string) => new X509Certificate(pem).serialNumber

  beforeEach(async () => {
    dir = await makeTempDir('edge-gw-recover-')
    cloud = { certFile: join(dir, 'gw.pem'), keyFile: join(dir, 'gw.key') } as CloudConfig
    files = rotationFiles(join(dir, 'state'))
    await writePublicFile(cloud.certFile, oldPair.certPem)
    await writeSecretFile(cloud.keyFile, oldPair.keyPem)
  })
  afterEach(async () => removeDir(dir))

  it('nothing under way: nothing to do', async () => {
    expect(await recoverRotation(cloud, join(dir, 'state'))).toBe('none')
    expect(await installed()).toBe(serial(oldPair.certPem))
  })

  it('killed while the new certificate was tried: the old pair stays; the pending key is kept for a second push', async () => {
    await writeSecretFile(files.pendingKey, newPair.keyPem)
    await writePublicFile(files.staged, newPair.certPem)
    expect(await recoverRotation(cloud, join(dir, 'state'))).toBe('discarded')
    expect(await installed()).toBe(serial(oldPair.certPem))
    expect(await exists(files.staged)).toBe(false)
    expect(await exists(files.pendingKey)).toBe(true)
  })

  it('killed between the two renames (new key, old certificate): the install is finished', async () => {
    await writeSecretFile(files.pendingKey, newPair.keyPem)
    await writePublicFile(files.staged, newPair.certPem)
    await writeSecretFile(cloud.keyFile, newPair.keyPem)
    expect(await recoverRotation(cloud, join(dir, 'state'))).toBe('finished')
    expect(await installed()).toBe(serial(newPair.certPem))
    expect((await stat(cloud.keyFile)).mode & 0o777).toBe(0o600)
    expect(await exists(files.staged)).toBe(false)
    expect(await exists(files.pendingKey)).toBe(false)
  })

  it('killed after both renames, before the clean-up: the new pair, and the leftovers go', async () => {
    await writeSecretFile(files.pendingKey, newPair.keyPem)
    await writePublicFile(files.staged, newPair.certPem)
    await writeSecretFile(cloud.keyFile, newPair.keyPem)
    await writePublicFile(cloud.certFile, newPair.certPem)
    expect(await recoverRotation(cloud, join(dir, 'state'))).toBe('finished')
    expect(await installed()).toBe(serial(newPair.certPem))
    expect(await exists(files.pendingKey)).toBe(false)
  })

  it('a mismatched pair with nothing staged is left alone (the start then says what is wrong)', async () => {
    await writeSecretFile(cloud.keyFile, newPair.keyPem)
    expect(await recoverRotation(cloud, join(dir, 'state'))).toBe('none')
    expect(await readFile(cloud.keyFile, 'utf8')).toBe(newPair.keyPem)
  })
})
