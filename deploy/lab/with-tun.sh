#!/usr/bin/env bash
# Entry point of the lab's gateway and cloud containers (docker-compose.yml), which start as root
# for this alone: hands the tun device to edge-gateway (a host may give the container a tun node
# that only root can open), then runs the command as edge-gateway with CAP_NET_ADMIN and no other
# capability, the one the WireGuard tunnel needs.
set -euo pipefail
chown edge-gateway:edge-gateway /dev/net/tun
exec setpriv --reuid=edge-gateway --regid=edge-gateway --init-groups \
  --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin -- "$@"
