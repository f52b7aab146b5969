#!/usr/bin/env bash
# Soak test of `recsys serve` at full RetailRocket size: MINUTES (10) of mixed
# traffic (80% GET /recommendations?k=10, 20% POST /events: bench/wrk/recommendations.lua
# with EVENT_SHARE=0.2) at LOAD (80) percent of the saturation measured on the same traffic just
# before, with a reload (SIGHUP: the newest bundle loaded and swapped in) every
# RELOAD_SECONDS (120). Data, bundle and traffic as in bench/serve_wrk.sh
# (bench/serve_common.sh); the in-memory event store, as a single replica runs.
#
# Before it, every shopper of the traffic gets as many views as the event store
# keeps per shopper and as many answers as the feedback memory remembers
# (bench/wrk/fill.lua), so that the bounded structures are full and growth
# after that is not theirs. One wrk run per minute, so each minute has its own
# throughput and latency percentiles; the service's RSS after each. Checks at
# the end, and exits 1 if one fails: no error (non-2xx answer or socket error)
# in any minute, RSS at the end within 10% of RSS after the first minute, every
# reload succeeded. The last minute's p99 against the first's is reported, not
# checked: on 2 shared cores single minutes differ by tens of percent.
#
#   bash bench/soak.sh
#   MINUTES=2 RELOAD_SECONDS=30 bash bench/soak.sh    # a short try
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/serve_common.sh
minutes="${MINUTES:-10}"
load="${LOAD:-80}"
reload_every="${RELOAD_SECONDS:-120}"
connections=64
export EVENT_SHARE=0.2

prepare
start_server "$work/serve-config.toml" "$work/soak-serve.log"
reloader="" filler=""
trap 'kill $server ${reloader} ${filler} 2>/dev/null || true' EXIT
post_new_events verbose

# wrk's summary as "req/s p50_ms p99_ms errors".
summary() {
  awk '
    function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx or 3xx responses/ { errors += $5 }
    /Socket errors/ { gsub(",", ""); errors += $4 + $6 + $8 + $10 }
    END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, errors }'
}

# The store keeps 20 events per shopper and the feedback memory 50 shown items: filled by
# the mix, the 200,000 shoppers' would take most of an hour, and their growth would hide a leak.
# wrk runs for its whole -d, so it is stopped once the store holds every shopper's events.
started_fill=$(date +%s)
wrk -t1 -c$connections -d60m -s bench/wrk/fill.lua "$url" > "$work/fill.log" &
filler=$!
shoppers=$(tr ',' '\n' < "$USERS_LUA" | wc -l)
until curl -fs "$url/metrics" | awk -v want=$((shoppers * 20)) '/^recsys_event_store_events / { exit !($2 >= want) } END { if (!NR) exit 1 }'; do
  kill -0 "$filler" 2>/dev/null || { echo "the fill's wrk ended early: $(cat "$work/fill.log")" >&2; exit 1; }
  sleep 2
done
sleep 2
kill -INT "$filler"; wait "$filler" || true
echo "fill: $(awk '/requests in/ { print $1 }' "$work/fill.log") requests in $(( $(date +%s) - started_fill )) s (20 views and 5 answers for each of the traffic's $shoppers shoppers); RSS $(rss_mb) MB"
echo "== warm-up (10 s) and saturation of the mix (30 s): wrk -t1 -c$connections"
RATE_PER_CONNECTION=0 wrk -t1 -c$connections -d10s -s bench/wrk/recommendations.lua "$url" >/dev/null
read -r saturation _ _ sat_errors < <(RATE_PER_CONNECTION=0 wrk -t1 -c$connections -d30s --latency -s bench/wrk/recommendations.lua "$url" | summary)
target=$((saturation * load / 100))
echo "saturation: $saturation req/s ($sat_errors errors); soak target: $target req/s ($load%)"
per_connection=$(awk -v t="$target" -v c="$connections" 'BEGIN { printf "%.2f", t / c }')

# The first reload after 3/4 of the interval: reloads then fall mid-minute, and the
# per-minute RSS samples between them, not during a load's moment of two models.
(
  sleep $((reload_every * 3 / 4))
  while kill -HUP "$server"; do sleep "$reload_every"; done
) &
reloader=$!

printf '\n| minute | req/s | p50 ms | p99 ms | errors | RSS MB |\n| --- | --- | --- | --- | --- | --- |\n'
first_rss="" first_p99="" total_errors=0
for minute in $(seq "$minutes"); do
  read -r rps p50 p99 errors < <(RATE_PER_CONNECTION=$per_connection wrk -t1 -c$connections -d60s --latency -s bench/wrk/recommendations.lua "$url" | summary)
  rss=$(rss_mb)
  printf '| %d | %s | %s | %s | %s | %s |\n' "$minute" "$rps" "$p50" "$p99" "$errors" "$rss"
  total_errors=$((total_errors + errors))
  [ -n "$first_rss" ] || { first_rss=$rss; first_p99=$p99; }
  last_rss=$rss last_p99=$p99
done
kill "$reloader" 2>/dev/null || true

reloads=$(curl -fs "$url/metrics" | awk '/^recsys_model_reloads_total/ { print }')
echo
echo "reloads: ${reloads:-none}"
echo "errors: $total_errors"
echo "RSS: $first_rss MB after minute 1, $last_rss MB at the end"
echo "p99: $first_p99 ms in minute 1, $last_p99 ms in minute $minutes"
failed=0
[ "$total_errors" -eq 0 ] || { echo "FAIL: $total_errors errors" >&2; failed=1; }
awk -v a="$first_rss" -v b="$last_rss" 'BEGIN { exit !(b <= a * 1.10 && b >= a * 0.90) }' \
  || { echo "FAIL: RSS moved more than 10% ($first_rss -> $last_rss MB)" >&2; failed=1; }
if echo "$reloads" | grep -q 'outcome="failure"} [1-9]'; then
  echo "FAIL: a reload failed (see $work/soak-serve.log)" >&2; failed=1
fi
exit $failed
