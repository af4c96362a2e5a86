#!/usr/bin/env bash
# The container lab's cloud end (docker-compose.yml, service cloud): the WireGuard peer of the
# gateway (wireguard-go) and mosquitto, which requires client certificates and listens on the
# tunnel address and on the cloud's own network only (/lab/mosquitto.conf, from `edge-gateway lab-setup`).
set -euo pipefail
until [ -e /lab/.ready ]; do sleep 0.5; done
# shellcheck disable=SC1091
. /lab/cloud-wg.env
wireguard-go wg0
wg set wg0 listen-port "$WG_PORT" private-key /lab/keys/cloud-wg.key peer "$WG_PEER" allowed-ips "$WG_PEER_ALLOWED"
ip address add "$WG_ADDRESS" dev wg0
ip link set wg0 up
echo "cloud: WireGuard wg0 $WG_ADDRESS listening on UDP $WG_PORT"
exec mosquitto -c /lab/mosquitto.conf
