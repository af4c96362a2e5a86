/** esbuild plugins of scripts/bundle.mjs that test/bundle.test.ts also builds with. */

/**
 * mqtt.js and mqtt-packet (the codec aedes uses too) call the `debug` package's loggers about 30
 * times per message forwarded. Off (no DEBUG variable), each call still gathers its arguments into
 * an array before the logger finds it has nothing to do: about 3 KB of garbage per message, a
 * tenth of all the gateway allocates on that path (allocation profile in docs/performance.md,
 * "Allocation per message"). Their `require('debug')` gets this instead: with DEBUG unset when the
 * process starts, every logger is one shared function that does nothing; with DEBUG set, the
 * `debug` package itself, as before (`DEBUG=mqttjs*,mqtt-packet* edge-gateway start ...`).
 * `root` is the folder the real package is found from.
 */
export function debugOffWhenUnset(root) {
  return {
    name: 'debug-off-when-unset',
    setup(b) {
      b.onResolve({ filter: /^debug$/ }, (args) =>
        /[\\/]node_modules[\\/]mqtt(-packet)?[\\/]/.test(args.importer)
          ? { path: 'debug', namespace: 'debug-off-when-unset' }
          : undefined,
      )
      b.onLoad({ filter: /.*/, namespace: 'debug-off-when-unset' }, () => ({
        contents: [
          "if (process.env.DEBUG) module.exports = require('debug')",
          'else {',
          '  const off = Object.assign(function debugOff() {}, { enabled: false, namespace: "", log() {}, destroy() { return false } })',
          '  off.extend = () => off',
          '  const createDebug = () => off',
          '  createDebug.enabled = () => false',
          '  module.exports = createDebug',
          '}',
        ].join('\n'),
        loader: 'js',
        resolveDir: root,
      }))
    },
  }
}
