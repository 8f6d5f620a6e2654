#!/usr/bin/env bash
# Load figures through chat-local: builds release binaries, starts chat-local on a scratch data
# dir and a free port, runs the load example against it, stops it. Extra args go to the example
# (--pairs N --messages N).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --release --bin chat-local --example load -p chat-functions -p chat-tests
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
# Each sender posts as fast as it can: the per-sender send rate (30 per 10 s) is lifted here.
SEND_RATE_LIMIT=1000000000 target/release/chat-local --listen "127.0.0.1:$port" --data-dir "$dir" >/dev/null 2>"$dir/log" &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
target/release/examples/load --addr "127.0.0.1:$port" "$@"
