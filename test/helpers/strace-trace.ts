/**
 * Reads the output of `strace -f -tt -T -yy -x -s <big> -o FILE` into system
 * calls, and checks from it that each PUBACK the gateway wrote on a device's
 * socket came after the fdatasync (or fsync) of the queue segment that holds
 * the record of that message. Pure text processing: no native code.
 *
 * Order is the order of the lines: strace prints an event when it handles the
 * stop of the traced thread, and a thread stopped at a system call's return is
 * held there until its line is printed, so whatever that thread made happen
 * afterwards (here: the main thread writing a PUBACK once the thread pool
 * reported the fdatasync done) is printed after that line.
 */

/** One system call as strace printed it (one line, or an `<unfinished ...>` line and its `resumed` line). */
export interface Syscall {
  pid: number
  name: string
  /** Index of the line where the call entered (its only line, or its `<unfinished ...>` line). */
  enter: number
  /** Index of the line where it returned. */
  exit: number
  /** The first argument when it is a file descriptor. */
  fd: number | undefined
  /** What -y / -yy showed for that descriptor: a path, or `TCP:[local->peer]`. */
  fdPath: string | undefined
  /** The bytes of the call's buffers (string arguments or iov_base), cut to the return value for writes. */
  data: Buffer
  /** The return value; undefined when strace printed `?`. */
  ret: number | undefined
  /** The errno name of a failed call (`EIO`). */
  errno: string | undefined
  /** strace tampered with the call (`-e inject=`): its result is not the kernel's. */
  injected: boolean
  /** The line(s) as printed. */
  lines: string[]
}

const LINE = /^(\d+)\s+(\d\d:\d\d:\d\d\.\d+)\s+(.*)$/
const RESUMED = /^<\.\.\. ([a-z0-9_]+) resumed>(.*)$/
const CALL = /^([a-z0-9_]+)\((.*)$/
const UNFINISHED = ' <unfinished ...>'
const WRITES = new Set(['write', 'writev', 'pwrite64', 'pwritev', 'pwritev2', 'sendto', 'sendmsg'])

/** Parses a whole trace. Throws on a string strace cut short (raise -s) or a line it cannot read. */
export function parseStrace(text: string): Syscall[] {
  const calls: Syscall[] = []
  const open = new Map<number, { name: string; args: string; line: number; text: string }>()
  const lines = text.split('\n')
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!
    const m = LINE.exec(raw)
    if (!m) continue
    const pid = Number(m[1])
    const body = m[3]!
    if (body.startsWith('+++') || body.startsWith('---')) continue
    const resumed = RESUMED.exec(body)
    if (resumed) {
      const started = open.get(pid)
      if (!started || started.name !== resumed[1]) continue
      open.delete(pid)
      calls.push(finish(pid, started.name, started.args + resumed[2]!, started.line, i, [started.text, raw]))
      continue
    }
    const call = CALL.exec(body)
    if (!call) continue
    if (body.endsWith(UNFINISHED)) {
      const args = call[2]!.slice(0, -UNFINISHED.length)
      open.set(pid, { name: call[1]!, args, line: i, text: raw })
      continue
    }
    calls.push(finish(pid, call[1]!, call[2]!, i, i, [raw]))
  }
  return calls
}

function finish(
  pid: number,
  name: string,
  rest: string,
  enter: number,
  exit: number,
  lines: string[],
): Syscall {
  const close = closingParen(rest)
  if (close === -1) throw new Error(`cannot read this strace line: ${lines.join(' / ')}`)
  const args = rest.slice(0, close)
  const result = /^\)\s+=\s+(-?\d+|\?)(?:\s+([A-Z][A-Z0-9]*)\s+\([^)]*\))?/.exec(rest.slice(close))
  const ret = result && result[1] !== '?' ? Number(result[1]) : undefined
  const fdMatch = /^(\d+)(?:<)?/.exec(args)
  const fd = fdMatch ? Number(fdMatch[1]) : undefined
  let data = buffersOf(args, lines)
  if (WRITES.has(name) && ret !== undefined && ret >= 0) data = data.subarray(0, ret)
  return {
    pid,
    name,
    enter,
    exit,
    fd,
    fdPath: fdMatch ? annotation(args, fdMatch[0].length) : undefined,
    data,
    ret,
    errno: result?.[2],
    injected: rest.slice(close).includes('(INJECTED)'),
    lines,
  }
}

/** The index of the `)` that closes the argument list (strings skipped), or -1. */
function closingParen(s: string): number {
  let depth = 1
  for (let i = 0; i < s.length; i++) {
    const c = s[i]
    if (c === '"') i = endOfString(s, i)
    else if (c === '(' || c === '[' || c === '{') depth++
    else if (c === ')' || c === ']' || c === '}') {
      depth--
      if (depth === 0) return i
    }
  }
  return -1
}

/** Index of the closing quote of the string literal opening at `start`. */
function endOfString(s: string, start: number): number {
  for (let i = start + 1; i < s.length; i++) {
    if (s[i] === '\\') i++
    else if (s[i] === '"') return i
  }
  return s.length
}

/** The -y / -yy annotation after the fd at `at` (just past its `<`), or undefined. */
function annotation(args: string, at: number): string | undefined {
  if (args[at - 1] !== '<') return undefined
  // A socket's annotation holds `->`: it ends at `]>`.
  const end = /^[A-Z0-9]+:\[/.test(args.slice(at)) ? args.indexOf(']>', at) + 1 : args.indexOf('>', at)
  return end > 0 ? args.slice(at, end) : undefined
}

/** The bytes of the call's buffers: every `iov_base="..."`, else the first string argument. */
function buffersOf(args: string, lines: string[]): Buffer {
  const literals: Array<{ at: number; end: number }> = []
  for (let i = 0; i < args.length; i++) {
    if (args[i] !== '"') continue
    const end = endOfString(args, i)
    literals.push({ at: i, end })
    i = end
  }
  const vectors = literals.filter(({ at }) => args.slice(Math.max(0, at - 9), at) === 'iov_base=')
  const chosen = vectors.length > 0 ? vectors : literals.slice(0, 1)
  for (const { end } of chosen) {
    if (args.startsWith('...', end + 1)) {
      throw new Error(`strace cut a buffer short (raise -s): ${lines.join(' / ')}`)
    }
  }
  return Buffer.concat(chosen.map(({ at, end }) => unquote(args.slice(at + 1, end))))
}

const SIMPLE: Record<string, number> = { n: 10, t: 9, r: 13, v: 11, f: 12, a: 7, b: 8, '\\': 92, '"': 34 }

/** The bytes of a C string literal as strace prints it (without its quotes). */
export function unquote(s: string): Buffer {
  const out: number[] = []
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (s[i] !== '\\') {
      if (c < 0x80) out.push(c)
      else out.push(...Buffer.from(s[i]!, 'utf8'))
      continue
    }
    const next = s[++i]!
    if (next === 'x') {
      out.push(Number.parseInt(s.slice(i + 1, i + 3), 16))
      i += 2
    } else if (next >= '0' && next <= '7') {
      const octal = /^[0-7]{1,3}/.exec(s.slice(i))![0]
      out.push(Number.parseInt(octal, 8))
      i += octal.length - 1
    } else if (next in SIMPLE) {
      out.push(SIMPLE[next]!)
    } else {
      throw new Error(`unknown escape \\${next} in a strace string`)
    }
  }
  return Buffer.from(out)
}

/** One MQTT packet the gateway wrote on a socket, with the call that wrote its last byte. */
export interface WrittenPacket {
  type: number
  body: Buffer
  call: Syscall
}

/** Splits the bytes of `calls` (one socket's writes, in order) into MQTT packets. */
export function mqttPackets(calls: Syscall[]): WrittenPacket[] {
  const packets: WrittenPacket[] = []
  let pending = Buffer.alloc(0)
  for (const call of calls) {
    pending = Buffer.concat([pending, call.data])
    for (;;) {
      const frame = frameLength(pending)
      if (frame === undefined || pending.length < frame.total) break
      packets.push({
        type: pending[0]! >> 4,
        body: pending.subarray(frame.header, frame.total),
        call,
      })
      pending = pending.subarray(frame.total)
    }
  }
  return packets
}

function frameLength(buf: Buffer): { header: number; total: number } | undefined {
  let length = 0
  let multiplier = 1
  for (let i = 1; i < 5; i++) {
    if (i >= buf.length) return undefined
    const byte = buf[i]!
    length += (byte & 0x7f) * multiplier
    multiplier *= 128
    if ((byte & 0x80) === 0) return { header: i + 1, total: i + 1 + length }
  }
  throw new Error('malformed MQTT remaining length on the socket')
}

export const PUBACK = 4

/** What the trace shows for one PUBACK: the record's write, the sync that covered it, or the problem. */
export interface PubackCheck {
  packetId: number
  puback: Syscall
  /** The last write of the record (its payload) to a segment before the PUBACK. */
  record: Syscall | undefined
  /** The first successful fdatasync/fsync of that segment after the record's write and before the PUBACK. */
  sync: Syscall | undefined
  /** Why the order is wrong; undefined when it is right. */
  problem: string | undefined
}

export interface OrderOptions {
  /** The LAN socket of the device (what -yy shows, e.g. `TCP:[127.0.0.1:1883->127.0.0.1:40000]`). */
  socket: string
  /** True for the path of a queue segment file. */
  isSegment: (path: string) => boolean
  /** The payload the device sent under each packet id. */
  payloadOf: ReadonlyMap<number, Buffer>
  /**
   * False for the queue's `write` durability: a PUBACK needs only the record's write to have
   * returned before it; `sync` is then the first sync of the segment after the record, if any.
   * Default true.
   */
  requireSync?: boolean
}

const SYNCS = new Set(['fdatasync', 'fsync'])

/**
 * For each PUBACK written on `socket`: the record of its message was written to
 * a segment file, and a successful (not injected) fdatasync or fsync of that
 * file entered after that write returned and returned before the PUBACK's
 * write entered (with `requireSync: false`, only the first part).
 */
export function checkSyncBeforePuback(calls: Syscall[], options: OrderOptions): PubackCheck[] {
  const socketWrites = calls
    .filter((c) => WRITES.has(c.name) && c.fdPath === options.socket)
    .sort((a, b) => a.enter - b.enter)
  const pubacks = mqttPackets(socketWrites).filter((p) => p.type === PUBACK)
  const fileWrites = calls.filter(
    (c) => WRITES.has(c.name) && c.fdPath !== undefined && options.isSegment(c.fdPath),
  )
  const syncs = calls.filter(
    (c) => SYNCS.has(c.name) && c.fdPath !== undefined && options.isSegment(c.fdPath),
  )
  return pubacks.map(({ body, call: puback }) => {
    const packetId = body.readUInt16BE(0)
    const check: PubackCheck = { packetId, puback, record: undefined, sync: undefined, problem: undefined }
    const payload = options.payloadOf.get(packetId)
    if (!payload)
      return { ...check, problem: `PUBACK for packet id ${packetId}, which the device did not send` }
    const record = fileWrites.filter((w) => w.exit < puback.enter && w.data.includes(payload)).at(-1)
    if (!record) return { ...check, problem: `no write of its record to a segment before the PUBACK` }
    if (options.requireSync === false) {
      const sync = syncs.find((s) => s.fdPath === record.fdPath && s.enter > record.exit)
      return { ...check, record, sync }
    }
    const sync = syncs.find(
      (s) =>
        s.fdPath === record.fdPath &&
        s.enter > record.exit &&
        s.exit < puback.enter &&
        s.ret === 0 &&
        !s.injected,
    )
    if (sync) return { ...check, record, sync }
    const next = syncs.find((s) => s.fdPath === record.fdPath && s.enter > record.exit)
    const problem = next
      ? `the first ${next.name} of ${record.fdPath} after the record (line ${next.enter + 1}..${next.exit + 1}, ` +
        `returned ${next.ret}${next.errno ? ` ${next.errno}` : ''}${next.injected ? ', injected' : ''}) ` +
        `did not complete with success before the PUBACK (line ${puback.enter + 1})`
      : `no fdatasync or fsync of ${record.fdPath} after the record was written`
    return { ...check, record, problem }
  })
}

/**
 * `line` for a report: each string literal longer than `max` characters cut (saying how many bytes
 * it held), and an iovec array of more than 4 entries cut after 4 (saying how many more).
 */
export function abbreviate(line: string, max = 40): string {
  let out = ''
  for (let i = 0; i < line.length; i++) {
    if (line[i] !== '"') {
      out += line[i]
      continue
    }
    const end = endOfString(line, i)
    const literal = line.slice(i, end + 1)
    const bytes = unquote(literal.slice(1, -1)).length
    out += literal.length - 2 <= max ? literal : `${literal.slice(0, max + 1)}"…(${bytes} bytes)`
    i = end
  }
  return out.replace(/\[(\{iov_base=[^}]*\}(?:, \{iov_base=[^}]*\}){4,})\]/g, (_, list: string) => {
    const items = list.split(/(?<=\}), /)
    return `[${items.slice(0, 4).join(', ')}, …${items.length - 4} more]`
  })
}
