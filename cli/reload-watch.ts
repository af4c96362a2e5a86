import { type FSWatcher, watch } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { GatewayConfig } from '../config/index.js'

/**
 * Files whose change triggers a reload: the config itself, the policy file, Mosquitto's files, the
 * devices' PSK files, and the certificate, key and CA files of the `tls` listeners.
 */
export function reloadableFiles(configFile: string, config: Readonly<GatewayConfig>): string[] {
  const files = [resolve(configFile)]
  if (config.policies?.file) files.push(config.policies.file)
  for (const f of [config.mosquitto?.aclFile, config.mosquitto?.passwordFile, config.mosquitto?.pskFile]) {
    if (f) files.push(f)
  }
  for (const d of config.devices) if (d.psk) files.push(d.psk.keyFile)
  for (const l of config.lan.listeners) {
    if (l.type === 'tls') files.push(resolve(l.certFile), resolve(l.keyFile), resolve(l.caFile))
  }
  return files
}

/**
 * Calls `onChange` (debounced) when any of the files changes, and on SIGHUP.
 * Folders are watched rather than files, so editors that replace a file by
 * renaming a new one over it are seen too. Returns a function that stops watching.
 */
export function watchForReload(
  files: ReadonlyArray<string>,
  onChange: (why: string) => void,
  debounceMs = 250,
): () => void {
  const wanted = new Set(files)
  const watchers: FSWatcher[] = []
  let timer: NodeJS.Timeout | undefined
  const trigger = (why: string) => {
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => onChange(why), debounceMs)
  }
  for (const dir of new Set(files.map((f) => dirname(f)))) {
    try {
      const watcher = watch(dir, (_event, name) => {
        if (name && wanted.has(`${dir}/${name}`)) trigger(`${dir}/${name} changed`)
      })
      watcher.on('error', () => undefined)
      watchers.push(watcher)
    } catch {
      // A folder that cannot be watched still reloads on SIGHUP.
    }
  }
  const onHup = () => trigger('SIGHUP')
  process.on('SIGHUP', onHup)
  return () => {
    if (timer) clearTimeout(timer)
    process.off('SIGHUP', onHup)
    for (const w of watchers) w.close()
  }
}
