#!/usr/bin/env bash
# Entry point of the container lab's services (docker-compose.yml). It starts as root for two things
# alone, then runs the command as edge-gateway:
#
# Finding each other. The lab's networks have no fixed addresses (podman-compose 1.0.3 ignores
# them), and names are not enough: podman's CNI networks have no DNS when they are internal (wan and
# cloudnet are, so that the tunnel is the only path between the gateway and the cloud), and a
# container on two networks asks only the first one's DNS server. So a service writes its IPv4
# addresses into the lab-net volume every second (--announce NAME; a file older than 3 s is from a
# container that no longer runs), and the others put in /etc/hosts the address of it that is on a
# network they share (--host NAME), or their own address on the network they share with a peer
# (--self NAME=PEER: the cloud's broker listens as `cloud` where the consumer reaches it).
#
# The tun device (--tun): handed to edge-gateway (a host may give the container a tun node only root
# can open), and the command keeps CAP_NET_ADMIN, the one capability the WireGuard tunnel needs.
# Without --tun, the command runs with no capability.
#
#   entry.sh [--announce NAME] [--host NAME]... [--self NAME=PEER]... [--tun] -- COMMAND [ARG]...
set -euo pipefail
dir=/lab-net
announce=''
tun=0
hosts=()
selves=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --announce) announce="$2" && shift 2 ;;
    --host) hosts+=("$2") && shift 2 ;;
    --self) selves+=("$2") && shift 2 ;;
    --tun) tun=1 && shift ;;
    --) shift && break ;;
    *) echo "entry.sh: unknown option $1" >&2 && exit 2 ;;
  esac
done
[ "$#" -gt 0 ] || { echo "entry.sh: no command after --" >&2 && exit 2; }

addresses() { node "$(dirname "$0")/addresses.mjs" "$@"; }

# The address NAME announced on a network this container is on; waits 2 minutes at most for a
# fresh announcement.
peer() {
  local file="$dir/$1"
  for _ in $(seq 240); do
    if [ -f "$file" ] && (($(date +%s) - $(stat -c %Y "$file") <= 3)) && addresses shared "$file"; then
      return 0
    fi
    sleep 0.5
  done
  echo "entry.sh: $1 announced no address on a network of this container in 2 minutes (is its container running?)" >&2
  return 1
}

# NAME -> ADDRESS in /etc/hosts, in place of an earlier line for NAME (a restarted container keeps its file).
map() {
  local others
  others=$(grep -Ev "[[:space:]]$1\$" /etc/hosts || true)
  printf '%s\n%s\t%s\n' "$others" "$2" "$1" >/etc/hosts
  echo "entry.sh: $1 is $2"
}

if [ -n "$announce" ]; then
  mkdir -p "$dir"
  addresses own >"$dir/.$announce.tmp"
  mv -f "$dir/.$announce.tmp" "$dir/$announce"
  # A container's addresses stay as they are while it runs: the file is only kept fresh.
  (while sleep 1; do touch "$dir/$announce" || true; done) &
fi
for name in "${hosts[@]}"; do
  address=$(peer "$name")
  map "$name" "$address"
done
for pair in "${selves[@]}"; do
  address=$(peer "${pair#*=}")
  address=$(addresses facing "$address")
  map "${pair%%=*}" "$address"
done

user=(--reuid=edge-gateway --regid=edge-gateway --init-groups)
if [ "$tun" = 1 ]; then
  chown edge-gateway:edge-gateway /dev/net/tun
  exec setpriv "${user[@]}" --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
    --bounding-set=-all,+net_admin -- "$@"
fi
exec setpriv "${user[@]}" --inh-caps=-all --bounding-set=-all -- "$@"
