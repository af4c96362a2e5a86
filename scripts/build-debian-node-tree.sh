#!/usr/bin/env bash
# Builds a Debian tree with the distribution's own Node.js, for test/deploy/runtimes.test.ts:
#   scripts/build-debian-node-tree.sh <suite> <out-dir>      e.g. trixie /var/cache/edge-gateway-test
# Writes <out-dir>/<suite>-nodejs-<arch>/ (this machine's architecture) once; a second call finds it
# and returns at once. What is in it: a minimal Debian, its `nodejs` package (with the shared
# OpenSSL, libuv and ICU Debian builds it against) and ca-certificates, and the empty folders
# /srv/edge-gateway and /srv/state the test mounts the checkout and a state folder on.
# Needs root and debootstrap.
set -euo pipefail
suite="${1:?usage: build-debian-node-tree.sh <suite> <out-dir>}"
out="${2:?usage: build-debian-node-tree.sh <suite> <out-dir>}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
arch="$(dpkg --print-architecture)"
tree="$out/$suite-nodejs-$arch"
if [ -x "$tree/usr/bin/node" ]; then
  echo "build-debian-node-tree: $tree is there"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "build-debian-node-tree: needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-debian-node-tree: needs debootstrap: apt-get install debootstrap" >&2; exit 1; }
mkdir -p "$out"
work="$(mktemp -d "$out/$suite-nodejs-$arch.XXXXXX")"
chmod 0755 "$work"
trap 'rm -rf "$work" "$work.log"' EXIT
debootstrap --variant=minbase --include=nodejs,ca-certificates "$suite" "$work" "$mirror" >"$work.log" 2>&1 \
  || { tail -20 "$work.log" >&2; exit 1; }
rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/*
mkdir -p "$work/srv/edge-gateway" "$work/srv/state"
rm -rf "$tree"
mv "$work" "$tree"
echo "build-debian-node-tree: wrote $tree ($(chroot "$tree" node --version))"
