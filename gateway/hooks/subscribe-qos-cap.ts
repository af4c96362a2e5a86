import type { Client, SubscribePacket } from 'aedes'
import type { AccessControl } from '../access-control.js'
import { sessionOf } from '../connection-context.js'

/**
 * MQTT 3.1.1 grants a capped subscription at the lower QoS and says so in the
 * SUBACK. aedes takes the SUBACK code from the SUBSCRIBE packet before
 * `authorizeSubscribe` runs, so the cap is applied to the packet itself, as the
 * parser hands it over: this listener runs before aedes' own. SUBSCRIBEs that
 * arrive before authentication finished (pipelined after CONNECT) wait in aedes'
 * queue; they are capped when the session is set.
 */
const pending = new WeakMap<Client, SubscribePacket[]>()

function cap(access: AccessControl, client: Client, packet: SubscribePacket): void {
  const session = sessionOf(client)
  if (!session) return
  for (const sub of packet.subscriptions) {
    const decision = access.engine.decide(session.principal, {
      action: 'subscribe',
      topic: sub.topic,
      qos: sub.qos,
    })
    if (decision.allowed && decision.grantedQos < sub.qos) sub.qos = decision.grantedQos
  }
}

export function installSubscribeQosCap(access: AccessControl, client: Client): void {
  const parser = (client as unknown as { _parser?: NodeJS.EventEmitter })._parser
  if (!parser)
    throw new Error('aedes client has no parser: the QoS cap cannot be installed (aedes internals changed)')
  parser.prependListener('packet', (packet: { cmd: string }) => {
    if (packet.cmd !== 'subscribe') return
    if (sessionOf(client)) cap(access, client, packet as SubscribePacket)
    else {
      const list = pending.get(client) ?? []
      if (list.length < 64) list.push(packet as SubscribePacket)
      pending.set(client, list)
    }
  })
}

/** Caps the SUBSCRIBEs that arrived before the session existed; called once authentication succeeded. */
export function capPendingSubscribes(access: AccessControl, client: Client): void {
  for (const packet of pending.get(client) ?? []) cap(access, client, packet)
  pending.delete(client)
}
