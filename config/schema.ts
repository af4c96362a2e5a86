import { z } from 'zod'
import { secretFilePath } from './secret-path.js'
import { vpnSchema } from './vpn-schema.js'

const port = z.number().int().min(0).max(65535)
const host = z.string().min(1)
const name = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" or "-", starting with a letter or digit')

const tlsVersion = z.enum(['TLSv1.2', 'TLSv1.3'])

const tcpListener = z.strictObject({
  name: name.optional(),
  type: z.literal('tcp'),
  host: host.default('127.0.0.1'),
  port,
})

const tlsPskListener = z.strictObject({
  name: name.optional(),
  type: z.literal('tls-psk'),
  host: host.default('127.0.0.1'),
  port,
  minVersion: tlsVersion.default('TLSv1.2'),
  maxVersion: tlsVersion.default('TLSv1.3'),
  /** PSK identity hint sent by the server (TLS 1.2 only); empty by default. */
  identityHint: z.string().max(128).optional(),
})

const tlsListener = z.strictObject({
  name: name.optional(),
  type: z.literal('tls'),
  host: host.default('127.0.0.1'),
  port,
  minVersion: tlsVersion.default('TLSv1.2'),
  /** The listener's certificate and key (key 0600). */
  certFile: z.string().min(1),
  keyFile: secretFilePath,
  /** CA that signs device certificates; with it, devices must present a certificate. */
  caFile: z.string().min(1),
})

export const listenerSchema = z.discriminatedUnion('type', [tcpListener, tlsPskListener, tlsListener])

const clientIdPattern = z
  .string()
  .min(1)
  .max(128)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  .refine((s) => !/[+#/\u0000-\u001f\u007f]/.test(s), 'no "+", "#", "/" or control characters')

export const deviceSchema = z.strictObject({
  id: name,
  username: z.string().min(1).max(128).optional(),
  /** `$scrypt$...` as written by `edge-gateway device hash-password`. */
  passwordHash: z
    .string()
    .startsWith('$', 'a hash written by `edge-gateway device hash-password`')
    .optional(),
  psk: z
    .strictObject({
      identity: z.string().min(1).max(128),
      /** File holding the key as hex (16 to 64 bytes); mode 0600 or tighter. */
      keyFile: secretFilePath,
      /**
       * The key this one replaces, still accepted until `until` (an overlap while the device is
       * given the new key; `edge-gateway device rotate` writes it). After `until` the old
       * identity is refused and connections made with it are closed.
       */
      previous: z
        .strictObject({
          identity: z.string().min(1).max(128),
          keyFile: secretFilePath,
          until: z.iso.datetime({ offset: true }),
        })
        .optional(),
    })
    .refine((p) => p.previous?.identity !== p.identity, {
      message: 'psk.previous.identity must differ from psk.identity (TLS-PSK finds the key by its identity)',
    })
    .optional(),
  /** Client ids this device may use: exact, or with `*` for any run of characters. Default: the device id. */
  clientIds: z.array(clientIdPattern).min(1).optional(),
  /** Certificate identity on a `tls` listener: the subject common name of the device's certificate. */
  certificate: z.strictObject({ commonName: z.string().min(1).max(256) }).optional(),
  /** Groups the device belongs to; policy rules may name them. */
  groups: z.array(name).max(64).default([]),
  /** Payload protection (COSE) for devices that cannot run TLS; see docs/wire-format.md. */
  payloadKey: z
    .strictObject({
      /** Key id as hex, 1 to 6 bytes (the device's OSCORE Sender ID). */
      kid: z.string().regex(/^([0-9a-fA-F]{2}){1,6}$/, '1 to 6 bytes as hex'),
      /** File holding the master secret as hex (16 or 32 bytes); mode 0600 or tighter. */
      secretFile: secretFilePath,
      aead: z
        .enum(['AES-CCM-16-64-128', 'A128GCM', 'A256GCM', 'ChaCha20/Poly1305'])
        .default('AES-CCM-16-64-128'),
      mac: z.enum(['HMAC 256/64', 'HMAC 256/256']).default('HMAC 256/64'),
      /**
       * The key this one replaces (same algorithms), still accepted until `until` while the device
       * takes the new one (a key pushed from the cloud writes it, docs/rotation.md). After `until`
       * payloads and tokens under the old kid are refused.
       */
      previous: z
        .strictObject({
          kid: z.string().regex(/^([0-9a-fA-F]{2}){1,6}$/, '1 to 6 bytes as hex'),
          secretFile: secretFilePath,
          until: z.iso.datetime({ offset: true }),
        })
        .optional(),
    })
    .refine((k) => k.previous?.kid.toLowerCase() !== k.kid.toLowerCase(), {
      message: 'payloadKey.previous.kid must differ from payloadKey.kid (the kid names the key)',
    })
    .optional(),
  /** Public key (PEM, Ed25519 or P-256) that verifies the device's COSE_Sign1 payloads on `signed` topics. */
  signingKeyFile: z.string().min(1).optional(),
})

const topicPrefix = z
  .string()
  .max(256)
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what this refuses
  .refine((s) => !/[+#\u0000]/.test(s), 'a topic prefix without wildcards')

export const topicMappingSchema = z.strictObject({
  /** Local topics starting with this prefix are forwarded... */
  local: topicPrefix,
  /** ...with the prefix replaced by this one on the cloud broker. */
  cloud: topicPrefix,
  /**
   * client-to-broker (default): the gateway opens the device payload and sends it
   * inside its signed envelope, HPKE-sealed to `sealFor` when given.
   * end-to-end: the payload goes up exactly as the device sent it (sealed by the
   * device for the cloud), inside the gateway's signed envelope.
   */
  mode: z.enum(['client-to-broker', 'end-to-end']).default('client-to-broker'),
  /** The name of a `cloud.recipients` entry to HPKE-seal the payload to (client-to-broker only). */
  sealFor: name.optional(),
})

/** A cloud service the gateway seals payloads to (HPKE, X25519). */
const recipientSchema = z.strictObject({
  name,
  /** Key id put in the sealed payload so the recipient picks its key; default: the name. */
  kid: z.string().min(1).max(32).optional(),
  /** The recipient's raw 32-byte X25519 public key, hex or base64 (`edge-gateway cloud keygen --recipient`). */
  publicKeyFile: z.string().min(1),
})

/** An operator whose signature makes a downlink command acceptable. */
const operatorSchema = z.strictObject({
  name,
  /** Ed25519 or P-256 public key, PEM (`edge-gateway cloud keygen --operator`). */
  publicKeyFile: z.string().min(1),
})

const downlinkSchema = z.strictObject({
  /** Cloud topics the gateway subscribes to for commands, with the local prefix they are published under. */
  topics: z.array(z.strictObject({ cloud: topicPrefix, local: topicPrefix })).min(1),
  operators: z.array(operatorSchema).min(1),
  /** A command signed more than this many seconds before (or after) the gateway's clock is stale. */
  maxAgeSeconds: z.number().int().min(5).max(86_400).default(300),
})

export const cloudSchema = z.strictObject({
  host,
  port: port.default(8883),
  /** Name the cloud certificate must carry; default: host. */
  servername: z.string().min(1).optional(),
  caFile: z.string().min(1),
  certFile: z.string().min(1),
  keyFile: secretFilePath,
  clientId: z.string().min(1).max(128).optional(),
  minVersion: tlsVersion.default('TLSv1.2'),
  /** MQTT 5 carries the gateway sequence number in user properties; 4 (3.1.1) for brokers without MQTT 5. */
  protocolVersion: z.union([z.literal(4), z.literal(5)]).default(5),
  keepaliveSeconds: z.number().int().min(5).max(3600).default(30),
  connectTimeoutMs: z.number().int().min(500).max(120_000).default(10_000),
  reconnect: z
    .strictObject({
      initialDelayMs: z.number().int().min(10).max(60_000).default(500),
      maxDelayMs: z.number().int().min(100).max(3_600_000).default(30_000),
    })
    .prefault({}),
  /** Messages published to the cloud and not yet acknowledged, at most. */
  inflight: z.number().int().min(1).max(65_535).default(100),
  queue: z
    .strictObject({
      /** Messages held for the cloud at most. */
      maxMessages: z.number().int().min(1).max(100_000_000).default(1_000_000),
      /** Disk the queue may use: QoS 0 is refused above 90 % of it, QoS 1 above 100 % (docs/bridge.md). */
      quotaBytes: z.number().int().min(65_536).max(1_099_511_627_776).default(268_435_456),
      /** `disk` (default): durable, survives crashes and power loss. `memory`: for tests and labs only. */
      store: z.enum(['disk', 'memory']).default('disk'),
      /**
       * When a device's QoS 1 message is acknowledged (disk store): `fsync` (default) after its
       * record was fsync'd, which survives a power loss; `write` once the record is in the
       * kernel, which survives the gateway dying (kill -9, a crash) but not a power loss.
       */
      durability: z.enum(['fsync', 'write']).default('fsync'),
      /**
       * The part of maxMessages and of quotaBytes one device may hold once the queue is half
       * full; past it that device's messages are refused first (`device_quota`). 1: no limit.
       */
      deviceShare: z.number().gt(0).max(1).default(0.25),
    })
    .prefault({}),
  topics: z.array(topicMappingSchema).min(1),
  /**
   * The gateway's Ed25519 signing key (PEM, 0600). Every message to the cloud is
   * signed with it; it is bound to the TLS client certificate by a key binding
   * on the control topics. Default: <stateDir>/signing.key, made on first start.
   */
  signing: z.strictObject({ keyFile: secretFilePath.optional() }).prefault({}),
  recipients: z.array(recipientSchema).default([]),
  downlink: downlinkSchema.optional(),
  /** Remote certificate rotation and the expiry watch (docs/rotation.md). */
  rotation: z
    .strictObject({
      /** Days before the client certificate expires when the gateway publishes a CSR by itself. */
      leadDays: z.number().int().min(1).max(365).default(30),
      /**
       * The CA bundle a pushed client certificate must be issued by (PEM); default cloud.caFile.
       * Name the issuing CA here when it is not the CA that vouches for the broker.
       */
      issuerCaFile: z.string().min(1).optional(),
      /** How long the new certificate's connection may take to come up before the push is rolled back. */
      deadlineSeconds: z.number().int().min(1).max(600).default(30),
      /** Operators whose signature makes a rotation command acceptable; default cloud.downlink.operators. */
      operators: z.array(operatorSchema).min(1).optional(),
      /** A certificate with this many days left, or fewer, is warned about (log, status, health). */
      warnDays: z.array(z.number().int().min(0).max(3650)).min(1).max(8).default([30, 7, 1]),
    })
    .prefault({}),
  control: z
    .strictObject({
      /** The reserved control tree is `<prefix>/<gateway id>/...`; never reachable from the LAN. */
      prefix: z
        .string()
        .min(1)
        .max(64)
        // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what this refuses
        .regex(/^[^+#/\u0000]+$/, 'one topic level without wildcards')
        .default('$gw'),
      /** Seconds between health messages (queue, link, tunnel, certificate) on the control tree and in the log. */
      intervalSeconds: z.number().int().min(1).max(3600).default(30),
    })
    .prefault({}),
})

export const configSchema = z.strictObject({
  gateway: z.strictObject({
    id: name,
    /** Where the gateway keeps its state (queue, keys it makes); relative to the config file. */
    stateDir: z.string().min(1).default('state'),
  }),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
      pretty: z.boolean().optional(),
    })
    .prefault({}),
  lan: z.strictObject({
    listeners: z.array(listenerSchema).min(1),
    /** Payload protection required per topic: the first entry whose filter matches decides; default none. */
    protection: z
      .array(
        z.strictObject({
          topic: z.string().min(1).max(1024),
          mode: z.enum(['none', 'mac', 'sealed', 'signed']),
        }),
      )
      .default([]),
    payload: z
      .strictObject({
        /** Protected payloads larger than this are refused before any parsing. */
        maxBytes: z.number().int().min(64).max(268_435_455).default(65_536),
        /** A one-time CONNECT token is accepted this many seconds either side of the gateway's clock. */
        tokenWindowSeconds: z.number().int().min(5).max(3600).default(120),
        /** Failed payloads from one connection within 10 s before it is closed. */
        failuresBeforeDisconnect: z.number().int().min(1).max(100_000).default(20),
      })
      .prefault({}),
    /**
     * A 32-byte secret (64 hex digits, file mode 0600) mixed into `$scrypt-pepper$` password
     * hashes (`edge-gateway device pepper`, `device hash-password --config`): without this file
     * the hashes in the config cannot be checked offline at all. docs/security.md, "Password hashes".
     */
    passwordPepperFile: secretFilePath.optional(),
    passwordChecks: z
      .strictObject({
        /**
         * scrypt runs at once (libuv's thread pool, shared with the queue's file writes). Default:
         * with only `$scrypt-pepper$` hashes the CPU cores less one (the event loop keeps one),
         * else the cores; at least 1, at most 2 (gateway/auth/password.ts).
         */
        concurrency: z.number().int().min(1).max(64).optional(),
        /**
         * MiB that the scrypt runs in progress may ask for together (each asks 128 * N * r bytes:
         * 16 MiB for a `$scrypt$` hash at its default cost, 1 MiB for a `$scrypt-pepper$` one). A
         * check that does not fit waits, in arrival order; one alone always runs. The default, 16,
         * runs `$scrypt$` checks one at a time, so a burst of password CONNECTs adds at most 16 MiB
         * to the gateway's resident memory (docs/security.md, "Password hashes").
         */
        memoryMiB: z.number().int().min(1).max(1024).default(16),
        /**
         * Devices whose last verified password is remembered in memory (an HMAC under a key made
         * at start, never written anywhere), so the same device reconnecting with the same
         * password skips scrypt; forgotten when its hash changes. 0: none. Lost at restart.
         */
        cacheEntries: z.number().int().min(0).max(10_000_000).default(10_000),
      })
      .prefault({}),
    lockout: z
      .strictObject({
        /** Failed authentications per identity or per address before the lock. */
        maxFailures: z.number().int().min(1).max(1000).default(5),
        /** Failures older than this are forgotten. */
        windowSeconds: z.number().int().min(1).max(86_400).default(300),
        /** How long a locked identity or address is refused, correct credentials or not. */
        lockSeconds: z.number().int().min(1).max(86_400).default(300),
        /** Identities and addresses remembered at most (oldest forgotten first). */
        maxEntries: z.number().int().min(100).max(10_000_000).default(10_000),
        /**
         * Every refused CONNECT is answered no sooner than this after it arrived, whatever the
         * reason, so the response time tells nothing about which usernames exist or how their
         * passwords are stored. Above the slowest password check (scrypt) on the box.
         */
        refusalDelayMs: z.number().int().min(0).max(10_000).default(500),
      })
      .prefault({}),
    /** What devices can make the broker keep as retained messages (in memory); past it, not retained. */
    retained: z
      .strictObject({
        maxMessages: z.number().int().min(0).max(1_000_000).default(1000),
        maxBytes: z
          .number()
          .int()
          .min(0)
          .max(1024 * 1024 * 1024)
          .default(1024 * 1024),
      })
      .prefault({}),
    /** Topic filters one client may hold at once; one more is refused at SUBACK (0x80). */
    maxSubscriptionsPerClient: z.number().int().min(1).max(1_000_000).default(1000),
    /**
     * What sessions may make the broker hold in memory (docs/security.md): per client id, messages
     * queued for it and QoS 2 messages awaiting their PUBREL; and for all of them together, bytes of
     * topics and payloads.
     */
    sessions: z
      .strictObject({
        maxPerClient: z.number().int().min(1).max(1_000_000).default(1000),
        maxBytes: z
          .number()
          .int()
          .min(64 * 1024)
          .max(4 * 1024 * 1024 * 1024)
          .default(32 * 1024 * 1024),
      })
      .prefault({}),
    /** Connections one device may hold at once, over every listener; one more gets CONNACK 3. */
    maxConnectionsPerDevice: z.number().int().min(1).max(1_000_000).default(32),
    /**
     * Resource limits on LAN connections (docs/security.md, "Resource limits").
     * The largest MQTT packet, fixed header included, from an authenticated client:
     * refused on its fixed header, before any of its body is read. Bounds every payload.
     */
    maxPacketBytes: z.number().int().min(1024).max(268_435_460).default(262_144),
    /** The largest packet before the CONNECT is authenticated (the CONNECT with its Will); at most maxPacketBytes applies. */
    maxConnectBytes: z.number().int().min(256).max(268_435_460).default(8192),
    /**
     * Bytes sent to a client that may wait unread in its connection; past it the client is a slow
     * consumer and is disconnected (`slow_consumer`), so it cannot hold up delivery to others.
     */
    maxOutboundBytes: z
      .number()
      .int()
      .min(64 * 1024)
      .max(256 * 1024 * 1024)
      .default(1024 * 1024),
    /**
     * Connections accepted but not yet authenticated (TLS handshake or CONNECT still to come);
     * one past a bound is closed as it is accepted, before any TLS state (`connection_refused`).
     */
    pendingConnections: z
      .strictObject({
        perAddress: z.number().int().min(1).max(1_000_000).default(64),
        total: z.number().int().min(1).max(1_000_000).default(1024),
      })
      .prefault({}),
    timeouts: z
      .strictObject({
        /** A TLS handshake not finished this long after the TCP connection is closed (tls-psk, tls). */
        handshakeMs: z.number().int().min(100).max(120_000).default(10_000),
        /** A connection without a CONNECT this long after it was established (after the TLS handshake) is closed. */
        connectMs: z.number().int().min(100).max(300_000).default(30_000),
      })
      .prefault({}),
    /**
     * PUBLISH packets (and SUBSCRIBE filters) one device may send, over all its connections, as
     * a token bucket; past it, each waits for its turn (back-pressure, `device_rate_paced`).
     */
    deviceRate: z
      .strictObject({
        messagesPerSecond: z.number().positive().max(1e9).default(100),
        burst: z.number().positive().max(1e12).default(200),
      })
      .prefault({}),
  }),
  devices: z.array(deviceSchema).default([]),
  /**
   * Topic policies: `file` names a policy file (YAML, see docs/policies.md), or the
   * rules are given inline. Without this section each device may use `devices/<id>/#` only.
   */
  policies: z
    .strictObject({
      file: z.string().min(1).optional(),
      deniedPublish: z.enum(['disconnect', 'drop']).optional(),
      floodDisconnectAfter: z.number().int().min(1).optional(),
      maxTopicBytes: z.number().int().min(16).max(65_535).optional(),
      rules: z.array(z.unknown()).optional(),
    })
    .optional(),
  /** Mosquitto files used as they are: users and PSK identities become devices, the ACL becomes rules. */
  mosquitto: z
    .strictObject({
      passwordFile: secretFilePath.optional(),
      pskFile: secretFilePath.optional(),
      aclFile: z.string().min(1).optional(),
    })
    .optional(),
  cloud: cloudSchema,
  vpn: vpnSchema.optional(),
  /** Prometheus /metrics and /healthz over HTTP (docs/observability.md); off unless `listen` is set. */
  observability: z
    .strictObject({
      /** `host:port` (IPv6 in brackets), e.g. `127.0.0.1:9464`. */
      listen: z
        .string()
        .regex(/^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/, 'host:port, e.g. 127.0.0.1:9464')
        .optional(),
      /**
       * A file holding a bearer token (0600): required when `listen` is not a loopback address,
       * then every request must carry `Authorization: Bearer <token>`.
       */
      tokenFile: secretFilePath.optional(),
    })
    .prefault({}),
})

export type ConfigInput = z.input<typeof configSchema>
export type GatewayConfig = z.output<typeof configSchema>
export type ListenerConfig = z.output<typeof listenerSchema>
export type DeviceConfig = z.output<typeof deviceSchema>
export type CloudConfig = z.output<typeof cloudSchema>
export type TopicMapping = z.output<typeof topicMappingSchema>
export type DownlinkConfig = z.output<typeof downlinkSchema>
export type RotationConfig = z.output<typeof cloudSchema>['rotation']
export type { VpnConfig } from './vpn-schema.js'
