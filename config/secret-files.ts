import { stat } from 'node:fs/promises'

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
