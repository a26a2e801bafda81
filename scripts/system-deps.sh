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
    # container steps: Podman serves the Docker API; runc runs them (see podman-setup.sh);
    # a static busybox is what the tests build their local image from (no registry needed)
    have podman || need+=(podman)
    have runc || need+=(runc)
    # the store tests run on a throwaway PostgreSQL cluster too (tests/postgres.py)
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
    dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'ok installed' ||
      need+=(busybox-static)
    # the web UI's tests drive Debian's Chromium through Playwright (no browser download)
    [ -x /usr/bin/chromium ] || need+=(chromium)
    # the stream delivery class of pipelines: NATS JetStream (tests/nats.py starts it)
    have nats-server || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
    ;;
esac
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then sudo=sudo; else sudo=; fi
  echo "installing system packages: ${need[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
fi
if [ "$what" = test ]; then
  bash "$(dirname "$0")/podman-setup.sh"
fi
