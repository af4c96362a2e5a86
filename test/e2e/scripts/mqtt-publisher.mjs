// A device for the end-to-end tests, run inside a network namespace:
//   node mqtt-publisher.mjs '<json options>'
// Connects with mqtt.js and publishes QoS 1 `<prefix>-<n>` every `intervalMs` (at most `window`
// unacknowledged; a tick with a full window is skipped), appending each acknowledged payload to
// `ackFile`. Prints `connected`, then `progress sent=<n> acked=<n>` each second; on SIGTERM stops
// publishing, waits up to 10 s for the PUBACKs in flight, prints `done sent=<n> acked=<n>` and exits.
// Exits 1 if the connection fails or closes before SIGTERM.
import { appendFileSync } from 'node:fs'
import mqtt from 'mqtt'

const o = JSON.parse(process.argv[2] ?? '{}')
let sent = 0
let acked = 0
let inFlight = 0
let stopping = false

const client = await mqtt
  .connectAsync({
    host: o.host,
    port: o.port,
    username: o.username,
    password: o.password,
    clientId: o.clientId,
    reconnectPeriod: 0,
    connectTimeout: 5000,
  })
  .catch((err) => {
    console.error(`mqtt-publisher: cannot connect: ${err.message}`)
    process.exit(1)
  })
console.log('connected')
client.on('close', () => {
  if (!stopping) {
    console.error(`mqtt-publisher: connection closed; sent=${sent} acked=${acked}`)
    process.exit(1)
  }
})

const tick = setInterval(() => {
  if (stopping || inFlight >= o.window) return
  const payload = `${o.prefix}-${sent}`
  sent++
  inFlight++
  client.publish(o.topic, payload, { qos: 1 }, (err) => {
    inFlight--
    if (err) return
    acked++
    appendFileSync(o.ackFile, `${payload}\n`)
  })
}, o.intervalMs)
const progress = setInterval(() => console.log(`progress sent=${sent} acked=${acked}`), 1000)

process.once('SIGTERM', async () => {
  stopping = true
  clearInterval(tick)
  clearInterval(progress)
  for (let i = 0; i < 200 && inFlight > 0; i++) await new Promise((r) => setTimeout(r, 50))
  console.log(`done sent=${sent} acked=${acked} inflight=${inFlight}`)
  await client.endAsync().catch(() => undefined)
  process.exit(0)
})
