import { mkdir, rm, utimes, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { assertFreshBuild, type BuildLayout, projectLayout, staleBuildProblem } from './fresh-build.js'
import { makeTempDir, removeDir } from './tmp.js'

/** Fixed times, so nothing depends on the clock or the file system's mtime resolution. */
const BUILT = new Date('2026-01-01T12:00:00Z')
const BEFORE = new Date('2026-01-01T11:00:00Z')
const AFTER = new Date('2026-01-01T13:00:00Z')

/**
 * The check every CLI spawner runs (test/cli/run-cli.ts) before it starts the bundled CLI, on
 * a temporary copy of the layout: sources in two folders, a tsconfig, and a dist/ "built" (and
 * bundled) at BUILT from sources last changed at BEFORE.
 */
describe('staleBuildProblem', () => {
  let root: string
  let layout: BuildLayout

  async function file(path: string, mtime: Date): Promise<void> {
    const full = join(root, path)
    await mkdir(dirname(full), { recursive: true })
    await writeFile(full, '// fixture\n')
    await utimes(full, mtime, mtime)
  }

  beforeEach(async () => {
    root = await makeTempDir('edge-gw-fresh-build-')
    layout = {
      root,
      sourceDirs: ['core', 'bridge'],
      inputFiles: ['tsconfig.json', 'package.json'],
      outDir: 'dist',
      bundle: 'dist/bin/edge-gateway.js',
    }
    await file('tsconfig.json', BEFORE)
    await file('package.json', BEFORE)
    await file('core/errors.ts', BEFORE)
    await file('core/types.d.ts', BEFORE)
    await file('bridge/queue/reader.ts', BEFORE)
    await file('dist/core/errors.js', BUILT)
    await file('dist/bridge/queue/reader.js', BUILT)
    await file('dist/bin/edge-gateway.js', BUILT)
  })

  afterEach(async () => {
    await removeDir(root)
  })

  it('accepts a build newer than every source and build input', () => {
    expect(staleBuildProblem(layout)).toBeNull()
  })

  it('accepts a source saved in the same instant as the build', async () => {
    await utimes(join(root, 'core/errors.ts'), BUILT, BUILT)
    expect(staleBuildProblem(layout)).toBeNull()
  })

  it('refuses a build when a nested source changed after it', async () => {
    await utimes(join(root, 'bridge/queue/reader.ts'), AFTER, AFTER)
    const message =
      'dist/ is older than the sources: bridge/queue/reader.ts changed after the build (dist/core/errors.js predates it), ' +
      'so this test would run stale code; run `npm run build` first (`npm test` does it)'
    expect(staleBuildProblem(layout)).toBe(message)
    // What runCli, spawnCli, builtCli and the queue's child-process tests call before they run dist/.
    expect(() => assertFreshBuild(layout)).toThrow(new Error(message))
  })

  it('dates the build by its oldest output: one fresh file does not hide an old one', async () => {
    await utimes(join(root, 'dist/bridge/queue/reader.js'), AFTER, AFTER)
    await utimes(join(root, 'core/errors.ts'), AFTER, AFTER)
    expect(staleBuildProblem(layout)).toBe(
      'dist/ is older than the sources: core/errors.ts changed after the build (dist/core/errors.js predates it), ' +
        'so this test would run stale code; run `npm run build` first (`npm test` does it)',
    )
  })

  it('refuses a build when a declaration file or a build input changed after it', async () => {
    await utimes(join(root, 'core/types.d.ts'), AFTER, AFTER)
    expect(staleBuildProblem(layout)).toContain('core/types.d.ts changed after the build')
    await utimes(join(root, 'core/types.d.ts'), BEFORE, BEFORE)
    await utimes(join(root, 'tsconfig.json'), AFTER, AFTER)
    expect(staleBuildProblem(layout)).toContain('tsconfig.json changed after the build')
  })

  it('refuses a build missing the output of a source (a new file not yet compiled)', async () => {
    await file('bridge/cloud-link.ts', BEFORE)
    expect(staleBuildProblem(layout)).toBe(
      'dist/bridge/cloud-link.js is missing (the build of bridge/cloud-link.ts): run `npm run build` first (`npm test` does it)',
    )
  })

  it('refuses when there is no dist/ at all', async () => {
    await rm(join(root, 'dist'), { recursive: true })
    expect(staleBuildProblem(layout)).toBe(
      'dist/core/errors.js is missing (the build of core/errors.ts): run `npm run build` first (`npm test` does it)',
    )
  })

  it('refuses a bundle older than the compile (tsc ran, the bundler did not)', async () => {
    await utimes(join(root, 'dist/bin/edge-gateway.js'), BEFORE, BEFORE)
    expect(staleBuildProblem(layout)).toBe(
      'dist/bin/edge-gateway.js is older than dist/core/errors.js: it bundles an earlier compile, ' +
        'so this test would run stale code; run `npm run build` first (`npm test` does it)',
    )
  })

  it('refuses a compile without its bundle', async () => {
    await rm(join(root, 'dist/bin'), { recursive: true })
    expect(staleBuildProblem(layout)).toBe(
      'dist/bin/edge-gateway.js is missing (the bundle of dist/cli/main.js): run `npm run build` first (`npm test` does it)',
    )
  })

  it('ignores outputs left over from deleted sources', async () => {
    await file('dist/core/removed.js', BEFORE)
    expect(staleBuildProblem(layout)).toBeNull()
  })

  it('reads the source folders from tsconfig.build.json', async () => {
    await writeFile(join(root, 'tsconfig.build.json'), JSON.stringify({ include: ['core', 'bridge'] }))
    expect(projectLayout(root)).toEqual({
      root,
      sourceDirs: ['core', 'bridge'],
      inputFiles: [
        'tsconfig.json',
        'tsconfig.build.json',
        'package.json',
        'package-lock.json',
        'scripts/bundle.mjs',
        'scripts/bundle-plugins.mjs',
      ],
      outDir: 'dist',
      bundle: 'dist/bin/edge-gateway.js',
    })
  })

  it("covers every folder the project's build compiles", () => {
    expect(projectLayout().sourceDirs).toEqual(
      expect.arrayContaining([
        'cli',
        'core',
        'config',
        'gateway',
        'policies',
        'crypto',
        'device',
        'bridge',
        'vpn',
        'pki',
      ]),
    )
  })
})
