import { assertFreshBuild } from '../../helpers/fresh-build.js'

/**
 * Fails unless dist/ holds a build of the sources as they are now: the child processes of
 * these tests run the compiled queue (dist/bridge/queue), which imports other compiled folders.
 */
export async function requireFreshBuild(): Promise<void> {
  assertFreshBuild()
}
