import type { GatewayConfig } from './schema.js'
import { vpnProblems } from './vpn-schema.js'

/** Rules that span fields, in one pass; each problem as `path: message`. */
export function crossFieldProblems(config: GatewayConfig): string[] {
  const problems: string[] = []
  const seen = (label: string) => {
    const map = new Map<string, string>()
    return (value: string | undefined, path: string) => {
      if (value === undefined) return
      const first = map.get(value)
      if (first) problems.push(`${path}: ${label} "${value}" is already used at ${first}`)
      else map.set(value, path)
    }
  }

  const listenerAddress = seen('address')
  const listenerName = seen('listener name')
  config.lan.listeners.forEach((l, i) => {
    if (l.port !== 0) listenerAddress(`${l.host}:${l.port}`, `lan.listeners[${i}]`)
    listenerName(l.name, `lan.listeners[${i}].name`)
    if (l.type === 'tls-psk' && l.minVersion === 'TLSv1.3' && l.maxVersion === 'TLSv1.2') {
      problems.push(`lan.listeners[${i}]: minVersion TLSv1.3 is above maxVersion TLSv1.2`)
    }
  })

  const deviceId = seen('device id')
  const username = seen('username')
  const pskIdentity = seen('PSK identity')
  const commonName = seen('certificate common name')
  const kid = seen('payload key id')
  config.devices.forEach((d, i) => {
    const at = `devices[${i}]`
    deviceId(d.id, `${at}.id`)
    // A token device without a username answers to its id as the CONNECT username.
    if (d.username !== undefined) username(d.username, `${at}.username`)
    else if (d.payloadKey) username(d.id, `${at}.id (the CONNECT username of a token device)`)
    pskIdentity(d.psk?.identity, `${at}.psk.identity`)
    commonName(d.certificate?.commonName, `${at}.certificate.commonName`)
    kid(d.payloadKey?.kid.toLowerCase(), `${at}.payloadKey.kid`)
    kid(d.payloadKey?.previous?.kid.toLowerCase(), `${at}.payloadKey.previous.kid`)
    if (d.passwordHash && !d.username) problems.push(`${at}: passwordHash needs a username`)
    if (d.username && !d.passwordHash && !d.psk && !d.certificate && !d.payloadKey) {
      problems.push(
        `${at}: username "${d.username}" needs a passwordHash (or a psk, certificate or payloadKey for tokens)`,
      )
    }
    if (!d.passwordHash && !d.psk && !d.certificate && !d.payloadKey) {
      problems.push(
        `${at}: device "${d.id}" has no credential (passwordHash, psk, certificate or payloadKey)`,
      )
    }
  })
  if (config.policies?.file && config.policies.rules) {
    problems.push('policies: give either file or rules, not both')
  }

  const { reconnect } = config.cloud
  if (reconnect.initialDelayMs > reconnect.maxDelayMs) {
    problems.push(
      `cloud.reconnect: initialDelayMs ${reconnect.initialDelayMs} is above maxDelayMs ${reconnect.maxDelayMs}`,
    )
  }
  const localPrefix = seen('local topic prefix')
  const recipients = new Set(config.cloud.recipients.map((r) => r.name))
  const recipientName = seen('recipient name')
  config.cloud.recipients.forEach((r, i) => {
    recipientName(r.name, `cloud.recipients[${i}].name`)
  })
  const control = config.cloud.control.prefix
  config.cloud.topics.forEach((t, i) => {
    const at = `cloud.topics[${i}]`
    localPrefix(t.local, `${at}.local`)
    if (t.sealFor !== undefined && !recipients.has(t.sealFor)) {
      problems.push(`${at}.sealFor: no cloud.recipients entry is named "${t.sealFor}"`)
    }
    if (t.sealFor !== undefined && t.mode === 'end-to-end') {
      problems.push(`${at}: an end-to-end mapping forwards the device's payload unchanged; drop sealFor`)
    }
    if (t.cloud.startsWith('$') || t.local.startsWith('$')) {
      problems.push(`${at}: topics starting with "$" are reserved (the control tree is "${control}/")`)
    }
  })
  config.cloud.downlink?.topics.forEach((t, i) => {
    const at = `cloud.downlink.topics[${i}]`
    if (t.cloud.startsWith('$') || t.local.startsWith('$')) {
      problems.push(`${at}: topics starting with "$" are reserved`)
    }
    if (t.cloud === '' || t.local === '') problems.push(`${at}: cloud and local prefixes must not be empty`)
    else if (!t.cloud.endsWith('/')) {
      problems.push(
        `${at}.cloud: "${t.cloud}" must end with "/": the gateway subscribes to the prefix followed by "#" ("${t.cloud}/#" for "${t.cloud}/")`,
      )
    }
    // The gateway would subscribe to its own uplink: every message it sends would come back as a
    // command that is not one, refused and logged, at the cost of the cloud link's bandwidth.
    config.cloud.topics.forEach((u, j) => {
      if (t.cloud !== '' && (u.cloud.startsWith(t.cloud) || t.cloud.startsWith(u.cloud))) {
        problems.push(
          `${at}.cloud: "${t.cloud}" overlaps cloud.topics[${j}].cloud "${u.cloud}": the gateway would take its own messages for commands`,
        )
      }
    })
  })
  const operatorName = seen('operator name')
  config.cloud.downlink?.operators.forEach((o, i) => {
    operatorName(o.name, `cloud.downlink.operators[${i}].name`)
  })
  if (config.lan.maxOutboundBytes < 2 * config.lan.maxPacketBytes) {
    problems.push(
      `lan.maxOutboundBytes: ${config.lan.maxOutboundBytes} is less than twice lan.maxPacketBytes (${config.lan.maxPacketBytes}): a subscriber that reads could not take the largest message`,
    )
  }
  problems.push(...vpnProblems(config.vpn, config.cloud.host))
  const listen = config.observability.listen
  if (listen !== undefined) {
    const { host, port } = splitHostPort(listen)
    if (port < 1 || port > 65535) problems.push(`observability.listen: port ${port} is not 1 to 65535`)
    if (!isLoopback(host) && config.observability.tokenFile === undefined) {
      problems.push(
        `observability.listen: ${host} is not a loopback address; set observability.tokenFile so that only holders of the token can read the metrics`,
      )
    }
  }
  return problems
}

/** `host:port` or `[v6]:port`, as observability.listen has it. */
export function splitHostPort(listen: string): { host: string; port: number } {
  const at = listen.lastIndexOf(':')
  const host = listen.slice(0, at).replace(/^\[(.*)\]$/, '$1')
  return { host, port: Number(listen.slice(at + 1)) }
}

/** 127.0.0.0/8, ::1 or localhost. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host)
}
