import type { AuthorizeForwardHandler } from 'aedes'
import type { SecurityEvents } from '../../core/security-events.js'
import { sessionOf } from '../connection-context.js'
import { isUnderPrefix } from '../topic-scope.js'

/** Re-checks read permission at delivery, so nothing reaches a device outside its scope. */
export function createAuthorizeForward(deps: { security: SecurityEvents }): AuthorizeForwardHandler {
  return (client, packet) => {
    const session = sessionOf(client)
    if (session && isUnderPrefix(packet.topic, session.topicPrefix)) return packet
    deps.security.report(
      'forward_denied',
      {
        ...(session && { device: session.device.id }),
        clientId: client.id,
        topic: packet.topic,
        bytes: packet.payload?.length ?? 0,
      },
      'delivery withheld: topic outside the device scope',
    )
    return null
  }
}
