#!/usr/bin/env bash
# Memory of password hashing under parallel requests (`make bench-hash-memory`): starts the
# release chat-local on a scratch data dir, sends 64 parallel registrations, then 32 parallel
# logins, and prints the process's peak RSS (VmHWM) after each and its RSS after 20 s idle.
# BASELINE=<path to another chat-local binary> measures that one too, side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
binary=${CHAT_LOCAL:-${CARGO_TARGET_DIR:-target}/release/chat-local}

measure() {
  local bin=$1 label=$2 dir port pid
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$bin" --listen "127.0.0.1:$port" --data-dir "$dir" >/dev/null 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/admin" && break; sleep 0.1; done
  kb() { awk -v k="$1" '$1 == k":" { print $2 }' "/proc/$pid/status"; }
  local start; start=$(kb VmRSS)
  seq 64 | xargs -P 64 -I{} curl -s -o /dev/null -XPOST "http://127.0.0.1:$port/api/regChat" -d "username=mem{}user&password=123456"
  local after_reg; after_reg=$(kb VmHWM)
  seq 32 | xargs -P 32 -I{} curl -s -o /dev/null -XPOST "http://127.0.0.1:$port/api/loginChat" -d "username=mem{}user&password=123456"
  local after_login; after_login=$(kb VmHWM)
  sleep 20
  local idle; idle=$(kb VmRSS)
  local users; users=$(curl -s -XPOST "http://127.0.0.1:$port/api/loginChat" -d "username=mem64user&password=123456" | grep -c '"msg":"ok"' || true)
  kill "$pid"; wait "$pid" 2>/dev/null || true; rm -rf "$dir"
  printf '%-10s %10d %18d %20d %16d %8s\n' "$label" $((start / 1024)) $((after_reg / 1024)) $((after_login / 1024)) $((idle / 1024)) "$users"
}

printf '%-10s %10s %18s %20s %16s %8s\n' binary "start MB" "peak 64 reg. MB" "peak +32 logins MB" "idle 20s MB" "works"
measure "$binary" current
if [ -n "${BASELINE:-}" ]; then measure "$BASELINE" baseline; fi
echo "goal: peak under 64 parallel registrations <= 200 MB"
