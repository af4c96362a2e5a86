// TCP echo server for the end-to-end tests: node echo-server.mjs <host> <port>.
// Prints "listening <host>:<port>" once bound; echoes every byte back.
import { createServer } from 'node:net'

const [host, port] = process.argv.slice(2)
const server = createServer((socket) => {
  socket.on('error', () => {})
  socket.pipe(socket)
})
server.listen(Number(port), host, () => {
  console.log(`listening ${host}:${port}`)
})
process.on('SIGTERM', () => server.close(() => process.exit(0)))
