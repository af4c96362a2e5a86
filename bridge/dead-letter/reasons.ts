/**
 * Why a queued message was set aside instead of being sent:
 * - no_mapping: no `cloud.topics` mapping covers its LAN topic any more (the config changed
 *   while it was queued); sending it on its LAN topic would put it where nobody mapped it;
 * - protection_changed: the mapping that covers it now would send it with less protection
 *   than it was accepted under (for example `sealFor` removed), or with a different kind;
 * - unsendable: the cloud link cannot carry it: its cloud topic is over MQTT's 65,535 bytes,
 *   its PUBLISH over the cloud broker's Maximum Packet Size, the MQTT writer refused it, or the
 *   cloud broker closed the connection every time it was in flight, the last time alone;
 * - cloud_refused: the cloud broker answered its PUBLISH with a failure reason code (MQTT 5: not
 *   authorized, quota exceeded, packet too large...): kept for the operator, who can retry it
 *   once the cloud side is fixed.
 */
export const DEAD_LETTER_REASONS = [
  'no_mapping',
  'protection_changed',
  'unsendable',
  'cloud_refused',
] as const
export type DeadLetterReason = (typeof DEAD_LETTER_REASONS)[number]
