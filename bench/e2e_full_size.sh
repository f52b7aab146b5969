#!/usr/bin/env bash
# End to end at full RetailRocket size: generate a synthetic dataset of 1,407,580
# visitors, 235,061 items and 2,756,101 events (or SCALE times that), then time
# `recsys train --evaluate` on it and report wall time and peak RSS; then
# `recsys serve` on the bundle: time until ready, RSS, and a few answers (a
# shopper training knew, a new one, similar items) with their latency.
#
#   bench/e2e_full_size.sh            # full size
#   SCALE=10 bench/e2e_full_size.sh   # 10x (27.6M events)
set -euo pipefail
cd "$(dirname "$0")/.."
scale="${SCALE:-1}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
work="${RECSYS_BENCH_DIR:-$HOME/.cache/recsys-ci/bench-data}/full-x$scale"
bin="$CARGO_TARGET_DIR/release/recsys"

cargo build --release --quiet
mkdir -p "$work"
users=$((1407580 * scale)); items=$((235061 * scale)); events=$((2756101 * scale))
if [ ! -f "$work/events.csv" ]; then
  /usr/bin/time -f "generate: %e s wall, %M KB peak RSS" \
    "$bin" generate --users "$users" --items "$items" --events "$events" --seed 7 --out "$work" >/dev/null
fi
cat > "$work/config.toml" <<TOML
[data]
events = "events.csv"
item_features = "item_features.csv"
[split]
cutoff = "2015-09-01"
[artifacts]
dir = "artifacts"
TOML
rm -rf "$work/artifacts"
echo "data: $events events, $users visitors, $items items (seed 7); cutoff 2015-09-01; default model settings"
/usr/bin/time -f "train + evaluate: %e s wall, %M KB peak RSS" \
  "$bin" train --config "$work/config.toml" --evaluate

# The service on that bundle.
port="${PORT:-18010}"
url="http://127.0.0.1:$port"
started=$(date +%s.%N)
"$bin" serve --config "$work/config.toml" --port "$port" 2> "$work/serve.log" &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
until curl -fs "$url/ready" >/dev/null 2>&1; do
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.5
done
ready=$(date +%s.%N)
known=$(awk -F, 'NR > 1 && $1 < 1441065600000 { print $2; exit }' "$work/events.csv")
item=$(awk -F, 'NR > 1 && $1 < 1441065600000 { print $4; exit }' "$work/events.csv")
echo "serve: ready in $(awk -v a="$started" -v b="$ready" 'BEGIN { printf "%.1f", b - a }') s, RSS $(awk '/VmRSS/ {printf "%.0f MB", $2/1024}' "/proc/$server/status")"
for path in "/recommendations?user_id=$known&k=10" "/recommendations?user_id=999999999999&k=10" "/similar?item_id=$item&k=10"; do
  curl -fs -o "$work/answer.json" -w "%{http_code} in %{time_total} s" "$url$path"
  echo " GET $path: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(len(d.get("recommendations", d.get("similar", d.get("items", [])))), "items,", d.get("model", ""))' "$work/answer.json")"
done
curl -fs "$url/ready"; echo
