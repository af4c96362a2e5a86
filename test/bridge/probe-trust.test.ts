import { mkdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CloudLink } from '../../bridge/cloud-link.js'
import { createLogger } from '../../core/logger.js'
import { Metrics } from '../../core/metrics.js'
import { createCertificateAuthority, type LabPki, mintLabPki } from '../../pki/index.js'
import { labLinkConfig } from '../helpers/cloud-link-config.js'
import { CloudMosquitto } from '../helpers/mosquitto.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

/**
 * CloudLink.probeTrust against a real mosquitto (`require_certificate true`): the TLS handshake a
 * rotation makes before a CA bundle overlap ends, with the pushed bundle alone.
 */
describe('CloudLink.probeTrust', () => {
  let dir: string
  let pki: LabPki
  let cloud: CloudMosquitto
  let link: CloudLink

  beforeAll(async () => {
    dir = await makeTempDir('edge-gw-probe-trust-')
    pki = await mintLabPki(join(dir, 'pki'))
    await mkdir(join(dir, 'cloud'), { mode: 0o700 })
    cloud = await CloudMosquitto.start({
      dir: join(dir, 'cloud'),
      caFile: pki.caFile,
      certFile: pki.serverCertFile,
      keyFile: pki.serverKeyFile,
    })
    link = new CloudLink(
      labLinkConfig(pki, cloud.port),
      'probe-trust',
      createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) }),
      new Metrics(),
    )
    await link.start()
  })

  afterAll(async () => {
    await link?.stop()
    await cloud?.stop()
    await removeDir(dir)
  })

  it('verifies the broker under the CA that issued its certificate', async () => {
    expect(await link.probeTrust(await readFile(pki.caFile), 5_000)).toEqual({ ok: true })
  })

  it('refuses under a bundle that does not hold that CA, saying why', async () => {
    const other = createCertificateAuthority({ commonName: 'another CA' })
    const result = await link.probeTrust(Buffer.from(other.certPem), 5_000)
    expect(result.ok).toBe(false)
    expect(!result.ok && result.cause).toMatch(/certificate/)
  })

  it('a stopped link probes nothing', async () => {
    const stopped = new CloudLink(
      labLinkConfig(pki, cloud.port),
      'probe-trust-stopped',
      createLogger({ level: 'silent', destination: new Writable({ write: (_c, _e, done) => done() }) }),
      new Metrics(),
    )
    expect(await stopped.probeTrust(await readFile(pki.caFile), 5_000)).toEqual({
      ok: false,
      cause: 'the cloud link is stopped',
    })
  })
})
