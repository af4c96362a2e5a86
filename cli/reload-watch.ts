import { type FSWatcher, watch } from 'node:fs'
import { dirname, resolve } from 'node:path'
import type { GatewayConfig } from '../config/index.js'

/**
 * Files whose change triggers a reload: the config itself, the policy file, Mosquitto's files, the
 * devices' PSK files (the previous key of a rotation too), and the certificate, key and CA files of
 * the `tls` listeners.
 */
export function reloadableFiles(configFile: string, config: Readonly<GatewayConfig>): string[] {
  const files = [resolve(configFile)]
  if (config.policies?.file) files.push(config.policies.file)
  for (const f of [config.mosquitto?.aclFile, config.mosquitto?.passwordFile, config.mosquitto?.pskFile]) {
    if (f) files.push(f)
  }
  for (const d of config.devices) {
    if (d.psk) files.push(d.psk.keyFile)
    if (d.psk?.previous) files.push(d.psk.previous.keyFile)
  }
  for (const l of config.lan.listeners) {
    if (l.type === 'tls') files.push(resolve(l.certFile), resolve(l.keyFile), resolve(l.caFile))
  }
  return files
}

/** What watchForReload returns. */
export interface ReloadWatch {
  /** Watches these files from now on instead (those of the config a reload applied). */
  follow(files: ReadonlyArray<string>): void
  stop(): void
}

/**
 * Calls `onChange` (debounced) when any of the files changes, and on SIGHUP.
 * Folders are watched rather than files, so editors that replace a file by
 * renaming a new one over it are seen too. `follow` changes the files (a reload
 * that added a device adds its key file), keeping SIGHUP taken throughout.
 */
export function watchForReload(
  files: ReadonlyArray<string>,
  onChange: (why: string) => void,
  debounceMs = 250,
): ReloadWatch {
  let wanted = new Set<string>()
  const watchers = new Map<string, FSWatcher>()
  let timer: NodeJS.Timeout | undefined
  const trigger = (why: string) => {
    if (timer) clearTimeout(timer)
    timer = setTimeout(() => onChange(why), debounceMs)
  }
  let stopped = false
  const follow = (next: ReadonlyArray<string>) => {
    // A reload that finishes after the stop must not open watchers again (they would keep the process alive).
    if (stopped) return
    wanted = new Set(next)
    const dirs = new Set(next.map((f) => dirname(f)))
    for (const [dir, watcher] of watchers) {
      if (dirs.has(dir)) continue
      watcher.close()
      watchers.delete(dir)
    }
    for (const dir of dirs) {
      if (watchers.has(dir)) continue
      try {
        const watcher = watch(dir, (_event, name) => {
          if (name && wanted.has(`${dir}/${name}`)) trigger(`${dir}/${name} changed`)
        })
        watcher.on('error', () => undefined)
        watchers.set(dir, watcher)
      } catch {
        // A folder that cannot be watched still reloads on SIGHUP.
      }
    }
  }
  follow(files)
  const onHup = () => trigger('SIGHUP')
  process.on('SIGHUP', onHup)
  return {
    follow,
    stop: () => {
      stopped = true
      if (timer) clearTimeout(timer)
      process.off('SIGHUP', onHup)
      for (const w of watchers.values()) w.close()
      watchers.clear()
    },
  }
}
