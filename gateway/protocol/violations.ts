/**
 * Why the protocol guard closed a connection: the `reason` label of
 * `lan_protocol_errors_total` and the `reason` field of the security event.
 * Stable names: dashboards and alerts key on them.
 */
export const PROTOCOL_VIOLATIONS = [
  /** The fixed header announced a packet above `lan.maxPacketBytes` (authenticated client). */
  'packet_too_large',
  /** The fixed header announced a packet above `lan.maxConnectBytes` before authentication. */
  'connect_too_large',
  /** The remaining length does not match the fields (too short for them, or bytes left over), or takes over 4 bytes. */
  'malformed_length',
  /** Fixed header flag bits other than those MQTT 3.1.1 defines for the packet type; DUP on QoS 0. */
  'reserved_flags',
  /** Packet type 0 or 15, or one only a server sends (CONNACK, SUBACK, UNSUBACK, PINGRESP). */
  'reserved_packet_type',
  /** QoS 3 in a PUBLISH, a Will or a SUBSCRIBE; reserved bits of a SUBSCRIBE's requested QoS. */
  'invalid_qos',
  /** A string that is not valid UTF-8, or holds U+0000 or a control character (U+0001-U+001F, U+007F-U+009F). */
  'invalid_string',
  /** An empty topic name, or one with `+` or `#` (PUBLISH, Will topic). */
  'invalid_topic',
  /** An empty topic filter, or a misplaced wildcard (`#` not last, `+` or `#` not a whole level). */
  'invalid_filter',
  /** A SUBSCRIBE or UNSUBSCRIBE without any topic filter. */
  'no_filters',
  /** A packet identifier 0 where one is required. */
  'packet_id_zero',
  /** A first packet that is not a CONNECT. */
  'not_connected',
  /** A second CONNECT on the connection. */
  'second_connect',
  /** Protocol name other than `MQTT` (level 4) or `MQIsdp` (level 3). */
  'invalid_protocol',
  /** CONNECT flags: reserved bit set, Will QoS or Retain without the Will flag, password without username. */
  'invalid_connect_flags',
  /** A CONNECT for a protocol level the gateway does not speak (MQTT 5): answered CONNACK 1, then closed. */
  'unsupported_protocol_level',
  /** The client left more than `lan.maxOutboundBytes` of what the gateway sent it unread. */
  'slow_consumer',
] as const

export type ProtocolViolationReason = (typeof PROTOCOL_VIOLATIONS)[number]

/** Reasons counted in `lan_protocol_errors_total` that the broker, not the guard, detects. */
export const CONNECTION_ERRORS = [
  /** No CONNECT within `lan.timeouts.connectMs` after the connection (or the TLS handshake). */
  'connect_timeout',
  /** The connection failed (reset, TLS or socket error) before its CONNECT completed. */
  'connection_error',
] as const

export type ConnectionErrorReason = (typeof CONNECTION_ERRORS)[number]

/** One refused packet: why, and what is safe to log about it (never its content). */
export interface ProtocolViolation {
  reason: ProtocolViolationReason
  /** For the log line: "client id is not valid UTF-8". */
  detail: string
  /** The MQTT packet type name: `connect`, `publish`, ... or `type 15`. */
  packetType: string
  /** The packet size the fixed header announced (header included). */
  announcedBytes?: number
  /** The limit it broke, for the size reasons. */
  limit?: number
}

export const PACKET_TYPE_NAMES = [
  'type 0',
  'connect',
  'connack',
  'publish',
  'puback',
  'pubrec',
  'pubrel',
  'pubcomp',
  'subscribe',
  'suback',
  'unsubscribe',
  'unsuback',
  'pingreq',
  'pingresp',
  'disconnect',
  'type 15',
] as const
