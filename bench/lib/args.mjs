export const USAGE = `node bench/run.mjs [options]      (after npm run build)

  --quick              a short smoke run: 1 round, short loads, fewer loads (under a minute)
  --only LOAD[,LOAD]   only these loads (e.g. closed-q1-64)
  --setups S[,S]       only these setups (mosquitto-psk, gateway-psk, mosquitto-tcp, gateway-tcp, gateway-sealed,
                       gateway-psk-hpke, gateway-sealed-hpke, gateway-psk-write)
  --bridge-protocol P  the Mosquitto bridge's bridge_protocol_version: mqttv50 (default) or mqttv311
  --gateway-queue S    the gateway's cloud.queue.store: disk or memory (default: the gateway's own, disk)
  --repeats N          rounds (default 3; --quick: 1)
  --no-pinned          leave out the one-core run
  --no-sealed          leave out the sealed-payload setup
  --no-wire            leave out the bytes-on-the-wire measurement
  --no-micro           leave out the signing and sealing micro-benchmark (bench/signing.mjs)
  --storm / --no-storm the reconnect storm (bench/storm.mjs: variants scrypt14 and pepper10, and
                       Mosquitto) as a line of the goals; on by default, off with --quick
  --no-at-rest         leave out the resident memory 20 s after start (an edge of each TLS-PSK
                       setup per round, at rest beside the trials)
  --verify-every N     the subscriber verifies every N-th gateway message per publisher with the
                       project's EnvelopeConsumer (default 16; 1 verifies every message)
  --out FILE           JSON results (default bench/results/latest.json)
  --max-minutes M      stop starting new rounds after M minutes (default 14)
  --keep               keep the temp folder (configs, logs) for inspection
`

export function parseArgs(argv) {
  const options = {
    quick: false,
    only: undefined,
    setups: undefined,
    bridgeProtocol: 'mqttv50',
    gatewayQueue: undefined,
    repeats: undefined,
    pinned: true,
    sealed: true,
    wire: true,
    micro: true,
    atRest: true,
    storm: undefined,
    verifyEvery: 16,
    out: undefined,
    maxMinutes: 14,
    keep: false,
    help: false,
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    const value = () => {
      const v = argv[++i]
      if (v === undefined) throw new Error(`Expected a value after ${arg}`)
      return v
    }
    if (arg === '--quick') options.quick = true
    else if (arg === '--only') options.only = [...(options.only ?? []), ...value().split(',').filter(Boolean)]
    else if (arg === '--setups')
      options.setups = [...(options.setups ?? []), ...value().split(',').filter(Boolean)]
    else if (arg === '--bridge-protocol')
      options.bridgeProtocol = oneOf(arg, value(), ['mqttv50', 'mqttv311'])
    else if (arg === '--gateway-queue') options.gatewayQueue = oneOf(arg, value(), ['disk', 'memory'])
    else if (arg === '--repeats') options.repeats = positive(arg, value())
    else if (arg === '--no-pinned') options.pinned = false
    else if (arg === '--no-sealed') options.sealed = false
    else if (arg === '--no-wire') options.wire = false
    else if (arg === '--no-micro') options.micro = false
    else if (arg === '--no-at-rest') options.atRest = false
    else if (arg === '--storm') options.storm = true
    else if (arg === '--no-storm') options.storm = false
    else if (arg === '--verify-every') options.verifyEvery = Math.max(1, Math.round(positive(arg, value())))
    else if (arg === '--out') options.out = value()
    else if (arg === '--max-minutes') options.maxMinutes = positive(arg, value())
    else if (arg === '--keep') options.keep = true
    else if (arg === '--help' || arg === '-h') options.help = true
    else throw new Error(`Unknown option ${JSON.stringify(arg)}\n\n${USAGE}`)
  }
  options.repeats ??= options.quick ? 1 : 3
  options.storm ??= !options.quick
  return options
}

function oneOf(name, text, allowed) {
  if (!allowed.includes(text))
    throw new Error(`Expected ${name} to be one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`)
  return text
}

function positive(name, text) {
  const n = Number(text)
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`Expected ${name} to be a positive number, got ${JSON.stringify(text)}`)
  return n
}
