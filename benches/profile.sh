#!/bin/bash
# Samples the client process's CPU while criterion runs one benchmark of `cargo bench --bench
# latency` in profiling mode, and prints the flat profile (self time per function).
#
#   benches/profile.sh 'cpu/raw_get_item/1024$' > raw.flat
#   benches/profile.sh 'cpu/dynamodb_hit/1024$' > hit.flat
#   python3 benches/profile_diff.py raw.flat hit.flat
#
# Needs perf (linux-perf) and a kernel that lets it sample this user's processes. The servers
# run in a process of their own and are not sampled. Symbols come from the release build's
# symbol table; call graphs are not needed for the flat profile.
set -euo pipefail
filter=$1
cd "$(dirname "$0")/.."
cargo bench --bench latency --no-run 2>/dev/null
bin=$(ls -t target/release/deps/latency-* | grep -v '\.d$' | head -1)
log=$(mktemp)
data=$(mktemp)
"$bin" --bench --profile-time 25 "$filter" >"$log" 2>&1 &
pid=$!
until grep -q 'Profiling' "$log"; do sleep 0.5; done
sleep 3
perf record -F 1999 -p "$pid" -o "$data" -- sleep 12 2>/dev/null
wait "$pid"
perf report -i "$data" --no-children --sort sym 2>/dev/null | grep -v '^#' | grep -v '^$'
rm -f "$log" "$data"
