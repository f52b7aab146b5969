#!/usr/bin/env bash
# Load test of `recsys serve` with wrk on loopback, at full RetailRocket size.
#
# Data and traffic: see bench/serve_common.sh. Every request is scored live
# by two_stage (candidates from the indexes, features, trees).
#
# Reports throughput and latency percentiles at saturation and at about
# 2,000 req/s (open-loop-like: exponential gaps per connection) for
# GET /recommendations?k=10, POST /events at saturation, and the service's
# RSS; wrk prints "Non-2xx or 3xx responses" if any answer was not a 200.
# wrk shares the machine's 2 cores with the service.
#
# Then the cost of the feedback loop, same data and traffic, one service at a
# time: /recommendations at saturation with feedback tracking off
# (attribution_minutes = 0), on (the default), on with a two-variant A/A
# experiment (both variants the same bundle, which the service loads once, so
# only the machinery differs), and an A/B experiment whose variants are two
# copies of the bundle (two models resident, as in a real A/B test, with the
# same work per answer); each run is preceded by the new shoppers' events and
# a warm-up.
#
#   bench/serve_wrk.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/serve_common.sh
duration="${DURATION:-20s}"
prepare
start_server "$work/serve-config.toml" "$work/serve.log"
trap 'kill $server 2>/dev/null || true' EXIT
curl -fs "$url/ready"; echo
rss() { echo "$(rss_mb) MB"; }
echo "RSS after load: $(rss)"

post_new_events verbose
echo "RSS after events: $(rss)"

echo; echo "== warm-up (10s, not reported)"
RATE_PER_CONNECTION=0 wrk -t1 -c32 -d10s -s bench/wrk/recommendations.lua "$url" >/dev/null
echo; echo "== GET /recommendations?k=10 at saturation: wrk -t1 -c32 -d$duration"
RATE_PER_CONNECTION=0 wrk -t1 -c32 -d"$duration" --latency -s bench/wrk/recommendations.lua "$url"
echo "RSS: $(rss)"
echo; echo "== GET /recommendations?k=10 at ~2,000 req/s: 50 connections x 40 req/s, wrk -t1 -c50 -d$duration"
RATE_PER_CONNECTION=40 wrk -t1 -c50 -d"$duration" --latency -s bench/wrk/recommendations.lua "$url"
echo; echo "== POST /events at saturation: wrk -t1 -c32 -d$duration"
wrk -t1 -c32 -d"$duration" --latency -s bench/wrk/events.lua "$url"
echo "RSS: $(rss)"
curl -fs "$url/metrics" | grep -E '^recsys_(event_store_(users|events)|recommendation_responses_total|recommended_items_total)' || true
kill $server; wait $server 2>/dev/null || true

# The feedback loop's cost: the same saturation run against three services.
# A copy in another directory: the service loads it as a second model.
[ -d "$work/bundle-copy" ] || cp -r "$bundle" "$work/bundle-copy"
for mode in off on experiment ab; do
  cfg="$work/serve-config-$mode.toml"
  case $mode in
    off) sed 's#^attribution_minutes = .*#attribution_minutes = 0#' "$work/serve-config.toml" > "$cfg" ;;
    on) cp "$work/serve-config.toml" "$cfg" ;;
    experiment) { cat "$work/serve-config.toml"
       printf '\n[serve.experiment]\nname = "bench"\nvariants = [\n  { name = "a", bundle = "%s", share = 0.5 },\n  { name = "b", bundle = "%s", share = 0.5 },\n]\n' "$bundle" "$bundle"
       } > "$cfg" ;;
    ab) { cat "$work/serve-config.toml"
       printf '\n[serve.experiment]\nname = "bench"\nvariants = [\n  { name = "a", bundle = "%s", share = 0.5 },\n  { name = "b", bundle = "%s", share = 0.5 },\n]\n' "$bundle" "$work/bundle-copy"
       } > "$cfg" ;;
  esac
  start_server "$cfg" "$work/serve-$mode.log"
  post_new_events
  RATE_PER_CONNECTION=0 wrk -t1 -c32 -d10s -s bench/wrk/recommendations.lua "$url" >/dev/null
  echo; echo "== feedback $mode: GET /recommendations?k=10 at saturation: wrk -t1 -c32 -d$duration"
  RATE_PER_CONNECTION=0 wrk -t1 -c32 -d"$duration" --latency -s bench/wrk/recommendations.lua "$url" | grep -E 'Requests/sec|Non-2xx|99%'
  echo "RSS: $(rss)"
  kill $server; wait $server 2>/dev/null || true
done
