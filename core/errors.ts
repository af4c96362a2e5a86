/**
 * Base class for every error the project throws on purpose. `code` is stable
 * (documented in docs/security.md); `message` quotes the bad value and what was
 * expected, never a secret.
 */
export class EdgeGatewayError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }
}

/** Message of an unknown thrown value, for logs. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message
  return String(err)
}
