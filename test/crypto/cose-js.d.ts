/** The parts of cose-js 0.9 (CommonJS, untyped) that the cross-check uses. See node_modules/cose-js/lib. */
declare module 'cose-js' {
  interface Headers {
    p?: Record<string, unknown>
    u?: Record<string, unknown>
  }
  interface EncryptOptions {
    externalAAD?: Buffer
    contextIv?: Buffer
    randomSource?: (bytes: number) => Buffer
    encodep?: 'empty'
    excludetag?: boolean
    defaultType?: number
  }
  interface MacOptions {
    encodep?: 'empty'
    excludetag?: boolean
    defaultType?: number
  }
  const cose: {
    encrypt: {
      create(
        headers: Headers,
        payload: Buffer,
        recipient: { key: Buffer },
        options?: EncryptOptions,
      ): Promise<Buffer>
      read(data: Buffer, key: Buffer, options?: EncryptOptions): Promise<Buffer>
    }
    mac: {
      create(
        headers: Headers,
        payload: Buffer,
        recipient: { key: Buffer },
        externalAAD?: Buffer,
        options?: MacOptions,
      ): Promise<Buffer>
      read(data: Buffer, key: Buffer, externalAAD?: Buffer, options?: MacOptions): Promise<Buffer>
    }
    sign: {
      create(
        headers: Headers,
        payload: Buffer,
        signer: { key: { d: Buffer }; externalAAD?: Buffer },
        options?: { excludetag?: boolean },
      ): Promise<Buffer>
      verify(
        data: Buffer,
        verifier: { key: { x: Buffer; y: Buffer }; externalAAD?: Buffer },
        options?: { defaultType?: number },
      ): Promise<Buffer>
    }
  }
  export default cose
}
