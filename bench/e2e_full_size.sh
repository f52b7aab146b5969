#!/usr/bin/env bash
# End to end at full RetailRocket size: generate a synthetic dataset of 1,407,580
# visitors, 235,061 items and 2,756,101 events (or SCALE times that), then time
# `recsys train --evaluate` on it and report wall time and peak RSS.
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
