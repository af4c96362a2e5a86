#!/usr/bin/env -S node --max-semi-space-size=2
// First: `start` holds SIGHUP from here on (cli/launch-hup.ts).
import './launch-hup.js'
import { Command, CommanderError } from 'commander'
import { registerCloud } from './commands/cloud.js'
import { registerDeadLetter } from './commands/deadletter.js'
import { registerDevice } from './commands/device.js'
import { registerLab } from './commands/lab.js'
import { registerPolicy } from './commands/policy.js'
import { registerStart } from './commands/start.js'
import { registerStatus } from './commands/status.js'
import { registerVpn } from './commands/vpn.js'
import { EXIT_CONFIG, reportFatal } from './fail.js'

const program = new Command()
program
  .name('edge-gateway')
  .description(
    'MQTT edge security gateway: authenticated LAN broker bridged to a cloud broker over mutual TLS',
  )
  .version('0.1.0')
  .showHelpAfterError()
  .exitOverride()

registerStart(program)
registerLab(program)
registerDevice(program)
registerPolicy(program)
registerCloud(program)
registerStatus(program)
registerDeadLetter(program)
registerVpn(program)

try {
  await program.parseAsync(process.argv)
} catch (err) {
  if (err instanceof CommanderError) {
    // commander printed its own message (or the help/version) already.
    process.exitCode = err.exitCode === 0 ? 0 : EXIT_CONFIG
  } else {
    process.exitCode = reportFatal(err, process.stderr, process.env.EDGE_GATEWAY_DEBUG === '1')
  }
}
