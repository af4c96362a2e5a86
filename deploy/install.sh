#!/usr/bin/env bash
# Installs edge-gateway as a hardened systemd service on Debian 12 / Raspberry Pi OS
# (arm64, armhf, x86_64). Run as root. docs/install.md says what it does and why.
#
#   install.sh [--package SPEC] [--id NAME] [--cloud-host HOST] [--cloud-port PORT]
#              [--cloud-ca FILE --cloud-cert FILE --cloud-key FILE [--replace-cloud-credentials]]
#              [--no-start]
#   install.sh --upgrade [--package SPEC]      a newer package; config and state are kept
#   install.sh --uninstall [--purge]           remove what it added; keep config and state unless --purge
#
# SPEC is what npm installs: a release tarball made by `npm pack` (./edge-gateway-0.1.0.tgz), or
# edge-gateway@VERSION from a registry you configured npm for and trust; default: the one tarball
# beside this script. The project publishes to no public registry, so none is asked unless named;
# npm runs no package scripts either way (--ignore-scripts).
#
# Each step checks first and changes only what differs, so a second run changes nothing and says so.
set -euo pipefail

PREFIX=/opt/edge-gateway
CONFIG_DIR=/etc/edge-gateway
CONFIG="$CONFIG_DIR/gateway.yaml"
STATE_DIR=/var/lib/edge-gateway
CACHE_DIR=/var/cache/edge-gateway
UNIT=/etc/systemd/system/edge-gateway.service
DROPIN_DIR=/etc/systemd/system/edge-gateway.service.d
BIN_LINK=/usr/local/bin/edge-gateway
SERVICE_USER=edge-gateway
PACKAGE_DIR="$PREFIX/lib/node_modules/edge-gateway"
RECORD="$PREFIX/.installed-from"

usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; }
say() { printf 'edge-gateway install: %s\n' "$*"; }
fail() { printf 'edge-gateway install: %s\n' "$*" >&2; exit 1; }
changes=0
changed() { changes=$((changes + 1)); say "changed: $*"; }
unchanged() { say "ok: $*"; }

mode=install purge=no start=yes spec='' gateway_id='' cloud_host='' cloud_port=8883
cloud_ca='' cloud_cert='' cloud_key='' replace_credentials=no
while [ $# -gt 0 ]; do
  case "$1" in
    --package) spec="${2:?--package needs a value}"; shift 2 ;;
    --id) gateway_id="${2:?--id needs a value}"; shift 2
      [[ "$gateway_id" =~ ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ ]] \
        || fail "--id: 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit; got '$gateway_id'" ;;
    --cloud-host) cloud_host="${2:?--cloud-host needs a value}"; shift 2 ;;
    --cloud-port) cloud_port="${2:?--cloud-port needs a value}"; shift 2 ;;
    --cloud-ca) cloud_ca="${2:?--cloud-ca needs a file}"; shift 2 ;;
    --cloud-cert) cloud_cert="${2:?--cloud-cert needs a file}"; shift 2 ;;
    --cloud-key) cloud_key="${2:?--cloud-key needs a file}"; shift 2 ;;
    --replace-cloud-credentials) replace_credentials=yes; shift ;;
    --no-start) start=no; shift ;;
    --upgrade) mode=upgrade; shift ;;
    --uninstall) mode=uninstall; shift ;;
    --purge) purge=yes; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; fail "unknown option: $1" ;;
  esac
done
[ "$purge" = no ] || [ "$mode" = uninstall ] || fail "--purge goes with --uninstall"
[ "$(id -u)" -eq 0 ] || fail "run it as root (sudo bash $0 ...)"

systemd_running() { [ -d /run/systemd/system ]; }

# ---------------------------------------------------------------------------------------------
if [ "$mode" = uninstall ]; then
  if systemd_running && [ -e "$UNIT" ]; then
    systemctl disable --now edge-gateway.service >/dev/null 2>&1 || true
    changed "service stopped and disabled"
  fi
  if [ -e "$UNIT" ] || [ -d "$DROPIN_DIR" ]; then
    rm -rf "$UNIT" "$DROPIN_DIR"
    systemd_running && systemctl daemon-reload
    changed "removed $UNIT"
  fi
  if [ -L "$BIN_LINK" ]; then rm -f "$BIN_LINK"; changed "removed $BIN_LINK"; fi
  if [ -d "$PREFIX" ]; then rm -rf "$PREFIX"; changed "removed $PREFIX"; fi
  # The unit's CacheDirectory (Node's compile cache): made again by the next start, never kept.
  if [ -e "$CACHE_DIR" ]; then rm -rf "$CACHE_DIR"; changed "removed $CACHE_DIR"; fi
  if [ "$purge" = yes ]; then
    for d in "$CONFIG_DIR" "$STATE_DIR"; do
      if [ -e "$d" ]; then rm -rf "$d"; changed "purged $d"; fi
    done
  else
    # Kept, and handed to root: no file is left owned by a user id that a later account could get.
    for d in "$CONFIG_DIR" "$STATE_DIR"; do
      if [ -e "$d" ] && [ "$(stat -c %U "$d")" != root ]; then
        chown -R root:root "$d"
        changed "kept $d (now owned by root)"
      fi
    done
  fi
  if id -u "$SERVICE_USER" >/dev/null 2>&1; then
    userdel "$SERVICE_USER" >/dev/null 2>&1 || fail "could not remove the user $SERVICE_USER (is a process of it running?)"
    getent group "$SERVICE_USER" >/dev/null && groupdel "$SERVICE_USER" >/dev/null 2>&1 || true
    changed "removed the system user $SERVICE_USER"
  fi
  if [ "$changes" -eq 0 ]; then say "nothing to remove"; else say "uninstalled ($changes change(s))"; fi
  if [ "$purge" = no ]; then
    for d in "$CONFIG_DIR" "$STATE_DIR"; do [ -e "$d" ] && say "kept: $d (--uninstall --purge removes it)"; done
  fi
  exit 0
fi

# ---------------------------------------------------------------------------------------------
# Node.js 20 or later, and npm.
# The user space's architecture, as Node.js names its builds. dpkg's answer first: Raspberry Pi OS
# 32-bit on a Pi 4 or 5 runs a 64-bit kernel (uname -m says aarch64) under an armhf user space.
node_arch() {
  local a
  a="$(dpkg --print-architecture 2>/dev/null || true)"
  case "$a" in
    arm64) echo arm64 ;; armhf) echo armv7l ;; amd64) echo x64 ;;
    '') case "$(uname -m)" in aarch64 | arm64) echo arm64 ;; armv7l) echo armv7l ;; x86_64) echo x64 ;; *) uname -m ;; esac ;;
    *) echo "$a" ;;
  esac
}
node_help() {
  local arch
  arch="$(node_arch)"
  cat >&2 <<EOF
edge-gateway install: Node.js 20 or later is needed ($1).
  Take a Node.js that still gets security fixes: nodejs.org ended Node 20 on 2026-04-30.
  - Debian 13 and Raspberry Pi OS on it: apt-get install -y nodejs npm
    (Node 20, kept up by Debian's security team; Debian 12's own nodejs is 18, too old)
  - Debian 12: a line nodejs.org still maintains, from NodeSource:
    curl -fsSL https://deb.nodesource.com/setup_24.x | bash - && apt-get install -y nodejs
  - or the official build: https://nodejs.org/dist/latest-v24.x/ (node-v24.*-linux-$arch.tar.xz),
    unpacked into /usr/local: tar -xJf node-v24.*-linux-$arch.tar.xz -C /usr/local --strip-components=1
  Node 24 runs the gateway faster. Memory at rest is about 71 MiB on Debian 13's nodejs and 77 MiB
  on Node 24, against 62 MiB on the unmaintained nodejs.org Node 20 (docs/performance.md).
  Then run this script again.
EOF
  exit 1
}
command -v node >/dev/null 2>&1 || node_help "no \`node\` on PATH"
node_path="$(command -v node)"
# The unit runs with ProtectHome=yes: a Node under /home or /root (nvm, say) cannot be started by it.
case "$(readlink -f "$node_path")" in
  /home/* | /root/* | /run/user/*)
    fail "node at $node_path ($(readlink -f "$node_path")) is under a home folder, which the service cannot see (ProtectHome=yes): install Node.js system-wide (below /usr or /opt)" ;;
esac
node_version="$(node -p 'process.versions.node')"
[ "${node_version%%.*}" -ge 20 ] || node_help "found $node_version at $node_path"
command -v npm >/dev/null 2>&1 || node_help "node $node_version is there, but not npm"
case "$(node_arch)" in
  arm64 | armv7l | x64) ;;
  *) say "warning: $(node_arch) is not a tested architecture (arm64, armhf, x86_64)" ;;
esac

# ---------------------------------------------------------------------------------------------
# The package, from a tarball or the registry, into $PREFIX (npm's global layout under it).
# Only asked for when it will be used: a second run of an install (to add credentials, say) needs none.
if [ -z "$spec" ] && { [ ! -f "$PACKAGE_DIR/package.json" ] || [ "$mode" = upgrade ]; }; then
  here="$(cd "$(dirname "$0")" && pwd)"
  shopt -s nullglob
  beside=("$here"/edge-gateway-*.tgz)
  shopt -u nullglob
  case ${#beside[@]} in
    1) spec="${beside[0]}" ;;
    0) fail "no release tarball (edge-gateway-*.tgz) beside $0, and no --package: make one with \`npm pack\` in a checkout and pass --package FILE (docs/install.md); nothing is fetched from a registry unless named" ;;
    *) fail "${#beside[@]} release tarballs beside $0 (${beside[*]##*/}): pass the one to install with --package FILE" ;;
  esac
fi
if [ -f "$spec" ]; then
  spec="$(cd "$(dirname "$spec")" && pwd)/$(basename "$spec")"
  wanted="tarball sha256:$(sha256sum "$spec" | cut -d' ' -f1)"
elif [ -n "$spec" ]; then
  wanted="registry $spec"
fi
installed_version() { [ -f "$PACKAGE_DIR/package.json" ] && node -p "require('$PACKAGE_DIR/package.json').version"; }
install_package() {
  # No package's install scripts run as root: the gateway and its dependencies need none.
  npm install --global --prefix "$PREFIX" --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error "$spec" >/dev/null \
    || fail "npm could not install $spec"
  printf '%s\n' "$wanted" >"$RECORD"
  package_changed=yes
  changed "installed edge-gateway $(installed_version) from $spec into $PREFIX"
}
package_changed=no
if [ ! -f "$PACKAGE_DIR/package.json" ]; then
  install_package
elif [ "$mode" = upgrade ]; then
  if [ -f "$spec" ] && [ "$(cat "$RECORD" 2>/dev/null)" = "$wanted" ]; then
    unchanged "edge-gateway $(installed_version) is already this tarball"
  elif [ ! -f "$spec" ] && [ "$(npm view "$spec" version 2>/dev/null | tail -1)" = "$(installed_version)" ]; then
    unchanged "edge-gateway $(installed_version) is already the registry's $spec"
  else
    install_package
  fi
else
  unchanged "edge-gateway $(installed_version) is installed (--upgrade replaces it)"
fi
if [ "$(readlink "$BIN_LINK" 2>/dev/null)" != "$PREFIX/bin/edge-gateway" ]; then
  ln -sfn "$PREFIX/bin/edge-gateway" "$BIN_LINK"
  changed "$BIN_LINK -> $PREFIX/bin/edge-gateway"
fi

# ---------------------------------------------------------------------------------------------
# The system user, and the config (0700) and state (0700) folders it owns.
if id -u "$SERVICE_USER" >/dev/null 2>&1; then
  unchanged "system user $SERVICE_USER"
else
  useradd --system --user-group --home-dir "$STATE_DIR" --no-create-home --shell /usr/sbin/nologin "$SERVICE_USER"
  changed "created the system user $SERVICE_USER"
fi
for d in "$CONFIG_DIR" "$STATE_DIR"; do
  if [ -d "$d" ] && [ "$(stat -c '%a %U %G' "$d")" = "700 $SERVICE_USER $SERVICE_USER" ]; then
    unchanged "$d (0700, $SERVICE_USER)"
  else
    install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$d"
    # Files kept by an earlier --uninstall go back to the service user.
    chown -R "$SERVICE_USER:$SERVICE_USER" "$d"
    changed "$d (0700, $SERVICE_USER)"
  fi
done

# Cloud credentials given on the command line: copied in, the key 0600. One that is there and differs
# is kept: a certificate rotation pushed from the cloud (docs/rotation.md) writes these same files, and
# running the install command again must not put the old, perhaps revoked, pair back.
# --replace-cloud-credentials replaces them (and restarts the service).
credentials_changed=no
copy_in() { # <source> <dest> <mode>
  [ -n "$1" ] || return 0
  [ -f "$1" ] || fail "no such file: $1"
  if [ -f "$2" ] && cmp -s "$1" "$2" && [ "$(stat -c '%a %U' "$2")" = "$3 $SERVICE_USER" ]; then
    unchanged "$2"
  elif [ -f "$2" ] && ! cmp -s "$1" "$2" && [ "$replace_credentials" = no ]; then
    say "kept: $2, which differs from $1 (a certificate rotation writes it); --replace-cloud-credentials replaces it"
  else
    install -D -m "$3" -o "$SERVICE_USER" -g "$SERVICE_USER" "$1" "$2"
    credentials_changed=yes
    changed "$2 (from $1)"
  fi
}
if [ -n "$cloud_ca$cloud_cert$cloud_key" ]; then
  install -d -m 0700 -o "$SERVICE_USER" -g "$SERVICE_USER" "$CONFIG_DIR/cloud"
fi
copy_in "$cloud_ca" "$CONFIG_DIR/cloud/ca.pem" 644
copy_in "$cloud_cert" "$CONFIG_DIR/cloud/client.pem" 644
copy_in "$cloud_key" "$CONFIG_DIR/cloud/client.key" 600

# A starter config, never over one that is there.
if [ -f "$CONFIG" ]; then
  unchanged "$CONFIG is there (kept as it is)"
else
  id_default="$(hostname 2>/dev/null | tr -c 'A-Za-z0-9._\n-' '-')"
  if [ -z "$gateway_id" ]; then
    # The cloud tells gateways apart by this id (topics, key bindings, rotation): a fleet of boards
    # all named raspberrypi would be one gateway to it.
    say "warning: no --id: the gateway id is the host name, ${id_default:-gateway}; give each gateway its own (--id, or gateway.id in $CONFIG)"
  fi
  gateway_id="${gateway_id:-${id_default:-gateway}}"
  umask 077
  cat >"$CONFIG" <<EOF
# edge-gateway starter config, written by deploy/install.sh. Reference: docs/configuration.md
# in the package ($PACKAGE_DIR/docs). Check it after an edit with:
#   sudo -u $SERVICE_USER edge-gateway policy check --config $CONFIG
gateway:
  id: "$gateway_id"
  stateDir: $STATE_DIR
lan:
  listeners:
    # Devices that run TLS: TLS-PSK on every interface. Add a device with
    #   sudo -u $SERVICE_USER edge-gateway device add <id> --psk --key-dir $CONFIG_DIR/keys --config $CONFIG
    # replace 'devices: []' below with 'devices:' and paste the entry it prints under it, then:
    #   systemctl reload edge-gateway
    - type: tls-psk
      name: lan-psk
      host: 0.0.0.0
      port: 8883
# Deny by default: without a policies section each device may use devices/<its id>/# only.
devices: []
cloud:
  host: ${cloud_host:-cloud.example.invalid}
  port: $cloud_port
  # From the cloud's operator: the CA that vouches for the broker, and this gateway's client
  # certificate (CN = the gateway id) with its key (0600).
  caFile: cloud/ca.pem
  certFile: cloud/client.pem
  keyFile: cloud/client.key
  topics:
    - local: devices
      cloud: "sites/$gateway_id/devices"
# Prometheus /metrics, /healthz and the status page, on loopback only (docs/observability.md).
observability:
  listen: 127.0.0.1:9464
EOF
  chown "$SERVICE_USER:$SERVICE_USER" "$CONFIG"
  chmod 0600 "$CONFIG"
  changed "wrote the starter config $CONFIG (gateway id $gateway_id)"
fi

# The config is checked as the service will read it: as the service user.
config_ok=no
if check_output="$(runuser -u "$SERVICE_USER" -- "$node_path" "$PACKAGE_DIR/dist/bin/edge-gateway.js" policy check --config "$CONFIG" 2>&1)"; then
  config_ok=yes
  say "policy check: ${check_output##*$'\n'}"
else
  say "policy check failed, so the service is not started:"
  printf '  %s\n' "$check_output"
fi

# WireGuard: what the config's vpn section asks for, as the gateway reads it (`vpn mode`, run as the
# service user): off (no vpn section), managed (the gateway brings the tunnel up: the tools, and
# CAP_NET_ADMIN with /dev/net/tun), or system (the system brings it up and the gateway reads its
# health with `wg show`, which needs CAP_NET_ADMIN too). unknown: the config does not load.
vpn_mode="$(runuser -u "$SERVICE_USER" -- "$node_path" "$PACKAGE_DIR/dist/bin/edge-gateway.js" vpn mode --config "$CONFIG" 2>/dev/null || echo unknown)"
if [ "$vpn_mode" = managed ]; then
  if ! command -v wg >/dev/null 2>&1 || { ! modprobe -n wireguard >/dev/null 2>&1 && ! command -v wireguard-go >/dev/null 2>&1; }; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wireguard-tools wireguard-go iproute2 >/dev/null \
      || fail "the config manages a WireGuard tunnel; apt-get could not install wireguard-tools wireguard-go iproute2"
    changed "installed wireguard-tools, wireguard-go and iproute2 (the config has a vpn section)"
  else
    unchanged "WireGuard tools"
  fi
elif [ "$vpn_mode" = system ] && ! command -v wg >/dev/null 2>&1; then
  # The system brings the tunnel up with its own tools (systemd-networkd needs no wg); the gateway
  # reads its health with `wg show`, and says VPN_ERR_WG_NOT_FOUND on every poll without it.
  say "warning: the config watches a system WireGuard tunnel with \`wg show\`, and there is no wg here: apt-get install wireguard-tools"
fi

# ---------------------------------------------------------------------------------------------
# The unit: the package's hardened template, started with this Node and this package.
unit_changed=no
rendered="$(sed "s|^ExecStart=.*|ExecStart=$node_path $PACKAGE_DIR/dist/bin/edge-gateway.js start --config $CONFIG|" \
  "$PACKAGE_DIR/deploy/edge-gateway.service")"
if [ -f "$UNIT" ] && [ "$(cat "$UNIT")" = "$rendered" ]; then
  unchanged "$UNIT"
else
  printf '%s\n' "$rendered" >"$UNIT"
  chmod 0644 "$UNIT"
  unit_changed=yes
  changed "$UNIT"
fi
# The drop-in the vpn mode needs, and no other.
case "$vpn_mode" in
  managed) wanted_dropin=vpn.conf ;;
  system) wanted_dropin=vpn-watch.conf ;;
  off) wanted_dropin='' ;;
  *) wanted_dropin=keep; say "the config does not load, so the WireGuard drop-ins are left as they are" ;;
esac
if [ "$wanted_dropin" != keep ]; then
  for dropin in vpn.conf vpn-watch.conf; do
    if [ "$dropin" = "$wanted_dropin" ]; then
      if cmp -s "$PACKAGE_DIR/deploy/edge-gateway.service.d/$dropin" "$DROPIN_DIR/$dropin"; then
        unchanged "$DROPIN_DIR/$dropin (CAP_NET_ADMIN for the $vpn_mode tunnel)"
      else
        install -D -m 0644 "$PACKAGE_DIR/deploy/edge-gateway.service.d/$dropin" "$DROPIN_DIR/$dropin"
        unit_changed=yes
        changed "$DROPIN_DIR/$dropin (CAP_NET_ADMIN for the $vpn_mode tunnel)"
      fi
    elif [ -e "$DROPIN_DIR/$dropin" ]; then
      rm -f "$DROPIN_DIR/$dropin"
      unit_changed=yes
      changed "removed $DROPIN_DIR/$dropin (the config's tunnel is ${vpn_mode})"
    fi
  done
  rmdir "$DROPIN_DIR" 2>/dev/null || true
fi

# `systemctl start` returns once the process runs (Type=simple), not once the gateway is up. Waits
# until the gateway has written its status with the unit's main PID (it does once its tunnel and
# listeners are up), or fails with the service's last log lines when systemd sees it end (failed,
# or waiting to be restarted) or after 60 s.
await_up() {
  local pid sub first='' deadline=$(($(date +%s) + 60))
  while [ "$(date +%s)" -lt "$deadline" ]; do
    pid="$(systemctl show -p MainPID --value edge-gateway.service)"
    [ "$pid" = 0 ] || [ -n "$first" ] || first="$pid"
    if [ "$pid" != 0 ] && runuser -u "$SERVICE_USER" -- "$node_path" "$PACKAGE_DIR/dist/bin/edge-gateway.js" \
      status --config "$CONFIG" --json 2>/dev/null \
      | "$node_path" -e 'process.exitCode = JSON.parse(require("fs").readFileSync(0, "utf8")).pid === Number(process.argv[1]) ? 0 : 1' "$pid" 2>/dev/null; then
      return 0
    fi
    sub="$(systemctl show -p SubState --value edge-gateway.service)"
    # Ended: failed, waiting to be restarted, stopped, or already a process after the first.
    if [ "$sub" = failed ] || [ "$sub" = auto-restart ] || [ "$sub" = dead ] || { [ "$pid" != 0 ] && [ "$pid" != "$first" ]; }; then
      say "edge-gateway.service ended while starting ($sub); its last lines:"
      journalctl -u edge-gateway.service -n 12 --no-pager -o cat | sed 's/^/  /'
      fail "the service does not run: fix the cause above, then: systemctl restart edge-gateway"
    fi
    sleep 0.5
  done
  say "edge-gateway.service did not report itself up within 60 s; its last lines:"
  journalctl -u edge-gateway.service -n 12 --no-pager -o cat | sed 's/^/  /'
  fail "the service is not up: systemctl status edge-gateway; journalctl -u edge-gateway"
}

if ! systemd_running; then
  say "systemd is not running here: the unit is in place; on the booted system run: systemctl enable --now edge-gateway"
elif [ "$start" = no ] || [ "$config_ok" = no ]; then
  [ "$unit_changed" = no ] || systemctl daemon-reload
  if systemctl is-active --quiet edge-gateway.service; then
    if [ "$package_changed" = yes ] || [ "$unit_changed" = yes ]; then
      # The running process keeps the code it loaded; what it loads on first use (the code of a
      # rotation pushed from the cloud, say) now comes from the new package, which may not match.
      say "warning: edge-gateway.service still runs what it started with, and the package or unit changed under it: restart it soon (systemctl restart edge-gateway$([ "$config_ok" = yes ] || printf ', once the config passes `policy check`')); until then a rotation pushed to it may fail"
    else
      unchanged "edge-gateway.service is active (not restarted: --no-start or the check above)"
    fi
  else
    say "not started; once the config passes \`policy check\`: systemctl enable --now edge-gateway"
  fi
else
  [ "$unit_changed" = no ] || systemctl daemon-reload
  if systemctl is-enabled --quiet edge-gateway.service; then
    unchanged "edge-gateway.service is enabled"
  else
    systemctl enable --quiet edge-gateway.service
    changed "enabled edge-gateway.service"
  fi
  if ! systemctl is-active --quiet edge-gateway.service; then
    systemctl start edge-gateway.service
    await_up
    changed "started edge-gateway.service"
  elif [ "$unit_changed" = yes ] || [ "$package_changed" = yes ] || [ "$credentials_changed" = yes ]; then
    systemctl restart edge-gateway.service
    await_up
    changed "restarted edge-gateway.service (new unit, package or cloud credentials)"
  else
    unchanged "edge-gateway.service is active"
  fi
fi

if [ "$changes" -eq 0 ]; then
  say "nothing to change: edge-gateway is installed as asked"
else
  say "done: $changes change(s). See it: systemctl status edge-gateway; journalctl -u edge-gateway;"
  say "  sudo -u $SERVICE_USER edge-gateway status --config $CONFIG; http://127.0.0.1:9464/ (status page)"
fi
