/**
 * (5) Lockout attacks, each from its own loopback "host": credential-less
 * CONNECTs claiming the client ids of the legitimate devices and of the PSK
 * device (from `ctx.anonymousAddress`), and wrong passwords for `good-1`
 * (from `ctx.address`), in rounds until the deadline. Whether the real
 * devices can still connect is checked by the bench afterwards, from
 * 127.0.0.1, with their real credentials.
 */
import { randomBytes } from 'node:crypto'
import { connectPacket } from '../mqtt-wire.mjs'
import { awaitConnack, openTcp } from './wire.mjs'

async function attempt(ctx, address, options, outcomes) {
  let socket
  try {
    socket = await openTcp(ctx.tcpPort, address)
  } catch (err) {
    outcomes[`tcp ${err.code ?? err.message}`] = (outcomes[`tcp ${err.code ?? err.message}`] ?? 0) + 1
    return
  }
  ctx.track(socket)
  const r = await awaitConnack(socket, connectPacket(options), 5_000)
  const key = r.closed ? 'closed' : r.timeout ? 'no answer' : `CONNACK ${r.code}`
  outcomes[key] = (outcomes[key] ?? 0) + 1
  socket.destroy()
}

async function inParallel(jobs, concurrency) {
  let next = 0
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]()
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
}

export async function lockout(ctx, { perIdentity, wrongPasswords, targets, passwordTarget, maxRounds }) {
  const r = {
    rounds: 0,
    anonymous: { address: ctx.anonymousAddress, targets, attempts: 0, outcomes: {} },
    wrongPassword: { address: ctx.address, target: passwordTarget, attempts: 0, outcomes: {} },
  }
  while (r.rounds < maxRounds && performance.now() < ctx.deadline) {
    r.rounds++
    const jobs = []
    for (const clientId of targets) {
      for (let i = 0; i < perIdentity; i++) {
        jobs.push(() => attempt(ctx, ctx.anonymousAddress, { clientId }, r.anonymous.outcomes))
        r.anonymous.attempts++
      }
    }
    for (let i = 0; i < wrongPasswords; i++) {
      const password = randomBytes(12).toString('base64url')
      jobs.push(() =>
        attempt(
          ctx,
          ctx.address,
          { clientId: passwordTarget, username: passwordTarget, password },
          r.wrongPassword.outcomes,
        ),
      )
      r.wrongPassword.attempts++
    }
    await inParallel(jobs, 20)
  }
  return r
}
