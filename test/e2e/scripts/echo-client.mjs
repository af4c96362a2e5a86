// TCP echo client for the end-to-end tests: node echo-client.mjs <host> <port> <payload>.
// Sends the payload, half-closes, prints what came back; exits 1 on error or after 5 s.
import { connect } from 'node:net'

const [host, port, payload = ''] = process.argv.slice(2)
const timer = setTimeout(() => {
  console.error('echo-client: timed out')
  process.exit(1)
}, 5000)
const socket = connect({ host, port: Number(port) }, () => socket.end(payload))
let received = ''
socket.setEncoding('utf8')
socket.on('data', (chunk) => {
  received += chunk
})
socket.on('end', () => {
  clearTimeout(timer)
  process.stdout.write(received)
})
socket.on('error', (err) => {
  console.error(`echo-client: ${err.message}`)
  process.exit(1)
})
