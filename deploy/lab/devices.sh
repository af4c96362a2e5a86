#!/usr/bin/env bash
# The container lab's devices (docker-compose.yml, service devices): one simulated device per LAN
# mode against the gateway container, each publishing LAB_MESSAGES readings (QoS 1) every
# LAB_INTERVAL_MS. Prints what each sent and had acknowledged, then exits (0 when all were).
set -uo pipefail
until [ -e /lab/.ready ]; do sleep 0.5; done
gateway="${LAB_GATEWAY:-gateway}"
# The gateway listens once its tunnel is up: wait for its plain listener (2 minutes at most; the
# TLS-PSK one opens with it, and a bare TCP probe of it would count as a failed handshake).
for _ in $(seq 240); do (exec 3<>"/dev/tcp/$gateway/1883") 2>/dev/null && break; sleep 0.5; done
messages="${LAB_MESSAGES:-600}"
interval="${LAB_INTERVAL_MS:-1000}"
sim() {
  local name="$1"
  shift
  edge-gateway device simulate -c /lab/gateway.yaml --host "$gateway" --messages "$messages" --interval "$interval" \
    --state-dir "/tmp/sim-$name" "$@" 2>&1 | sed "s/^/$name: /"
}
sim psk --mode psk --devices lab-psk &
sim password --mode password --devices lab-pass --password "$(cat /lab/keys/lab-pass.password)" &
sim sealed --mode sealed --devices lab-sealed &
sim hpke --mode hpke --devices lab-hpke --hpke-kid "$(printf consumer | od -An -tx1 | tr -d ' \n')" \
  --hpke-public-key "$(cat /lab/keys/consumer-hpke.pub)" &
status=0
for job in $(jobs -p); do wait "$job" || status=1; done
exit "$status"
