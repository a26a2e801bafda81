#!/usr/bin/env bash
# Configures Podman for lockstep's container steps (and its tests), idempotently: writes
# /etc/containers/containers.conf only when it is missing or differs.
#   runc + cgroupfs: crun fails on hybrid (v1 + v2) cgroup hosts, and there may be no systemd
#   default_ulimits: Podman's defaults ask for more open files/processes than some hosts allow
set -euo pipefail
conf=/etc/containers/containers.conf
want='# Written by lockstep scripts/podman-setup.sh; edits are overwritten.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"'
if [ -f "$conf" ] && [ "$(cat "$conf")" = "$want" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
echo "writing $conf"
$sudo mkdir -p "$(dirname "$conf")"
printf '%s\n' "$want" | $sudo tee "$conf.tmp" >/dev/null
$sudo mv "$conf.tmp" "$conf"
