#!/usr/bin/env bash
# Installs what the test suite needs: Debian packages (real mosquitto broker and
# clients) when missing, then the npm dependencies from the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."

# mosquitto: the real cloud broker and clients; wireguard-*, iproute2, tcpdump: the tunnel tests in network namespaces;
# strace: the durability tests that read the gateway's system calls (fsync before PUBACK) and make its disk fail;
# openssl: `openssl s_client`, which reads the certificate a LAN listener serves after a certificate swap;
# systemd: `systemd-analyze verify` and `security --offline=true` on deploy/edge-gateway.service;
# podman, runc, debootstrap, qemu-user-static, binfmt-support: deploy/install.sh tried in a Debian 12
# container booted with systemd, and in an arm64 root file system under qemu (test/deploy/);
# chromium: the status page rendered in a browser (test/cli/status-page-browser.test.ts, playwright-core);
# docker-compose, podman-compose: the container lab (docker-compose.yml), docker-compose against podman's
# Docker-compatible API and podman-compose on its own;
# redis-server: the shared state of a group of cloud consumers (test/cloud/, bench/fleet.mjs);
# faketime: a gateway started with its clock set back, as a Pi's clock is after a power cut (test/cli/clock-floor.test.ts).
packages=(mosquitto mosquitto-clients wireguard-tools wireguard-go iproute2 tcpdump strace openssl systemd
  podman runc debootstrap qemu-user-static binfmt-support chromium docker-compose podman-compose redis-server
  faketime)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
      echo "install-test-deps: missing Debian packages: ${missing[*]}; run as root: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  else
    SUDO=
  fi
  echo "install-test-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# podman: runc as the runtime (systemd as PID 1 runs under it) and open-file limits a booted
# systemd accepts; written only when there is no containers.conf of the machine's own.
if [ ! -e /etc/containers/containers.conf ] && [ "$(id -u)" -eq 0 ]; then
  mkdir -p /etc/containers
  printf '%s\n' '[containers]' 'default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]' \
    '[engine]' 'runtime = "runc"' >/etc/containers/containers.conf
fi

# The Debian package may start a system mosquitto on port 1883; the tests never use it (they start their own).

# `npm ci`: exactly the lock file (which holds every platform entry of biome's optional packages),
# and a clean tree after it (test/packaging.test.ts checks that `npm install` leaves the lock as it is).
npm ci --no-audit --no-fund --loglevel=error
