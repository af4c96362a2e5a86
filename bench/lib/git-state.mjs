import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** The commit measured, and whether the working tree had changes (a bench of a dirty tree says so). */
export function gitState() {
  const git = (args) =>
    spawnSync('git', args, { cwd: ROOT, encoding: 'utf8', timeout: 5_000 }).stdout?.trim() ?? ''
  const commit = git(['rev-parse', '--short', 'HEAD'])
  return commit
    ? { commit, changedFiles: git(['status', '--porcelain']).split('\n').filter(Boolean).length }
    : null
}
