import type { AuthorizeForwardHandler } from 'aedes'
import type { SecurityEvents } from '../../core/security-events.js'
import type { AccessControl } from '../access-control.js'
import { sessionOf } from '../connection-context.js'
import { isDropped } from '../dropped.js'

/**
 * Re-checks read permission at delivery, so a subscription made under an older
 * policy stops receiving the moment the policy changes, and a message the
 * gateway acknowledged-and-dropped reaches nobody.
 */
export function createAuthorizeForward(deps: {
  access: AccessControl
  security: SecurityEvents
}): AuthorizeForwardHandler {
  return (client, packet) => {
    if (isDropped(packet.payload)) return null
    const session = sessionOf(client)
    const decision = session
      ? deps.access.engine.decide(session.principal, {
          action: 'subscribe',
          topic: packet.topic,
          qos: packet.qos as 0 | 1 | 2,
        })
      : undefined
    if (decision?.allowed) return packet
    deps.security.report(
      'forward_denied',
      {
        ...(session && { device: session.device.id }),
        clientId: client.id,
        topic: packet.topic,
        bytes: packet.payload?.length ?? 0,
        reason: decision && !decision.allowed ? decision.reason : 'no_session',
      },
      'delivery withheld: the device may not read this topic',
    )
    return null
  }
}
