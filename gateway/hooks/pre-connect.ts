import type { PreConnectHandler } from 'aedes'
import type { AccessControl } from '../access-control.js'
import { setConnectFacts } from '../connection-context.js'
import { installSubscribeQosCap } from './subscribe-qos-cap.js'

/**
 * Keeps what authentication needs from the CONNECT packet (aedes replaces an
 * empty client id), and installs the SUBSCRIBE QoS cap on the connection.
 */
export function createPreConnect(deps: { access: AccessControl }): PreConnectHandler {
  return (client, packet, callback) => {
    installSubscribeQosCap(deps.access, client)
    setConnectFacts(client, {
      emptyClientId: !packet.clientId,
      clean: packet.clean !== false,
      ...(packet.will && { will: packet.will }),
    })
    callback(null, true)
  }
}
