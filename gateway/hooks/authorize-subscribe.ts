import type { AuthorizeSubscribeHandler } from 'aedes'
import type { SecurityEvents } from '../../core/security-events.js'
import { sessionOf, transportOf } from '../connection-context.js'
import { isUnderPrefix } from '../topic-scope.js'

/** A filter outside the device's scope is refused at SUBACK (0x80); the others in the packet still stand. */
export function createAuthorizeSubscribe(deps: { security: SecurityEvents }): AuthorizeSubscribeHandler {
  return (client, subscription, callback) => {
    const session = sessionOf(client)
    if (session && isUnderPrefix(subscription.topic, session.topicPrefix)) return callback(null, subscription)
    deps.security.report(
      'subscribe_denied',
      {
        ...(session && { device: session.device.id }),
        clientId: client.id,
        listener: transportOf(client).listener,
        topic: subscription.topic,
      },
      `SUBSCRIBE denied: filter outside ${session?.topicPrefix ?? 'any allowed prefix'}`,
    )
    callback(null, null)
  }
}
