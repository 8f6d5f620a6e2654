#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: redis-server (apt) and a Python
# venv (.venv) with the moto DynamoDB server and cfn-lint. Idempotent: skips what is present.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  echo "installing redis-server"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq redis-server >/dev/null
fi

venv_ready() {
  [ -x .venv/bin/cfn-lint ] && .venv/bin/python -c 'import moto.server' >/dev/null 2>&1
}
if ! venv_ready; then
  echo "creating .venv with moto[server] and cfn-lint"
  python3 -m venv .venv
  # One retry: a registry hiccup should not fail a whole CI run.
  for attempt in 1 2; do
    if .venv/bin/pip install -q --disable-pip-version-check 'moto[server]>=5,<6' 'cfn-lint>=1,<2' && venv_ready; then
      break
    fi
    [ "$attempt" = 2 ] && { echo "could not install moto and cfn-lint into .venv" >&2; exit 1; }
    echo "pip install failed, retrying"
  done
fi

echo "redis-server $(redis-server --version | awk '{print $3}'), moto $(.venv/bin/python -c 'import moto; print(moto.__version__)'), $(.venv/bin/cfn-lint --version)"
