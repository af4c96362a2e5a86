import { readFile, stat } from 'node:fs/promises'

/**
 * Checks that a secret file exists, is a regular file and is readable by its
 * owner only (mode 0600 or tighter). Returns a problem description, or null.
 */
export async function secretFileProblem(file: string): Promise<string | null> {
  let info: Awaited<ReturnType<typeof stat>>
  try {
    info = await stat(file)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be read (${code})`
  }
  if (!info.isFile()) return `${file} is not a regular file`
  const mode = info.mode & 0o777
  if ((mode & 0o077) !== 0) {
    return `${file} has mode ${mode.toString(8).padStart(4, '0')}; a key file must be 0600 or tighter (chmod 600 ${file})`
  }
  return null
}

/** Checks that a public file (certificate, CA bundle) exists. */
export async function publicFileProblem(file: string): Promise<string | null> {
  try {
    const info = await stat(file)
    return info.isFile() ? null : `${file} is not a regular file`
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return code === 'ENOENT' ? `${file} does not exist` : `${file} cannot be read (${code})`
  }
}

/** Bounds of an `observability.tokenFile` token (after white space at either end is trimmed). */
export const BEARER_TOKEN_BYTES = { min: 16, max: 1024 } as const

/**
 * Reads a bearer token file: white space at either end is not part of the token. Throws, naming the
 * file (never its content), when the token is shorter than BEARER_TOKEN_BYTES.min (an empty file
 * must not turn the check off) or longer than BEARER_TOKEN_BYTES.max.
 */
export async function readBearerToken(file: string): Promise<Buffer> {
  const token = Buffer.from((await readFile(file, 'utf8')).trim(), 'utf8')
  if (token.length < BEARER_TOKEN_BYTES.min || token.length > BEARER_TOKEN_BYTES.max) {
    throw new Error(
      `${file} holds a token of ${token.length} bytes; a bearer token must be ${BEARER_TOKEN_BYTES.min} to ${BEARER_TOKEN_BYTES.max} bytes (for example: openssl rand -hex 32 > ${file})`,
    )
  }
  return token
}

/** secretFileProblem, and then the token's size (readBearerToken). */
export async function bearerTokenFileProblem(file: string): Promise<string | null> {
  const problem = await secretFileProblem(file)
  if (problem !== null) return problem
  return readBearerToken(file).then(
    () => null,
    (err: NodeJS.ErrnoException) => (err.code ? `${file} cannot be read (${err.code})` : err.message),
  )
}
