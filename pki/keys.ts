import { generateKeyPairSync } from 'node:crypto'
import forge from 'node-forge'

export interface RsaKey {
  privateKey: forge.pki.rsa.PrivateKey
  publicKey: forge.pki.rsa.PublicKey
  /** PKCS#8 PEM, unencrypted. */
  keyPem: string
}

/**
 * A fresh RSA 2048 key. Node's native generator (OpenSSL) does the work, so it
 * takes a fraction of a second whatever `forge.options.usePureJavaScript` says;
 * forge only gets a parsed copy to sign with.
 */
export function generateRsaKey(): RsaKey {
  const { privateKey: keyPem } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicExponent: 0x10001,
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    publicKeyEncoding: { type: 'spki', format: 'pem' },
  })
  const privateKey = forge.pki.privateKeyFromPem(keyPem) as forge.pki.rsa.PrivateKey
  const publicKey = forge.pki.rsa.setPublicKey(privateKey.n, privateKey.e)
  return { privateKey, publicKey, keyPem }
}
