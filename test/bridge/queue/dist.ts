import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('../../../', import.meta.url))

/**
 * Fails unless dist/bridge/queue holds a build at least as new as every
 * bridge/queue source: the child processes of these tests run the compiled queue.
 */
export async function requireFreshBuild(): Promise<void> {
  const sources = join(root, 'bridge/queue')
  const built = join(root, 'dist/bridge/queue')
  for (const name of await readdir(sources)) {
    if (!name.endsWith('.ts')) continue
    const js = name.replace(/\.ts$/, '.js')
    const source = await stat(join(sources, name))
    const compiled = await stat(join(built, js)).catch(() => undefined)
    if (!compiled || compiled.mtimeMs < source.mtimeMs) {
      throw new Error(
        `dist/bridge/queue/${js} is ${compiled ? 'older than its source' : 'missing'}: this test runs the ` +
          'compiled queue in a child process, run `npm run build` first',
      )
    }
  }
}
