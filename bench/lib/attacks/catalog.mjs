/**
 * The attacks, in the order a run makes them, with what each sends and from
 * which loopback address (each attacker is its own LAN "host", so an address
 * lock caused by one attack does not silence the next).
 *
 * Order: the findings 1-4, 6 and 8 first; then the poison message,
 * because on a gateway without the fix it wedges the uplink for the rest of
 * the run; the lockout last, because a lock that works as designed (300 s by
 * default) keeps the legitimate devices out for the rest of the run.
 */
import { CLOUD_PREFIX, LEGIT, LOCAL_PREFIX, PSK_DEVICE } from './setup.mjs'

const MiB = 1024 * 1024
/** The longest topic MQTT can carry (a 16-bit length). */
const MAX_TOPIC_BYTES = 65_535
const POISON_TOPIC_BYTES = MAX_TOPIC_BYTES - 5

export const ATTACKS = [
  {
    name: 'idle-tls',
    finding: 1,
    title: 'TCP sockets to the TLS-PSK port that never start the handshake',
    address: '127.0.0.11',
    params: (quick) => ({ count: quick ? 1_000 : 5_000 }),
  },
  {
    name: 'big-connect',
    finding: 3,
    title: '8 CONNECTs announcing 256 MB, 4 MB sent each',
    address: '127.0.0.12',
    params: () => ({ connections: 8, announcedBytes: 268_435_455, sendBytes: 4 * MiB }),
  },
  {
    name: 'flood',
    finding: 4,
    title: 'authorized device floods QoS 1 (window 1,000)',
    address: '127.0.0.13',
    params: () => ({ window: 1_000 }),
  },
  {
    name: 'big-publish',
    finding: 3,
    title: 'authorized device sends one 50 MiB PUBLISH',
    address: '127.0.0.14',
    params: () => ({ bytes: 50 * MiB }),
  },
  {
    name: 'subscriptions',
    finding: 7,
    title: '200,000 subscription filters, 1,000 per SUBSCRIBE',
    address: '127.0.0.16',
    params: () => ({ total: 200_000, perPacket: 1_000 }),
  },
  {
    name: 'malformed',
    finding: 9,
    title: 'mutated packets (mqtt-packet generator, seeded) before and after CONNECT',
    address: '127.0.0.18',
    sessionAddress: '127.0.0.19',
    params: (quick) => ({ cases: quick ? 500 : 2_000, seed: 13 }),
  },
  {
    name: 'poison',
    finding: 2,
    title: 'QoS 1 to a LAN topic whose cloud topic exceeds 65,535 bytes',
    address: '127.0.0.17',
    params: () => ({
      topicBytes: POISON_TOPIC_BYTES,
      cloudTopicBytes: POISON_TOPIC_BYTES - LOCAL_PREFIX.length + CLOUD_PREFIX.length,
    }),
  },
  {
    name: 'lockout',
    finding: 5,
    title: 'credential-less CONNECTs as good-1/good-2/psk-1, wrong passwords for good-1',
    address: '127.0.0.2',
    anonymousAddress: '127.0.0.3',
    params: () => ({
      perIdentity: 20,
      wrongPasswords: 20,
      targets: [...LEGIT, PSK_DEVICE],
      passwordTarget: LEGIT[0],
      maxRounds: 5,
    }),
  },
]
