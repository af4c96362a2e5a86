import { Redis, type RedisOptions } from 'ioredis'

/**
 * The state a group of cloud consumers shares in Redis (docs/scaling.md), so that any member can
 * take any message and a member's restart loses nothing:
 *
 * - `<prefix>bindings`: a hash from kid (hex) to the key binding's bytes, as the gateway signed it.
 *   A member that reads one verifies it against the CA again: Redis is trusted with availability,
 *   never with a key.
 * - `<prefix>seq:{<gateway>}:<kid>:high` and `...:bits`: per gateway and signing key, the highest
 *   gw-seq delivered and a ring of `window` bits, one per gw-seq in (high - window, high]. A gw-seq is new when it is above
 *   high, or inside the window with its bit clear; at or below high - window it is taken as delivered
 *   (an anti-replay window: a gateway re-sends at most what its cloud link had in flight, far less).
 *   8 KiB per gateway at the default window of 65,536.
 * - the output stream (`output: stream`): one entry per verified message, written by the same Lua
 *   script that records its gw-seq, so an entry and its record are one step: exactly once for the
 *   application reading the stream, whatever member dies when.
 */

/** What Redis says about a gw-seq. */
export const SeqState = {
  /** Not delivered before. */
  new: 0,
  /** Delivered before (its bit is set). */
  seen: 1,
  /** Older than the window: taken as delivered. */
  beforeWindow: 2,
} as const
export type SeqState = (typeof SeqState)[keyof typeof SeqState]

const LUA_STATE = `
local function state(khigh, kbits, seq, w)
  local high = tonumber(redis.call('GET', khigh))
  if not high or seq > high then return 0 end
  if seq <= high - w then return 2 end
  return redis.call('GETBIT', kbits, seq % w)
end
local function record(khigh, kbits, seq, w)
  local high = tonumber(redis.call('GET', khigh))
  if not high then
    redis.call('SET', khigh, seq)
    redis.call('SETBIT', kbits, seq % w, 1)
  elseif seq > high then
    if seq - high >= w then
      redis.call('DEL', kbits)
    else
      for s = high + 1, seq - 1 do redis.call('SETBIT', kbits, s % w, 0) end
    end
    redis.call('SETBIT', kbits, seq % w, 1)
    redis.call('SET', khigh, seq)
  elseif seq > high - w then
    redis.call('SETBIT', kbits, seq % w, 1)
  end
end
`

/** KEYS: high, bits. ARGV: seq, window. */
const SEQ_STATE = `${LUA_STATE}
return state(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]))`

/** KEYS: high, bits. ARGV: seq, window. Returns the state before recording. */
const SEQ_RECORD = `${LUA_STATE}
local seq, w = tonumber(ARGV[1]), tonumber(ARGV[2])
local before = state(KEYS[1], KEYS[2], seq, w)
record(KEYS[1], KEYS[2], seq, w)
return before`

/**
 * KEYS: high, bits, stream. ARGV: seq, window, keep duplicates ('1' or '0'), then the entry's
 * field/value pairs. A new gw-seq: the entry is added and recorded in the same step. A delivered one:
 * added with duplicate=1 when duplicates are kept, else nothing. Returns the state found.
 */
const DELIVER = `${LUA_STATE}
local seq, w = tonumber(ARGV[1]), tonumber(ARGV[2])
local before = state(KEYS[1], KEYS[2], seq, w)
if before ~= 0 then
  if ARGV[3] == '1' then redis.call('XADD', KEYS[3], '*', 'duplicate', '1', unpack(ARGV, 4)) end
  return before
end
redis.call('XADD', KEYS[3], '*', unpack(ARGV, 4))
record(KEYS[1], KEYS[2], seq, w)
return 0`

export interface GroupStoreOptions {
  host: string
  port: number
  db: number
  username?: string
  password?: string
  keyPrefix: string
  window: number
  /** Called when the connection to Redis is lost or back (the member pauses meanwhile). */
  onConnection?: (up: boolean, detail: string) => void
}

interface GroupCommands {
  egSeqState(high: string, bits: string, seq: number, window: number): Promise<number>
  egSeqRecord(high: string, bits: string, seq: number, window: number): Promise<number>
  egDeliver(
    high: string,
    bits: string,
    stream: string,
    seq: number,
    window: number,
    keepDuplicates: string,
    ...fields: Array<string | Buffer>
  ): Promise<number>
}

/** Whose gw-seqs: the gateway and the kid (hex) of its signing key. */
export interface SeqSource {
  gatewayId: string
  kid: string
}

/** A gateway id is a certificate name: bounded, but it goes into key names, so it is checked. */
const MAX_GATEWAY_ID = 256

export class GroupStore {
  /** The connection, for the group's own bookkeeping (heartbeats, adoption locks). */
  readonly redis: Redis & GroupCommands
  private readonly prefix: string
  private readonly window: number

  constructor(options: GroupStoreOptions) {
    const redisOptions: RedisOptions = {
      host: options.host,
      port: options.port,
      db: options.db,
      ...(options.username !== undefined && { username: options.username }),
      ...(options.password !== undefined && { password: options.password }),
      // While Redis is away, commands wait (the member pauses and acknowledges nothing) instead of
      // failing: nothing is lost and nothing is skipped.
      maxRetriesPerRequest: null,
      enableOfflineQueue: true,
      retryStrategy: (times) => Math.min(100 * times, 2000),
      lazyConnect: true,
      // The commands of several messages in hand (one per MQTT connection) issued in the same
      // tick go out in one write.
      enableAutoPipelining: true,
    }
    this.redis = new Redis(redisOptions) as Redis & GroupCommands
    this.prefix = options.keyPrefix
    this.window = options.window
    this.redis.defineCommand('egSeqState', { numberOfKeys: 2, lua: SEQ_STATE })
    this.redis.defineCommand('egSeqRecord', { numberOfKeys: 2, lua: SEQ_RECORD })
    this.redis.defineCommand('egDeliver', { numberOfKeys: 3, lua: DELIVER })
    let up = false
    this.redis.on('ready', () => {
      if (!up) options.onConnection?.(true, `${options.host}:${options.port}`)
      up = true
    })
    this.redis.on('close', () => {
      if (up) options.onConnection?.(false, 'connection closed')
      up = false
    })
    // Errors are the reconnection's; commands wait for it (the member logs the loss above).
    this.redis.on('error', () => undefined)
  }

  /** Connects, and fails with Redis's own reason when the first connection cannot be made. */
  async open(): Promise<void> {
    let first: Error | undefined
    const failed = (err: Error) => {
      first ??= err
    }
    this.redis.on('error', failed)
    try {
      await this.redis.connect()
    } catch (err) {
      // ioredis rejects with "Connection is closed"; the socket's own error says why.
      this.redis.disconnect()
      throw first ?? err
    } finally {
      this.redis.off('error', failed)
    }
  }

  async close(): Promise<void> {
    await this.redis.quit().catch(() => this.redis.disconnect())
  }

  /**
   * gw-seqs are kept per gateway and signing key: a gateway whose state was wiped starts its
   * sequence again with a new key (signing.key is in its stateDir), and is not taken for a replay.
   */
  private seqKeys(source: SeqSource): [string, string] {
    const { gatewayId, kid } = source
    if (gatewayId.length === 0 || gatewayId.length > MAX_GATEWAY_ID) {
      throw new RangeError(`gateway id of ${gatewayId.length} characters`)
    }
    if (!/^[0-9a-f]{1,64}$/.test(kid)) throw new RangeError('kid not in hex')
    const base = `${this.prefix}seq:{${gatewayId}}:${kid}`
    return [`${base}:high`, `${base}:bits`]
  }

  /** What was delivered of this gw-seq, without recording anything. */
  async seqState(source: SeqSource, seq: number): Promise<SeqState> {
    const [high, bits] = this.seqKeys(source)
    return (await this.redis.egSeqState(high, bits, seq, this.window)) as SeqState
  }

  /** Records the gw-seq as delivered; returns what it was before. */
  async recordSeq(source: SeqSource, seq: number): Promise<SeqState> {
    const [high, bits] = this.seqKeys(source)
    return (await this.redis.egSeqRecord(high, bits, seq, this.window)) as SeqState
  }

  /**
   * Adds the message to `stream` and records its gw-seq in one step, unless it was delivered
   * before (then added with duplicate=1 when `keepDuplicates`). Returns the state found.
   */
  async deliverToStream(
    stream: string,
    source: SeqSource,
    seq: number,
    fields: Array<[string, string | Buffer]>,
    keepDuplicates: boolean,
  ): Promise<SeqState> {
    const [high, bits] = this.seqKeys(source)
    return (await this.redis.egDeliver(
      high,
      bits,
      stream,
      seq,
      this.window,
      keepDuplicates ? '1' : '0',
      ...fields.flat(),
    )) as SeqState
  }

  /** Keeps a verified key binding's bytes for the other members. */
  async saveBinding(kidHex: string, bytes: Buffer): Promise<void> {
    await this.redis.hset(`${this.prefix}bindings`, kidHex, bytes)
  }

  /** A key binding another member kept, to be verified again by the caller. */
  async loadBinding(kidHex: string): Promise<Buffer | null> {
    return this.redis.hgetBuffer(`${this.prefix}bindings`, kidHex)
  }
}
