#!/usr/bin/env bash
# Load test of `recsys serve` with wrk on loopback, at full RetailRocket size.
#
# Data: the synthetic full-size dataset (1,407,580 visitors, 235,061 items,
# 2,756,101 events, seed 7; the same files as bench/e2e_full_size.sh), trained
# with the repository's config.toml (popular, history, als, two_stage).
# Every request is scored live by two_stage (candidates from the indexes,
# features, trees). Traffic: 200,000 shopper ids, 90% drawn uniformly from
# all shoppers training knew and 10% new shoppers, each of whom has 1-5 views
# posted to the service just before the runs (items drawn from the event log,
# so popular items come up more often).
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
repo="$PWD"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
work="${RECSYS_BENCH_DIR:-$HOME/.cache/recsys-ci/bench-data}/full-x1"
bin="$CARGO_TARGET_DIR/release/recsys"
duration="${DURATION:-20s}"
port="${PORT:-18000}"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

cargo build --release --quiet
mkdir -p "$work"
if [ ! -f "$work/events.csv" ]; then
  "$bin" generate --seed 7 --out "$work" >/dev/null
fi
# The repository's config with the data and artifacts of the benchmark.
sed -e 's#^events = .*#events = "events.csv"#' \
    -e 's#^item_features = .*#item_features = "item_features.csv"#' \
    -e 's#^dir = "artifacts"#dir = "serve-artifacts"#' \
    -e 's#^port = .*#port = '"$port"'#' \
    config.toml > "$work/serve-config.toml"
if [ -z "$(ls -A "$work/serve-artifacts" 2>/dev/null)" ]; then
  /usr/bin/time -f "train: %e s wall, %M KB peak RSS" "$bin" train --config "$work/serve-config.toml"
fi
bundle="$(ls -d "$work"/serve-artifacts/*/ | tail -1)"
python3 - "$bundle" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
d = m["data"]
print(f"bundle {m['run_id']}: {', '.join(m['models'])} on {d['users']} users x {d['items']} items")
PY

# Traffic: known ids from the training events, unknown ids beyond every visitor.
python3 - "$work" <<'PY'
import csv, random, sys
work = sys.argv[1]
random.seed(11)
visitors, items = set(), []
with open(f"{work}/events.csv") as f:
    r = csv.reader(f); next(r)
    for row in r:
        if int(row[0]) < 1441065600000:  # 2015-09-01, the cutoff
            visitors.add(int(row[1]))
        items.append(int(row[3]))
visitors = sorted(visitors)
known = random.sample(visitors, 180000)
new = [10**9 + i for i in range(20000)]
users = known + new
random.shuffle(users)
picked = random.sample(items, 50000)
for name, ids in [("users", users), ("items", picked)]:
    with open(f"{work}/{name}.lua", "w") as f:
        f.write("return {" + ",".join(map(str, ids)) + "}\n")
with open(f"{work}/new.txt", "w") as f:
    for u in new:
        views = [random.choice(picked) for _ in range(random.randint(1, 5))]
        f.write(f"{u} {' '.join(map(str, views))}\n")
print(f"traffic: {len(known)} known shoppers (of {len(visitors)}), {len(new)} new ones")
PY

"$bin" serve --config "$work/serve-config.toml" 2> "$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 600); do
  curl -fs "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
curl -fs "http://127.0.0.1:$port/ready"; echo
rss() { awk '/VmRSS/ {printf "%.0f MB", $2/1024}' "/proc/$server/status"; }
echo "RSS after load: $(rss)"

# 1-5 views for each new shopper.
python3 - "$work/new.txt" "$port" <<'PY'
import http.client, json, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]))
n = users = 0
for line in open(sys.argv[1]):
    user, *items = map(int, line.split())
    users += 1
    for item in items:
        conn.request("POST", "/events", json.dumps({"user_id": user, "item_id": item, "event": "view"}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse(); r.read()
        assert r.status == 202, r.status
        n += 1
print(f"posted {n} events for {users} new shoppers")
PY
echo "RSS after events: $(rss)"

export USERS_LUA="$work/users.lua" ITEMS_LUA="$work/items.lua"
url="http://127.0.0.1:$port"
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
post_new_events() {
python3 - "$work/new.txt" "$port" <<'PY'
import http.client, json, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]))
for line in open(sys.argv[1]):
    user, *items = map(int, line.split())
    for item in items:
        conn.request("POST", "/events", json.dumps({"user_id": user, "item_id": item, "event": "view"}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse(); r.read()
        assert r.status == 202, r.status
PY
}
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
  "$bin" serve --config "$cfg" 2> "$work/serve-$mode.log" &
  server=$!
  for _ in $(seq 900); do
    curl -fs "$url/ready" >/dev/null 2>&1 && break
    sleep 0.2
  done
  post_new_events
  RATE_PER_CONNECTION=0 wrk -t1 -c32 -d10s -s bench/wrk/recommendations.lua "$url" >/dev/null
  echo; echo "== feedback $mode: GET /recommendations?k=10 at saturation: wrk -t1 -c32 -d$duration"
  RATE_PER_CONNECTION=0 wrk -t1 -c32 -d"$duration" --latency -s bench/wrk/recommendations.lua "$url" | grep -E 'Requests/sec|Non-2xx|99%'
  echo "RSS: $(rss)"
  kill $server; wait $server 2>/dev/null || true
done
