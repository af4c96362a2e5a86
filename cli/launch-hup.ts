/**
 * SIGHUP from the process's first line, for `edge-gateway start` alone.
 *
 * `systemctl reload` sends SIGHUP. Node's default action for it ends the process, and systemd
 * counts an end by SIGHUP as a clean exit, so `Restart=on-failure` would not bring the gateway
 * back. `start` holds the signal itself once its code runs (cli/actions/start.ts), but loading
 * that code and reading the config come first. This module is the entry's first import, so its
 * handler is in place before anything else is evaluated. Other commands keep the default: a
 * terminal that hangs up still ends `cloud consume` and the like.
 */

let pending = false
const onHup = (): void => {
  pending = true
}

if (process.argv[2] === 'start') process.on('SIGHUP', onHup)

/**
 * Hands SIGHUP over to the caller, which must have its own handler in place already (or the
 * next signal would end the process): removes the launch handler and says whether a SIGHUP
 * came while it was the one in place.
 */
export function releaseLaunchHup(): boolean {
  process.off('SIGHUP', onHup)
  const came = pending
  pending = false
  return came
}
