#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages lockstep needs, only those that are missing.
#   venv: what `make demo` needs to create a virtualenv
#   test: what the test suite needs
set -euo pipefail
what=${1:-test}
need=()
have() { command -v "$1" >/dev/null 2>&1; }
case "$what" in
  venv) python3 -c 'import ensurepip' 2>/dev/null || need+=(python3-venv) ;;
  test)
    have git || need+=(git)
    have bash || need+=(bash)
    have pgrep || need+=(procps)
    have setpriv || need+=(util-linux)
    ;;
esac
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
echo "installing system packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
