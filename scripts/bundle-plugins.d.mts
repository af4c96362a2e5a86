import type { Plugin } from 'esbuild'

/** See bundle-plugins.mjs. */
export function debugOffWhenUnset(root: string): Plugin
