import type { ListenerConfig } from '../../config/index.js'
import type { Listener, ListenerContext } from './listener.js'
import { startTcpListener } from './tcp.js'
import { startTlsListener } from './tls.js'
import { startTlsPskListener } from './tls-psk.js'

export type { Listener, ListenerContext } from './listener.js'

export function startListener(config: ListenerConfig, context: ListenerContext): Promise<Listener> {
  switch (config.type) {
    case 'tcp':
      return startTcpListener(config, context)
    case 'tls-psk':
      return startTlsPskListener(config, context)
    case 'tls':
      return startTlsListener(config, context)
  }
}
