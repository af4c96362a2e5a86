#!/usr/bin/env bash
# Makes a base image for the Dockerfile where no image registry is reachable (this project's CI):
#   scripts/build-lab-base-image.sh [tag]        default tag: localhost/edge-gateway-base:bookworm
# A Debian 12 root file system from debootstrap (scripts/build-test-rootfs.sh, cached), with Node.js
# from the npm package node-linux-<arch> (the nodejs.org build) and npm beside it: what
# node:20-bookworm-slim holds. Then: podman build --build-arg BASE=<tag> ...
# Needs root, podman, debootstrap. Does nothing when the image is there.
set -euo pipefail
cd "$(dirname "$0")/.."
tag="${1:-localhost/edge-gateway-base:bookworm}"
cache="${EDGE_GATEWAY_TEST_CACHE:-/var/cache/edge-gateway-test}"
node_version=20.20.2
if podman image exists "$tag"; then
  echo "build-lab-base-image: $tag is there"
  exit 0
fi
arch="$(dpkg --print-architecture)"
case "$arch" in amd64) node_arch=x64 ;; arm64) node_arch=arm64 ;; *) echo "build-lab-base-image: no Node package for $arch" >&2; exit 1 ;; esac
bash scripts/build-test-rootfs.sh "$arch" "$cache"
node_tgz="$cache/node-linux-$node_arch-$node_version.tgz"
[ -s "$node_tgz" ] || npm pack "node-linux-$node_arch@$node_version" --pack-destination "$cache" --silent >/dev/null
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
tar -C "$work" -xzf "$node_tgz" package/bin/node
cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$work/npm"
podman import -q "$cache/bookworm-$arch.tar" localhost/edge-gateway-base-rootfs:bookworm >/dev/null
cat >"$work/Containerfile" <<'EOF'
FROM localhost/edge-gateway-base-rootfs:bookworm
COPY package/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["node"]
EOF
podman build -q -t "$tag" "$work" >/dev/null
podman rmi -f localhost/edge-gateway-base-rootfs:bookworm >/dev/null 2>&1 || true
echo "build-lab-base-image: built $tag"
