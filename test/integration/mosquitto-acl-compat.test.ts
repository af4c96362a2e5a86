import { randomBytes } from 'node:crypto'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PolicyEngine } from '../../policies/engine.js'
import { parseAclFile } from '../../policies/mosquitto/acl-file.js'
import { aclToPolicy } from '../../policies/mosquitto/to-policy.js'
import { policySchema } from '../../policies/schema.js'
import type { Principal } from '../../policies/types.js'
import { mosquittoPasswd } from '../helpers/mosquitto-passwd.js'
import { PlainMosquitto } from '../helpers/plain-mosquitto.js'
import { makeTempDir, removeDir } from '../helpers/tmp.js'

/**
 * Differential test: the same acl_file decides in the real Mosquitto 2.0 and,
 * converted by aclToPolicy, in our engine; every case must get the same answer.
 *
 * Mosquitto's answer is observed, not read from logs:
 * - publish: does a message the actor publishes (QoS 1) reach `observer`, an
 *   admin subscribed to `#`, `$SYS/#` and `$app/#`?
 * - subscribe: does the actor, subscribed to the filter, receive what the admin
 *   publishes to the topic (or, for `$SYS`, the broker's retained message)?
 * No sleeps decide an answer: after the PUBACK, the receiving connection sends
 * an UNSUBSCRIBE, and Mosquitto (one thread, one ordered socket per client)
 * answers it only after anything it queued for that client before.
 */

const OP_TIMEOUT_MS = 5_000
const BATCH = 8

const ACL = `# Lines before the first user: clients without a username.
topic read public/#
topic write inbox/anon
topic deny public/secret

user admin
topic readwrite #
topic read $SYS/#
topic readwrite $app/#

user alice
topic readwrite alice/#
topic read public/#
topic deny alice/private/#
topic write shared/alice
topic read $SYS/broker/version

user bob
topic read alice/status
topic write bob/out
topic readwrite $app/bob/#
topic readwrite $SYS/test/#

user carol smith
topic readwrite carol room/#

pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern write users/%u/outbox
pattern deny devices/%c/locked
`

const PASSWORDS: Record<string, string> = {
  admin: 'admin-pw',
  alice: 'alice-pw',
  bob: 'bob-pw',
  'carol smith': 'carol pw with spaces',
  dave: 'dave-pw', // in the password file only: patterns apply to him
}

interface Actor {
  clientId: string
  username?: string
}

const anon: Actor = { clientId: 'anon-1' }
const alice: Actor = { clientId: 'alice-1', username: 'alice' }
const bob: Actor = { clientId: 'bob-1', username: 'bob' }
const carol: Actor = { clientId: 'carol-1', username: 'carol smith' }
const dave: Actor = { clientId: 'dave-1', username: 'dave' }
const admin: Actor = { clientId: 'admin-1', username: 'admin' }

interface Case {
  actor: Actor
  action: 'publish' | 'subscribe'
  /** Publish: the topic. Subscribe: the filter. */
  topic: string
  /** Subscribe: the topic the admin publishes to (default: `topic`); `$SYS` topics use the broker's retained message. */
  publishTo?: string
}

const pub = (actor: Actor, topic: string): Case => ({ actor, action: 'publish', topic })
const sub = (actor: Actor, topic: string, publishTo?: string): Case =>
  publishTo === undefined
    ? { actor, action: 'subscribe', topic }
    : { actor, action: 'subscribe', topic, publishTo }

const CASES: Case[] = [
  pub(anon, 'inbox/anon'),
  pub(anon, 'public/news'),
  pub(anon, 'devices/anon-1/state'),
  pub(anon, 'devices/other/state'),
  pub(anon, 'users//outbox'),
  pub(alice, 'alice/x'),
  pub(alice, 'alice/private/x'),
  pub(alice, 'shared/alice'),
  pub(alice, 'public/news'),
  pub(alice, 'bob/out'),
  pub(alice, 'devices/alice-1/state'),
  pub(alice, 'devices/alice-1/locked'),
  pub(alice, 'users/alice/outbox'),
  pub(alice, 'users/bob/outbox'),
  pub(alice, '$SYS/broker/version'),
  pub(alice, '$app/x'),
  pub(bob, 'bob/out'),
  pub(bob, 'alice/status'),
  pub(bob, '$app/bob/x'),
  pub(bob, '$app/other'),
  pub(bob, '$SYS/test/x'),
  pub(carol, 'carol room/temp'),
  pub(carol, 'carol room'),
  pub(carol, 'carol/temp'),
  pub(dave, 'devices/dave-1/x'),
  pub(dave, 'devices/dave-1'),
  pub(dave, 'devices/dave-1/locked'),
  pub(dave, 'alice/x'),
  pub(dave, 'users/dave/outbox'),
  pub(dave, 'users/dave/inbox'),
  pub(admin, '$SYS/anything'),
  sub(anon, 'public/news'),
  sub(anon, 'public/secret'),
  sub(anon, 'inbox/anon'),
  sub(anon, 'devices/anon-1/cmd'),
  sub(anon, '$SYS/broker/version'),
  sub(alice, 'public/news'),
  sub(alice, 'public/secret'),
  sub(alice, 'public/#', 'public/a/b'),
  sub(alice, 'alice/y'),
  sub(carol, 'carol room/+', 'carol room/w'),
  sub(alice, 'alice/private/x'),
  sub(alice, 'shared/alice'),
  sub(alice, 'users/alice/inbox'),
  sub(alice, 'users/alice/outbox'),
  sub(alice, '$SYS/broker/version'),
  sub(bob, '$SYS/broker/version'),
  sub(bob, 'alice/status'),
  sub(bob, 'bob/out'),
  sub(bob, '$app/bob/z'),
  sub(bob, '$app/x'),
  sub(carol, 'carol room/temp'),
  sub(dave, 'devices/dave-1/cmd'),
  sub(dave, 'devices/dave-1/locked'),
  sub(dave, 'devices/alice-1/cmd'),
  sub(dave, 'public/news'),
  sub(dave, 'users/dave/inbox'),
]

/**
 * Cases where the two are known to differ (MOSQUITTO_ACL_DIFFERENCES and the
 * converter's `unmapped` report): asserted both ways, so a change on either
 * side shows up.
 */
const KNOWN_DIFFERENCES: Array<Case & { mosquitto: boolean; ours: boolean; why: string }> = [
  {
    ...sub(alice, 'alice/#', 'alice/z'),
    mosquitto: true,
    ours: false,
    why: 'Mosquitto grants every SUBSCRIBE and filters per message; ours refuses a filter overlapping a deny rule',
  },
  {
    ...sub(alice, 'alice/+', 'alice/w'),
    mosquitto: true,
    ours: false,
    why: '`alice/+` can match `alice/private`, which her `topic deny alice/private/#` covers (`#` matches its parent level)',
  },
  {
    ...sub(dave, '#', 'devices/dave-1/k'),
    mosquitto: true,
    ours: false,
    why: 'Mosquitto grants `#` and delivers what `read` allows; ours refuses a filter no allow rule covers',
  },
  {
    ...pub(admin, 'devices/admin-1/locked'),
    mosquitto: true,
    ours: false,
    why: "Mosquitto's own `topic readwrite #` allows before `pattern deny` is consulted; our deny wins",
  },
]

let dir: string
let broker: PlainMosquitto | undefined
let engine: PolicyEngine
let observer: MqttClient
let adminPublisher: MqttClient
const observed = new Set<string>()

beforeAll(async () => {
  dir = await makeTempDir('mosq-acl-compat')
  const aclFile = join(dir, 'acl')
  const passwordFile = join(dir, 'passwords')
  await writeFile(aclFile, ACL, { mode: 0o600 })
  let first = true
  for (const [username, password] of Object.entries(PASSWORDS)) {
    await mosquittoPasswd([...(first ? ['-c'] : []), '-b', passwordFile, username, password])
    first = false
  }
  broker = await PlainMosquitto.start({ dir, aclFile, passwordFile })

  const parsed = parseAclFile(ACL)
  expect(parsed.problems).toEqual([])
  engine = PolicyEngine.compile(policySchema.parse(aclToPolicy(parsed).policy))

  observer = await connectAs({ clientId: 'observer', username: 'admin' })
  observer.on('message', (topic, payload) => observed.add(key(topic, payload.toString())))
  await withTimeout(observer.subscribeAsync(['#', '$SYS/#', '$app/#'], { qos: 0 }), 'observer SUBSCRIBE')
  adminPublisher = await connectAs({ clientId: 'admin-pub', username: 'admin' })
})

afterAll(async () => {
  await Promise.allSettled([observer?.endAsync(true), adminPublisher?.endAsync(true)])
  await broker?.stop()
  if (dir !== undefined) await removeDir(dir)
})

describe('acl_file: the real Mosquitto and our converted policy agree', () => {
  it('the conversion reports exactly the lines whose meaning differs', () => {
    const { unmapped } = aclToPolicy(parseAclFile(ACL))
    expect(unmapped.map((u) => [u.line, u.outcome])).toEqual([
      [22, 'narrowed'], // bob: topic readwrite $SYS/test/# (Mosquitto refuses PUBLISH to $SYS)
      [30, 'kept'], // pattern deny devices/%c/locked vs admin's topic readwrite #
    ])
  })

  it(`decides ${CASES.length} publish and subscribe cases the same way`, async () => {
    expect(CASES.length).toBeGreaterThanOrEqual(40)
    const rows = await runAll(CASES)
    const mismatches = rows.filter((r) => r.mosquitto !== r.ours)
    expect(mismatches, `Mosquitto and our engine disagree:\n${table(rows)}`).toEqual([])
    // Mosquitto 2.0 grants every SUBSCRIBE, even where `read` then withholds every message.
    const refused = rows.filter((r) => r.case.action === 'subscribe' && r.subackGranted !== true)
    expect(refused, table(refused)).toEqual([])
  })

  it('differs exactly where documented', async () => {
    const rows = await runAll(KNOWN_DIFFERENCES)
    const expected = KNOWN_DIFFERENCES.map((c) => ({ mosquitto: c.mosquitto, ours: c.ours }))
    expect(
      rows.map((r) => ({ mosquitto: r.mosquitto, ours: r.ours })),
      `Known differences changed:\n${table(rows)}\n${KNOWN_DIFFERENCES.map((c) => c.why).join('\n')}`,
    ).toEqual(expected)
  })
})

interface Row {
  case: Case
  mosquitto: boolean
  ours: boolean
  detail: string
  /** Subscribe cases: whether Mosquitto's SUBACK granted the filter. */
  subackGranted?: boolean
}

interface Observation {
  delivered: boolean
  subackGranted?: boolean
}

async function runAll(cases: ReadonlyArray<Case>): Promise<Row[]> {
  const rows: Row[] = []
  for (let i = 0; i < cases.length; i += BATCH) {
    const batch = cases.slice(i, i + BATCH)
    rows.push(...(await Promise.all(batch.map((c) => runCase(c)))))
  }
  return rows
}

async function runCase(c: Case): Promise<Row> {
  const principal: Principal = {
    deviceId: c.actor.clientId,
    clientId: c.actor.clientId,
    groups: [],
    ...(c.actor.username === undefined ? {} : { username: c.actor.username }),
  }
  const decision =
    c.action === 'publish'
      ? engine.decide(principal, {
          action: 'publish',
          topic: c.topic,
          qos: 1,
          retain: false,
          payloadBytes: 16,
        })
      : engine.decide(principal, { action: 'subscribe', topic: c.topic, qos: 0 })
  const detail = decision.allowed ? decision.rule.label : `${decision.reason} ${decision.rule?.label ?? ''}`
  const seen = await serialised(c.actor.clientId, () =>
    c.action === 'publish' ? mosquittoDeliversPublish(c) : mosquittoDeliversToSubscriber(c),
  )
  return { case: c, mosquitto: seen.delivered, ours: decision.allowed, detail: detail.trim(), ...seen }
}

async function mosquittoDeliversPublish(c: Case): Promise<Observation> {
  const payload = uniquePayload()
  const client = await connectAs(c.actor)
  try {
    await withTimeout(client.publishAsync(c.topic, payload, { qos: 1 }), `PUBLISH ${c.topic}`)
  } finally {
    await withTimeout(client.endAsync(), 'DISCONNECT')
  }
  await barrier(observer)
  return { delivered: observed.has(key(c.topic, payload)) }
}

async function mosquittoDeliversToSubscriber(c: Case): Promise<Observation> {
  const topic = c.publishTo ?? c.topic
  const payload = uniquePayload()
  const received: string[] = []
  const client = await connectAs(c.actor)
  try {
    client.on('message', (t, p) => received.push(key(t, p.toString())))
    const granted = await withTimeout(client.subscribeAsync(c.topic, { qos: 0 }), `SUBSCRIBE ${c.topic}`)
    if (granted.some((g) => g.qos > 2)) return { delivered: false, subackGranted: false }
    const retained = topic.startsWith('$SYS/')
    if (!retained) {
      await withTimeout(adminPublisher.publishAsync(topic, payload, { qos: 1 }), `admin PUBLISH ${topic}`)
    }
    await barrier(client)
    const delivered = retained
      ? received.some((k) => k.startsWith(`${topic}\u0000`))
      : received.includes(key(topic, payload))
    return { delivered, subackGranted: true }
  } finally {
    await withTimeout(client.endAsync(), 'DISCONNECT')
  }
}

/** Resolves once everything Mosquitto queued for `client` before now has arrived. */
async function barrier(client: MqttClient): Promise<void> {
  await withTimeout(
    client.unsubscribeAsync(`barrier/${randomBytes(4).toString('hex')}`),
    'barrier UNSUBSCRIBE',
  )
}

async function connectAs(actor: Actor): Promise<MqttClient> {
  const options: mqtt.IClientOptions = {
    clientId: actor.clientId,
    protocolVersion: 4,
    clean: true,
    reconnectPeriod: 0,
    connectTimeout: OP_TIMEOUT_MS,
  }
  if (actor.username !== undefined) {
    options.username = actor.username
    options.password = PASSWORDS[actor.username]
  }
  return withTimeout(mqtt.connectAsync(broker!.url, options), `CONNECT as ${actorLabel(actor)}`)
}

const locks = new Map<string, Promise<void>>()

/**
 * Runs `fn` after every earlier call with the same client id has finished:
 * the patterns depend on the id, and a second connection with the same id
 * would take the first one over.
 */
async function serialised<T>(clientId: string, fn: () => Promise<T>): Promise<T> {
  const previous = locks.get(clientId) ?? Promise.resolve()
  let release!: () => void
  const mine = new Promise<void>((resolve) => {
    release = resolve
  })
  locks.set(
    clientId,
    previous.then(() => mine),
  )
  await previous
  try {
    return await fn()
  } finally {
    release()
  }
}

function actorLabel(actor: Actor): string {
  return actor.username === undefined
    ? `anonymous (${actor.clientId})`
    : `${actor.username} (${actor.clientId})`
}

function key(topic: string, payload: string): string {
  return `${topic}\u0000${payload}`
}

function uniquePayload(): string {
  return `m-${randomBytes(8).toString('hex')}`
}

async function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `${what} got no answer from mosquitto within ${OP_TIMEOUT_MS} ms.\n${broker?.tail() ?? ''}`,
          ),
        ),
      OP_TIMEOUT_MS,
    )
  })
  try {
    return await Promise.race([promise, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function table(rows: ReadonlyArray<Row>): string {
  const lines = rows.map((r) => {
    const who = actorLabel(r.case.actor).padEnd(26)
    const mark = r.mosquitto === r.ours ? '  ' : '≠ '
    const target =
      r.case.publishTo === undefined ? r.case.topic : `${r.case.topic} (msg on ${r.case.publishTo})`
    return `${mark}${who} ${r.case.action.padEnd(9)} ${target.padEnd(44)} mosquitto=${yn(r.mosquitto)} ours=${yn(r.ours)}  ${r.detail}`
  })
  return lines.join('\n')
}

function yn(value: boolean): string {
  return value ? 'allow' : 'deny '
}
