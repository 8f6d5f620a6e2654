#!/usr/bin/env bash
# What `make deploy-build` needs, installed if missing: the SAM CLI, cargo-lambda and Zig (the
# arm64 cross linker) from PyPI in .venv-deploy, and Rust's arm64 standard library (rustup).
# Needs network access to the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! [ -x .venv-deploy/bin/sam ] || ! [ -x .venv-deploy/bin/cargo-lambda ] || ! .venv-deploy/bin/python -c 'import ziglang' 2>/dev/null; then
  echo "installing aws-sam-cli, cargo-lambda and ziglang into .venv-deploy"
  python3 -m venv .venv-deploy
  .venv-deploy/bin/pip install -q --disable-pip-version-check aws-sam-cli cargo-lambda ziglang
fi
rustup target list --installed | grep -qx aarch64-unknown-linux-gnu || rustup target add aarch64-unknown-linux-gnu
echo "$(.venv-deploy/bin/sam --version), $(.venv-deploy/bin/cargo-lambda --version)"
