/**
 * The attacker, a child process: runs one attack of catalog.mjs at a time
 * (`run { attack, durationMs, quick }` -> `done { result | error }`), closes
 * every socket the attack left open, and tells which flooder messages the
 * gateway acknowledged (`flooder` -> `flooder { sent, bits }`).
 */
import { bitsToBase64 } from '../bitset.mjs'
import { send, serveParent } from '../child.mjs'
import { ATTACKS } from './catalog.mjs'
import { bigPublish, flood, flooderAcked, flooderSent, poison, subscriptions } from './compromised.mjs'
import { lockout } from './lockout.mjs'
import { malformed } from './malformed.mjs'
import { bigConnect, idleTls } from './outsider.mjs'

const RUN = {
  'idle-tls': idleTls,
  'big-connect': bigConnect,
  flood,
  'big-publish': bigPublish,
  subscriptions,
  malformed,
  poison,
  lockout,
}
/** An attack that has not returned this long after its deadline is abandoned (its sockets closed). */
const OVERRUN_MS = 30_000

let config

async function run({ attack, durationMs, quick }) {
  const spec = ATTACKS.find((a) => a.name === attack)
  if (!spec || !RUN[attack]) throw new Error(`unknown attack ${attack}`)
  const sockets = new Set()
  const started = performance.now()
  const ctx = {
    ...config,
    address: spec.address,
    anonymousAddress: spec.anonymousAddress,
    sessionAddress: spec.sessionAddress,
    deadline: started + durationMs,
    closing: false,
    track(socket) {
      sockets.add(socket)
      socket.once('close', () => sockets.delete(socket))
    },
  }
  let result = null
  let error = null
  let timer
  try {
    result = await Promise.race([
      RUN[attack](ctx, spec.params(quick)),
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`still running ${OVERRUN_MS} ms after its deadline: abandoned`)),
          durationMs + OVERRUN_MS,
        )
      }),
    ])
  } catch (err) {
    error = err instanceof Error ? err.message : String(err)
  } finally {
    clearTimeout(timer)
  }
  ctx.closing = true
  for (const socket of sockets) socket.destroy()
  return { attack, ms: Math.round(performance.now() - started), result, error }
}

serveParent(
  {
    init({ config: c }) {
      config = c
      send({ type: 'ready' })
    },
    async run(message) {
      send({ type: 'done', ...(await run(message)) })
    },
    flooder() {
      send({ type: 'flooder', sent: flooderSent(), bits: bitsToBase64(flooderAcked) })
    },
  },
  { maxLifeMs: 90 * 60_000 },
)
