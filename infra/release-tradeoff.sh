#!/usr/bin/env bash
# The release profile's trade-off for the Lambda binary, measured on this machine (host target):
# for each variant of LTO and codegen units, the time to rebuild `bootstrap` after a change to
# shared/ (what every deploy after an edit pays; a fresh build adds the dependencies), the
# stripped binary's size and its cold start (make bench-coldstart's init ratio, 7 rounds).
# VARIANTS="lto:codegen-units ..." picks the variants (default below); each keeps its own
# artifacts in the shared target dir, so the first build of a variant compiles everything.
set -euo pipefail
cd "$(dirname "$0")/.."
variants=${VARIANTS:-"thin:16 off:16 fat:16 fat:1"}
binary=${CARGO_TARGET_DIR:-target}/release/bootstrap
bench=${CARGO_TARGET_DIR:-target}/release/coldstart-bench
npm ci --prefix tests/coldstart-node --no-audit --no-fund --loglevel=error >/dev/null

printf '%-8s %-6s %14s %12s %12s\n' lto cgu "rebuild (s)" "size (MB)" "init ratio"
for v in $variants; do
  lto=${v%%:*}; cgu=${v##*:}
  case $lto in off) lto_value=false ;; *) lto_value="\"$lto\"" ;; esac
  config=(--config "profile.release.lto=$lto_value" --config "profile.release.codegen-units=$cgu")
  cargo build -q --release "${config[@]}" --workspace --bin bootstrap --bin hello-lambda --bin coldstart-bench
  touch shared/src/lib.rs
  start=$(date +%s.%N)
  cargo build -q --release "${config[@]}" --bin bootstrap
  rebuild=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
  size=$(awk -v s="$(stat -c %s "$binary")" 'BEGIN { printf "%.1f", s / 1048576 }')
  ratio=$("$bench" 7 | sed -n 's/^init ratio.*: \([0-9.]*\)x.*/\1/p')
  printf '%-8s %-6s %14.0f %12s %12s\n' "$lto" "$cgu" "$rebuild" "$size" "$ratio"
done
