#!/usr/bin/env bash
# The feedback loop's cost on /recommendations throughput, measured interleaved:
# feedback off, on, then on, off, ... (ROUNDS, MODES; each round starts one mode
# later), each service started afresh on the
# bundle and configs bench/serve_wrk.sh leaves in its work directory
# (serve-config-off.toml has attribution_minutes = 0, serve-config-on.toml the
# default, serve-config-experiment.toml an A/A experiment on the bundle,
# serve-config-ab.toml an A/B experiment on two copies of it), a 10 s warm-up,
# then 20 s of wrk -t1 -c32 at saturation.
#
#   bash bench/serve_wrk.sh && bash bench/feedback_cost.sh
#   MODES="off experiment ab" ROUNDS="1 2 3" bash bench/feedback_cost.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
work="${RECSYS_BENCH_DIR:-$HOME/.cache/recsys-ci/bench-data}/full-x1"
bin="$CARGO_TARGET_DIR/release/recsys"
port="${PORT:-18000}"
url="http://127.0.0.1:$port"
for f in serve-config-off.toml serve-config-on.toml users.lua items.lua; do
  [ -f "$work/$f" ] || { echo "$work/$f is missing: run bench/serve_wrk.sh first" >&2; exit 1; }
done
export USERS_LUA="$work/users.lua" ITEMS_LUA="$work/items.lua"
ticks=$(getconf CLK_TCK)
# User + system CPU time of process $1, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
read -ra modes <<<"${MODES:-off on}"
n=0
for round in ${ROUNDS:-1 2}; do
  # Each round starts one mode later, so no mode always runs first or last.
  order=("${modes[@]:n%${#modes[@]}}" "${modes[@]:0:n%${#modes[@]}}")
  n=$((n + 1))
  for mode in "${order[@]}"; do
    "$bin" serve --config "$work/serve-config-$mode.toml" 2> "$work/serve-$mode.log" &
    server=$!
    for _ in $(seq 900); do curl -fs "$url/ready" >/dev/null 2>&1 && break; sleep 0.2; done
    RATE_PER_CONNECTION=0 wrk -t1 -c32 -d10s -s bench/wrk/recommendations.lua "$url" >/dev/null
    before=$(cpu_ticks "$server")
    out=$(RATE_PER_CONNECTION=0 wrk -t1 -c32 -d20s -s bench/wrk/recommendations.lua "$url")
    after=$(cpu_ticks "$server")
    rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    requests=$(awk '/requests in/ {print $1}' <<<"$out")
    # The service's own CPU time per request: steadier than req/s on a machine
    # whose neighbours take cycles (time stolen by the host is not counted).
    cpu_us=$(( (after - before) * 1000000 / ticks / requests ))
    echo "round $round, $mode: $rps req/s, $cpu_us us CPU per request, RSS $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' "/proc/$server/status")"
    kill "$server"; wait "$server" 2>/dev/null || true
  done
done
