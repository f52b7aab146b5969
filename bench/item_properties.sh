#!/usr/bin/env bash
# Reading the raw RetailRocket item files (issue: ≤ 30 s and ≤ 2 GB for the ~20M
# property rows of the real download, on 2 cores). `recsys generate --layout
# retailrocket-raw` with ITEMS (700,000) items writes about 29 rows per item:
# 20.3M rows, 0.8 GB of CSV in two parts, like the real files. The events are
# few (10,000), so `recsys train` (popular only) spends its time and memory on
# the item files; it prints how long they took, /usr/bin/time the peak RSS.
#
#   bash bench/item_properties.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
items="${ITEMS:-700000}"
work="${RECSYS_BENCH_DIR:-$HOME/.cache/recsys-ci/bench-data}/raw-items-$items"
bin="$CARGO_TARGET_DIR/release/recsys"
cargo build --release --quiet
if [ ! -f "$work/category_tree.csv" ]; then
  "$bin" generate --users 2000 --items "$items" --events 10000 --seed 7 \
    --layout retailrocket-raw --out "$work" >/dev/null
fi
cat > "$work/config.toml" <<TOML
[data]
events = "events.csv"
item_properties = ["item_properties_part1.csv", "item_properties_part2.csv"]
category_tree = "category_tree.csv"
[split]
cutoff = "2015-09-01"
[models]
enabled = ["popular"]
[artifacts]
dir = "artifacts"
TOML
rows=$(( $(wc -l < "$work/item_properties_part1.csv") + $(wc -l < "$work/item_properties_part2.csv") - 2 ))
echo "machine: $(nproc) cores; recsys $(git rev-parse --short HEAD); $rows property rows, $(du -cm "$work"/item_properties_part*.csv | tail -1 | cut -f1) MB"
rm -rf "$work/artifacts"
/usr/bin/time -f "train (popular only): %e s wall, %M KB peak RSS" \
  "$bin" train --config "$work/config.toml" 2>&1 | grep -E "item features|peak RSS"
