/**
 * Where Mosquitto 2.0's `acl_file` and our policy engine decide differently
 * even after a faithful conversion. Per-line differences are reported by
 * `aclToPolicy` in `unmapped`; these hold for every converted file. Each cites
 * the Mosquitto 2.0 source that behaves so.
 */
export const MOSQUITTO_ACL_DIFFERENCES: ReadonlyArray<string> = Object.freeze([
  // src/security_default.c, mosquitto_acl_check_default returns success for every SUBSCRIBE (marked as a known gap in its source).
  'SUBSCRIBE: Mosquitto 2.0 grants every SUBSCRIBE and checks `read` per message at delivery, so a client with ' +
    '`topic read a/#` may subscribe to `#` and receives only a/... messages. Our engine refuses a SUBSCRIBE whose ' +
    'filter is not wholly covered by an allow rule or that overlaps a deny rule (SUBACK 0x80).',
  // src/security.c, acl__check_dollar: `$share` is allowed for (un)subscribe; delivery is checked against the message topic.
  'Shared subscriptions: Mosquitto grants `$share/<group>/<filter>` and checks delivery against the message topic. Our ' +
    'engine treats `$share/...` as a `$` filter that needs a `$share` rule.',
  // mosquitto_acl_check_default: `strpbrk(username, "+#")` / `strpbrk(id, "+#")` before the pattern loop.
  'A username or client id containing `+` or `#` loses every `pattern` line in Mosquitto (its own `topic` lines still ' +
    'apply). Our engine only makes `%u`/`%c` match nothing for it; patterns without substitutions still apply.',
  // mosquitto_acl_check_default: %c/%u are replaced as text (strncpy), so a value with `/` spans levels.
  'A client id or username containing `/` spans several levels when Mosquitto substitutes it; our substitutions fill ' +
    'exactly one level, so such a value matches nothing. Our gateway refuses such client ids at CONNECT.',
  // mosquitto_acl_check_default: `if(ed->client->bridge) return MOSQ_ERR_SUCCESS;`
  'Bridges: Mosquitto exempts bridge connections from the acl_file; our bridge obeys the policy like any client.',
  // handle_publish.c: a denied PUBLISH is dropped (QoS 1/2 still acknowledged); the connection stays open.
  'Denied PUBLISH: Mosquitto drops the message and keeps the connection; our default `deniedPublish: disconnect` ' +
    'closes it (pass `deniedPublish: "drop"` to aclToPolicy to match Mosquitto).',
  // aclfile__parse: any broken line makes the whole file fail (`rc = MOSQ_ERR_INVAL; break;`).
  'Broken lines: Mosquitto refuses to start when any line is broken; the converter skips the line and reports it.',
])
