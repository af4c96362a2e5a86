/**
 * mosquitto.conf for the two brokers of the baseline, and starting them:
 *  - the cloud: one mutual-TLS listener, clients known by certificate (also
 *    the cloud for the gateway runs);
 *  - the edge: a plain TCP listener (password_file) and a TLS-PSK listener
 *    (psk_file), devices confined by an acl_file, bridged to the cloud over
 *    mutual TLS with MQTT 5.
 * Choices that matter for the numbers are stated in the edge config below.
 */
import { userInfo } from 'node:os'
import { join } from 'node:path'
import { spawnServer } from './processes.mjs'

export const CLOUD_TOPIC_PREFIX = 'gateways/bench/'

function common(dir) {
  return [
    'per_listener_settings false',
    // Running as root, mosquitto would switch to user "mosquitto", who cannot read our 0600 keys.
    `user ${userInfo().username}`,
    'persistence false',
    `log_dest file ${join(dir, 'mosquitto.log')}`,
    'log_type error',
    'log_type warning',
    'log_type notice',
    'log_timestamp_format %Y-%m-%dT%H:%M:%S',
    // Nagle off on every client socket (mosquitto's default is on).
    'set_tcp_nodelay true',
  ]
}

export function cloudConf({ dir, port, pki }) {
  return [
    '# edge-gateway bench: the cloud broker',
    ...common(dir),
    'allow_anonymous true',
    `listener ${port} 127.0.0.1`,
    `cafile ${pki.caFile}`,
    `certfile ${pki.serverCertFile}`,
    `keyfile ${pki.serverKeyFile}`,
    'require_certificate true',
    'use_identity_as_username true',
    // The measuring subscriber must not lose messages at the cloud broker (its default queue of 1000
    // per client drops when the subscriber falls behind), or the bench would count as lost what
    // neither system under test lost.
    'max_queued_messages 0',
    '',
  ].join('\n')
}

/**
 * `remoteClientId`: the bridge's client id at the cloud; an edge at rest beside a trial's
 * (bench/lib/at-rest.mjs) needs its own, or the cloud broker would drop one for the other.
 */
export function edgeConf({
  dir,
  tcpPort,
  pskPort,
  cloudPort,
  pki,
  files,
  idle,
  bridgeProtocol = 'mqttv50',
  remoteClientId = 'edge-mosquitto-bench',
}) {
  return [
    '# edge-gateway bench: the Mosquitto edge broker bridged to the cloud',
    ...common(dir),
    'allow_anonymous false',
    `password_file ${files.passwordFile}`,
    `psk_file ${idle ? files.pskFileIdle : files.pskFile}`,
    `acl_file ${files.aclFile}`,
    // Defaults, written out because they decide what a flood does to the bridge:
    // at most 20 QoS 1/2 messages in flight to the cloud, 1000 more queued, then dropped.
    'max_inflight_messages 20',
    'max_queued_messages 1000',
    'queue_qos0_messages false',
    `listener ${tcpPort} 127.0.0.1`,
    `listener ${pskPort} 127.0.0.1`,
    'psk_hint bench-edge',
    'use_identity_as_username true',
    'connection cloud',
    `address 127.0.0.1:${cloudPort}`,
    `bridge_protocol_version ${bridgeProtocol}`,
    `bridge_cafile ${pki.caFile}`,
    `bridge_certfile ${pki.edgeCertFile}`,
    `bridge_keyfile ${pki.edgeKeyFile}`,
    `remote_clientid ${remoteClientId}`,
    // Like the gateway's cloud session (clean: true); no $SYS notifications (the gateway sends none).
    'cleansession true',
    'notifications false',
    'keepalive_interval 30',
    `topic devices/# out 1 "" ${CLOUD_TOPIC_PREFIX}`,
    '',
  ].join('\n')
}

export function startMosquitto({ dir, confFile, cpus }) {
  return spawnServer('mosquitto', ['-c', confFile], { cpus, cwd: dir, logFile: join(dir, 'stdout.log') })
}
