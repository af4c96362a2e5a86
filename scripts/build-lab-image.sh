#!/usr/bin/env bash
# Builds the container lab's image (Dockerfile) where no image registry is reachable: on the base from
# scripts/build-lab-base-image.sh, with npm trusting what this machine trusts (its CA bundle, mounted
# into the build). Layers are cached: a second build of the same tree takes seconds.
#   scripts/build-lab-image.sh            this machine's architecture: localhost/edge-gateway:lab
#   scripts/build-lab-image.sh arm64      linux/arm64: localhost/edge-gateway:lab-arm64
#   scripts/build-lab-image.sh armhf      linux/arm/v7: localhost/edge-gateway:lab-armhf
# A foreign architecture builds through qemu-user-static (binfmt_misc): minutes, not seconds.
# Used by .ci/run (once per run, before the tests), test/deploy/compose-lab.test.ts and
# test/deploy/image-arch.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
host="$(dpkg --print-architecture)"
arch="${1:-$host}"
case "$arch" in
  amd64) platform=linux/amd64 ;;
  arm64) platform=linux/arm64 ;;
  armhf) platform=linux/arm/v7 ;;
  *) echo "build-lab-image: no base image for $arch (amd64, arm64, armhf)" >&2; exit 1 ;;
esac
if [ "$arch" = "$host" ]; then tag=localhost/edge-gateway:lab; else tag="localhost/edge-gateway:lab-$arch"; fi
base="localhost/edge-gateway-base:bookworm-$arch"
bash scripts/build-lab-base-image.sh "$arch"
# The build stage (npm ci, tsc, npm pack: JavaScript alike on every architecture) on this machine's
# own base, natively, and so shared with this machine's image (a cached layer once that is built):
# under qemu it alone took 3.5 to 6 minutes. By image id: podman looks a name up for the target
# platform only.
bash scripts/build-lab-base-image.sh "$host"
build_base="$(podman image inspect --format '{{.Id}}' "localhost/edge-gateway-base:bookworm-$host")"
ca=/etc/ssl/certs/ca-certificates.crt
podman build -q --format docker --platform "$platform" -t "$tag" --build-arg BASE="$base" \
  --build-arg BUILD_BASE="$build_base" \
  -v "$ca:/etc/ssl/host-ca.crt:ro" --build-arg npm_config_cafile=/etc/ssl/host-ca.crt . >/dev/null
echo "build-lab-image: built $tag"
