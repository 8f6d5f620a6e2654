#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian machine: redis-server, Chromium and a CJK
# font (apt), a Python venv (.venv) with the moto server, cfn-lint, Schemathesis and
# openapi-spec-validator, and playwright-core (npm,
# no browser download) for the admin console's browser test. `--stores-only`: just redis-server
# and the venv (make invoke, make bench-coldstart). Idempotent: skips what is present.
# Needs network access to the package registries, and root or sudo for apt.
set -euo pipefail
cd "$(dirname "$0")/.."
stores_only=false
[ "${1:-}" = "--stores-only" ] && stores_only=true

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
# redis-cli assigns the slots of the tests' local Redis Cluster (--cluster create).
command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
if ! $stores_only; then
  [ -x /usr/bin/chromium ] || missing+=(chromium)
  # Without a CJK font Chromium draws the console's Chinese text as boxes.
  [ -d /usr/share/fonts/opentype/noto ] && ls /usr/share/fonts/opentype/noto | grep -q CJK || missing+=(fonts-noto-cjk)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The browser test drives the system Chromium through playwright-core (never a downloaded browser).
if ! $stores_only && [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "installing playwright-core into tests/browser"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi

venv_ready() {
  [ -x .venv/bin/cfn-lint ] && .venv/bin/python -c 'import moto.server' >/dev/null 2>&1 \
    && { $stores_only || { [ -x .venv/bin/schemathesis ] && [ -x .venv/bin/openapi-spec-validator ]; }; }
}
if ! venv_ready; then
  echo "creating .venv with moto[server], cfn-lint, schemathesis and openapi-spec-validator"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # One retry: a registry hiccup should not fail a whole CI run.
  for attempt in 1 2; do
    if .venv/bin/pip install -q --disable-pip-version-check 'moto[server]>=5,<6' 'cfn-lint>=1,<2' \
      'schemathesis>=4.3,<5' 'openapi-spec-validator>=0.7,<0.8' && venv_ready; then
      break
    fi
    [ "$attempt" = 2 ] && { echo "could not install the Python test tools into .venv" >&2; exit 1; }
    echo "pip install failed, retrying"
  done
fi

echo "redis-server $(redis-server --version | awk '{print $3}'), $(/usr/bin/chromium --version 2>/dev/null | head -1 || true), moto $(.venv/bin/python -c 'import moto; print(moto.__version__)'), $(.venv/bin/cfn-lint --version)"
