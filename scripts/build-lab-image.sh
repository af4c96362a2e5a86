#!/usr/bin/env bash
# Builds the container lab's image (Dockerfile) as `localhost/edge-gateway:lab` where no image
# registry is reachable: on the base from scripts/build-lab-base-image.sh, with npm trusting what
# this machine trusts (its CA bundle, mounted into the build). Layers are cached: a second build of
# the same tree takes seconds. Used by .ci/run (once per run, before the tests) and by
# test/deploy/compose-lab.test.ts.
set -euo pipefail
cd "$(dirname "$0")/.."
base=localhost/edge-gateway-base:bookworm
bash scripts/build-lab-base-image.sh "$base"
ca=/etc/ssl/certs/ca-certificates.crt
podman build -q --format docker -t localhost/edge-gateway:lab --build-arg BASE="$base" \
  -v "$ca:/etc/ssl/host-ca.crt:ro" --build-arg npm_config_cafile=/etc/ssl/host-ca.crt . >/dev/null
echo "build-lab-image: built localhost/edge-gateway:lab"
