#!/usr/bin/env bash
# Runs the public HTTP caching test suite (cache-tests, the suite behind cache-tests.fyi, as
# published on npm: http-cache-tests) against examples/proxy.rs, in the private and the shared
# scope, and scores the results the way the suite's own display does, beside the results of
# other caches that the package ships.
#
#   bash conformance/run.sh            # needs node and npm; installs the suite under target/
#
# Not part of CI (it takes the npm registry and about a minute); tests/all/conformance.rs runs
# a curated set of the same cases in every `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
version="0.4.5"
dir="target/cache-tests"
mkdir -p "$dir"
if [ ! -d "$dir/node_modules/http-cache-tests" ]; then
  (cd "$dir" && npm install --no-audit --no-fund --silent "http-cache-tests@$version")
fi
suite="$(pwd)/$dir/node_modules/http-cache-tests"
cargo build --quiet --example proxy

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; }
trap cleanup EXIT

(cd "$suite" && npm_package_config_port=8000 npm_package_config_protocol=http \
  npm_package_config_pidfile="$suite/server.pid" node server/server.mjs >/dev/null 2>&1) &
pids+=($!)
target/debug/examples/proxy http://127.0.0.1:8000 127.0.0.1:8080 >/dev/null 2>&1 &
pids+=($!)
target/debug/examples/proxy http://127.0.0.1:8000 127.0.0.1:8081 --shared >/dev/null 2>&1 &
pids+=($!)
for port in 8000 8080 8081; do
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
done

for scope in private:8080 shared:8081; do
  name="${scope%%:*}"
  port="${scope##*:}"
  (cd "$suite" && npm_config_base="http://127.0.0.1:$port" npm_package_config_id= npm_config_id= \
    node --no-warnings cli.mjs) > "$dir/results-$name.json"
done

node conformance/score.mjs "$suite" "$dir/results-private.json" "$dir/results-shared.json"
