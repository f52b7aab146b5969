#!/usr/bin/env bash
# Our GBDT (LambdaMART) against LightGBM's lambdarank on the same re-ranker
# table, in one run.
#
#   bash bench/gbdt_vs_lightgbm.sh
#
# 1. a full-RetailRocket-size synthetic dataset (1,407,580 visitors, 235,061
#    items, 2,756,101 events; `recsys generate --seed 7`), shared with
#    bench/e2e_full_size.sh;
# 2. examples/rerank_table.rs writes two_stage's training table for it (label
#    windows: $BENCH_LABEL_WINDOWS, default 3, to pass 1M rows);
# 3. LightGBM (pip, in ${RECSYS_BENCH_VENV_LGBM:-$HOME/.cache/recsys-ci/venv-lgbm})
#    and examples/gbdt_bench.rs fit $BENCH_TREES trees of $BENCH_LEAVES leaves at
#    learning rate $BENCH_LR on the same 4/5 of the groups, on $BENCH_THREADS
#    threads, no early stopping;
# 4. both validation score sets are rated by the same NDCG@10 code; the last
#    line is `ratio X`: LightGBM's fit seconds over ours (> 1: we are faster).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
venv="${RECSYS_BENCH_VENV_LGBM:-$HOME/.cache/recsys-ci/venv-lgbm}"
work="${RECSYS_BENCH_DIR:-$HOME/.cache/recsys-ci/bench-data}/full-x1"
threads="${BENCH_THREADS:-2}"
trees="${BENCH_TREES:-100}"
leaves="${BENCH_LEAVES:-31}"
lr="${BENCH_LR:-0.1}"
windows="${BENCH_LABEL_WINDOWS:-3}"
export RAYON_NUM_THREADS="$threads"

if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet lightgbm==4.7.0 numpy
fi
cd "$root"
cargo build --release --quiet --bin recsys --example rerank_table --example gbdt_bench
bin="$CARGO_TARGET_DIR/release"
mkdir -p "$work"
if [ ! -f "$work/events.csv" ]; then
  "$bin/recsys" generate --users 1407580 --items 235061 --events 2756101 --seed 7 --out "$work" >/dev/null
fi
cat > "$work/config-rerank.toml" <<TOML
[data]
events = "events.csv"
item_features = "item_features.csv"
[split]
cutoff = "2015-09-01"
TOML
table="$work/rerank-table-w$windows"
if [ ! -f "$table/groups.npy" ]; then
  echo "== building the re-ranker table ($windows label windows)"
  "$bin/examples/rerank_table" --config "$work/config-rerank.toml" --out "$table" --label-windows "$windows"
fi
echo "== LightGBM $trees trees, $leaves leaves, lr $lr, $threads threads"
theirs=$("$venv/bin/python" "$here/gbdt_lightgbm.py" --table "$table" --trees "$trees" \
  --leaves "$leaves" --learning-rate "$lr" --threads "$threads")
echo "$theirs"
echo "== recsys gbdt, same settings"
ours=$("$bin/examples/gbdt_bench" --table "$table" --trees "$trees" --leaves "$leaves" \
  --learning-rate "$lr" --lightgbm-scores "$table/lightgbm_valid_scores.npy")
echo "$ours"
python3 - "$theirs" "$ours" <<'PY'
import json, sys
t, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"rows {o['rows']} ({o['train_rows']} train, {o['valid_rows']} valid), {o['features']} features")
print(f"{'':10} {'fit s':>8} {'NDCG@10':>9} {'score rows/s':>14}")
print(f"{'lightgbm':10} {t['fit_seconds']:8.2f} {o['lightgbm_valid_ndcg_at_10']:9.4f} {t['score_rows_per_second']:14.0f}")
print(f"{'recsys':10} {o['fit_seconds']:8.2f} {o['valid_ndcg_at_10']:9.4f} {o['score_rows_per_second']:14.0f}")
print(f"ratio {t['fit_seconds'] / o['fit_seconds']:.2f}")
PY
