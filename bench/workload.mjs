/**
 * A realistic policy of `size` rules and the requests to decide against it,
 * shared by `policy-decision.mjs` (a plain timing script) and
 * `policy-decision.bench.ts` (vitest bench). Deterministic: no randomness.
 *
 * Rules: 8 shared rules (group and everyone rules with %d/%c/%u, deny rules, a
 * `$SYS` rule), then per-device rules `devices/dev-N/#` for as many devices as
 * fit, every 10th device also with a deny rule on `devices/dev-N/locked/#`.
 */

/** @param {number} size */
export function buildPolicy(size) {
  const rules = [
    {
      name: 'sensor-telemetry',
      who: { group: 'sensors' },
      topic: 'telemetry/%d/#',
      action: 'publish',
      maxQos: 1,
      maxPayloadBytes: 4096,
    },
    {
      name: 'sensor-commands',
      who: { group: 'sensors' },
      topic: 'commands/%d/+',
      action: 'subscribe',
      maxQos: 1,
    },
    { name: 'broadcast', who: 'everyone', topic: 'broadcast/#', action: 'subscribe', maxQos: 0 },
    { name: 'client-inbox', who: 'everyone', topic: 'clients/%c/#', action: 'both' },
    { name: 'user-outbox', who: 'everyone', topic: 'users/%u/out', action: 'publish', retain: false },
    { name: 'no-firmware', who: 'everyone', topic: '+/+/firmware/#', action: 'publish', effect: 'deny' },
    { name: 'no-admin', who: 'everyone', topic: 'admin/#', action: 'both', effect: 'deny' },
    { name: 'ops-sys', who: { username: 'ops' }, topic: '$SYS/#', action: 'subscribe' },
  ]
  let device = 0
  while (rules.length < size) {
    const id = `dev-${device}`
    rules.push({ who: { device: id }, topic: `devices/${id}/#`, action: 'both', maxQos: 1 })
    if (device % 10 === 0 && rules.length < size) {
      rules.push({ who: { device: id }, topic: `devices/${id}/locked/#`, action: 'both', effect: 'deny' })
    }
    device++
  }
  return { policy: { rules: rules.slice(0, size) }, devices: device }
}

/**
 * `count` (principal, request) pairs for one action from devices `dev-0` to
 * `dev-<devices - 1>` (spread with a prime stride), cycling through allowed,
 * denied and unmatched topics.
 * @param {'publish' | 'subscribe'} action
 * @param {number} count
 * @param {number} devices
 */
export function buildRequests(action, count, devices) {
  const out = []
  for (let i = 0; i < count; i++) {
    const n = (i * 7919) % devices
    const id = `dev-${n}`
    const principal = { deviceId: id, clientId: `client-${id}`, username: id, groups: ['sensors'] }
    const other = `dev-${n + 1}`
    if (action === 'publish') {
      const topics = [
        `devices/${id}/temperature`,
        `telemetry/${id}/room/1`,
        `devices/${id}/firmware/v2`,
        `devices/${other}/temperature`,
        `users/${id}/out`,
        `devices/${id}/locked/door`,
      ]
      const topic = topics[i % topics.length]
      out.push({ principal, request: { action, topic, qos: i % 2, retain: false, payloadBytes: 64 } })
    } else {
      const topics = [
        `devices/${id}/#`,
        `commands/${id}/+`,
        'broadcast/news',
        `clients/client-${id}/inbox`,
        'admin/#',
        `devices/${other}/#`,
      ]
      const topic = topics[i % topics.length]
      out.push({ principal, request: { action, topic, qos: 1 } })
    }
  }
  return out
}
