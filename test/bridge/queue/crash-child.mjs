// Child process of crash.test.ts: appends to the durable queue in `dir` as fast as it can, with
// `appenders` concurrent appenders, and writes to stdout (synchronously, so a line written is a line
// the parent gets even after SIGKILL):
//   `ready`       once the queue is open;
//   `<seq>`       after the append of that seq resolved, that is once it is durable;
//   `a<seq>`      just before it acknowledges seq (lazily persisted: it may come back after a crash).
// It runs until it is killed. It imports the compiled queue: run `npm run build` first.
import { writeSync } from 'node:fs'
import { FileQueue } from '../../../dist/bridge/queue/file-queue.js'

const [dir, appendersArg = '16'] = process.argv.slice(2)
const { queue } = await FileQueue.open(dir, { quotaBytes: 256 * 1024 * 1024, segmentBytes: 256 * 1024 })
writeSync(1, 'ready\n')

let n = 0
const message = () => {
  n++
  return {
    topic: `devices/dev-${n % 7}/telemetry`,
    payload: Buffer.alloc(16 + (n % 241), n % 256),
    qos: 1,
    retain: false,
    deviceId: `dev-${n % 7}`,
    clientId: `client-${n % 7}`,
    receivedAt: Date.now(),
  }
}

async function appender() {
  for (;;) {
    const entry = await queue.append(message())
    if (entry) writeSync(1, `${entry.seq}\n`)
    else await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

// A consumer that acknowledges all but the newest 1,000 entries it has read, so segments fill,
// get acknowledged and are deleted while the kill may come.
const unacked = []
queue.read().subscribe((entry) => {
  unacked.push(entry.seq)
  while (unacked.length > 1000) {
    const seq = unacked.shift()
    writeSync(1, `a${seq}\n`)
    queue.ack(seq)
  }
})

for (let i = 0; i < Number(appendersArg); i++) void appender()
