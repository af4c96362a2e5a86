import { z } from 'zod'

/**
 * Topic policy file format. Deny unless a rule allows; a matching `deny` rule
 * wins over any allow. Among matching allow rules, the first in file order
 * decides and its limits apply (`edge-gateway policy explain` names it).
 */

const filter = z
  .string()
  .min(1)
  .max(1024)
  .refine((s) => !s.includes('\u0000'), 'a topic filter without NUL characters')

const who = z.union([
  z.literal('everyone'),
  z.strictObject({ device: z.string().min(1) }),
  z.strictObject({ username: z.string().min(1) }),
  z.strictObject({ clientId: z.string().min(1) }),
  z.strictObject({ group: z.string().min(1) }),
  /** Clients that connected without a username (Mosquitto's lines before the first `user`). */
  z.literal('anonymous'),
])

const bucket = z.strictObject({
  perSecond: z.number().positive().max(1e9),
  /** Largest burst; default: one second's worth. */
  burst: z.number().positive().max(1e12).optional(),
})

export const ruleSchema = z.strictObject({
  /** Shown by explain and in security events; default `rule #<index>`. */
  name: z.string().min(1).max(128).optional(),
  who,
  /** Filter with `+`/`#` and the substitutions `%c` (client id), `%u` (username), `%d` (device id). */
  topic: filter,
  action: z.enum(['publish', 'subscribe', 'both']),
  effect: z.enum(['allow', 'deny']).default('allow'),
  /** Highest QoS allowed. A PUBLISH above it is refused; a SUBSCRIBE is granted at this QoS. */
  maxQos: z.union([z.literal(0), z.literal(1), z.literal(2)]).default(2),
  /** Whether a PUBLISH may set the retain flag. */
  retain: z.boolean().default(true),
  /** Largest payload a PUBLISH may carry, in bytes. */
  maxPayloadBytes: z.number().int().min(0).max(268_435_455).optional(),
  /** Token buckets per device and rule: messages and payload bytes. */
  rate: z.strictObject({ messages: bucket.optional(), bytes: bucket.optional() }).optional(),
  /** At most this many clients subscribed at once to a filter this rule granted. */
  maxSubscribers: z.number().int().min(1).max(1_000_000).optional(),
})

export const policySchema = z.strictObject({
  /**
   * What a denied PUBLISH gets (MQTT-3.3.5-2 allows both): `disconnect` closes
   * the connection (the safe default: a misbehaving device stops at once);
   * `drop` acknowledges and discards it, so neither subscribers nor the bridge see it.
   */
  deniedPublish: z.enum(['disconnect', 'drop']).default('disconnect'),
  /** Messages over a rate limit within 10 s before the device is disconnected. */
  floodDisconnectAfter: z.number().int().min(1).max(1_000_000).default(100),
  /**
   * The longest topic a PUBLISH may name and the longest filter a SUBSCRIBE may ask for, in
   * bytes (MQTT allows 65,535): each filter a client holds costs the broker memory of its
   * size, each retained topic too, and each denial's log line carries it.
   */
  maxTopicBytes: z.number().int().min(16).max(65_535).default(1024),
  rules: z.array(ruleSchema).max(1_000_000),
})

export type PolicyInput = z.input<typeof policySchema>
export type Policy = z.output<typeof policySchema>
export type Rule = z.output<typeof ruleSchema>
export type Who = z.output<typeof who>
