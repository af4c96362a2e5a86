import type { PreConnectHandler } from 'aedes'
import { setConnectFacts } from '../connection-context.js'

/** Keeps what authentication needs from the CONNECT packet (aedes replaces an empty client id). */
export function createPreConnect(): PreConnectHandler {
  return (client, packet, callback) => {
    setConnectFacts(client, {
      emptyClientId: !packet.clientId,
      clean: packet.clean !== false,
      ...(packet.will && { will: packet.will }),
    })
    callback(null, true)
  }
}
