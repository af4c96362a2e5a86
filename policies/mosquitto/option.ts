import { MosquittoImportError } from './errors.js'

/** `value` if it is a positive safe integer; otherwise throws MOSQ_ERR_BAD_OPTION naming `name`. */
export function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new MosquittoImportError(
      'MOSQ_ERR_BAD_OPTION',
      `Expected \`${name}\` to be a positive integer, got \`${String(value)}\` (${typeof value})`,
    )
  }
  return value
}
