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

if [ ! -x .venv/bin/moto_server ] || [ ! -x .venv/bin/cfn-lint ]; then
  echo "creating .venv with moto[server] and cfn-lint"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check 'moto[server]>=5,<6' 'cfn-lint>=1,<2'
fi

echo "redis-server $(redis-server --version | awk '{print $3}'), moto $(.venv/bin/python -c 'import moto; print(moto.__version__)'), $(.venv/bin/cfn-lint --version)"
