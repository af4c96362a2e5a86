import { EdgeGatewayError } from '../core/errors.js'

/** Exit codes: 1 runtime failure, 2 bad configuration or usage. */
export const EXIT_RUNTIME = 1
export const EXIT_CONFIG = 2

/**
 * A command given what it cannot use (an option's value, a missing option, a file it will not
 * overwrite): one line naming what was expected, exit 2, like a bad configuration.
 */
export class UsageError extends EdgeGatewayError {
  constructor(message: string) {
    super('CLI_ERR_USAGE', message)
  }
}

/** Codes from other modules that mean the configuration is wrong (exit 2, like CONFIG_*). */
const CONFIG_LIKE = new Set([
  'CLI_ERR_USAGE',
  'CLI_ERR_ROTATION_REFUSED',
  'VPN_ERR_BAD_CONFIG',
  'VPN_ERR_CLOUD_OUTSIDE_TUNNEL',
  'VPN_ERR_KEY_FILE_MISSING',
  'VPN_ERR_KEY_FILE_MODE',
])

/**
 * Prints an error as one line, without a stack trace (set EDGE_GATEWAY_DEBUG=1
 * for one), and returns the exit code to use.
 */
export function reportFatal(err: unknown, stderr: NodeJS.WritableStream, debug: boolean): number {
  if (err instanceof EdgeGatewayError) {
    stderr.write(`edge-gateway: ${err.message.replaceAll('\n', ' ')} [${err.code}]\n`)
    if (debug && err.stack) stderr.write(`${err.stack}\n`)
    return err.code.startsWith('CONFIG_') || CONFIG_LIKE.has(err.code) ? EXIT_CONFIG : EXIT_RUNTIME
  }
  const message = err instanceof Error ? err.message : String(err)
  stderr.write(`edge-gateway: unexpected error: ${message.replaceAll('\n', ' ')}\n`)
  if (debug && err instanceof Error && err.stack) stderr.write(`${err.stack}\n`)
  return EXIT_RUNTIME
}
