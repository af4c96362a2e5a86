// The container lab's addresses, for deploy/lab/entry.sh (Node, since `ip` carries file
// capabilities that a container without NET_ADMIN cannot exec, even as root):
//   node addresses.mjs own              this container's IPv4 addresses on its networks, as CIDRs
//                                       (not loopback, not the WireGuard interface), one a line
//   node addresses.mjs shared <file>    the first address in <file> (lines from `own` of another
//                                       container) on a network this container is on, not its own
//   node addresses.mjs facing <address> this container's address on the network <address> is on
// Exits 1, printing nothing, when there is none.
import { readFileSync } from 'node:fs'
import { networkInterfaces } from 'node:os'

const toNumber = (address) => address.split('.').reduce((n, part) => n * 256 + Number(part), 0)
const own = Object.entries(networkInterfaces()).flatMap(([name, list]) =>
  name.startsWith('wg') ? [] : (list ?? []).filter((a) => a.family === 'IPv4' && !a.internal),
)
/** Whether `address` is on the network of `a` (an entry of networkInterfaces()). */
const onNetworkOf = (a, address) => {
  const bits = Number(a.cidr.split('/')[1])
  const mask = bits === 0 ? 0 : 2 ** 32 - 2 ** (32 - bits)
  // Masks as unsigned 32-bit numbers: & and >>> 0 keep them unsigned.
  return (toNumber(address) & mask) >>> 0 === (toNumber(a.address) & mask) >>> 0
}

const [command, argument] = process.argv.slice(2)
let found
if (command === 'own') {
  found = own.map((a) => a.cidr).join('\n') || undefined
} else if (command === 'shared' && argument !== undefined) {
  found = readFileSync(argument, 'utf8')
    .split('\n')
    .map((line) => line.trim().split('/')[0])
    .find((address) => address && own.some((a) => a.address !== address && onNetworkOf(a, address)))
} else if (command === 'facing' && argument !== undefined) {
  found = own.find((a) => onNetworkOf(a, argument))?.address
} else {
  console.error('usage: node addresses.mjs own | shared <file> | facing <address>')
  process.exit(2)
}
if (found === undefined) process.exit(1)
console.log(found)
