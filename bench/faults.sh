#!/usr/bin/env bash
# Faults at full size (issue 17): `recsys train` killed with SIGKILL at KILLS (20)
# seeded moments spread over a measured run on the full-size synthetic data
# (1,407,580 visitors, 235,061 items, 2,756,101 events, seed 7; a run lasts about a
# minute, so kills land in every phase), plus KILLS/10 kills aimed into the loading
# and as many into the bundle's save (the short phases, about 2 s and 1 s of the run);
# then `recsys pg push` killed mid-COPY (each --if-exists mode) and `recsys s3 push`
# killed mid-multipart, ROUNDS (3) times each. Prints a table per command: each
# fault tried, when it hit, and what survived.
#
# These are the tests CI runs (tests/faults.rs: 3 train kills on the embedded
# extract, one round of pg and s3), with more kills and the big data through their
# RECSYS_FAULTS_* variables. Needs PostgreSQL and SeaweedFS (`.ci/services/up`).
#
#   bench/faults.sh                       # 20 train kills, 3 rounds of pg and s3, seed 17
#   KILLS=5 ROUNDS=1 SEED=3 bench/faults.sh
set -euo pipefail
cd "$(dirname "$0")/.."
kills="${KILLS:-20}"
rounds="${ROUNDS:-3}"
seed="${SEED:-17}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
bin="$CARGO_TARGET_DIR/release/recsys"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cargo build --release --quiet
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); recsys $(git rev-parse --short HEAD)"
"$bin" generate --seed 7 --out "$work" 2>&1 >/dev/null | sed 's/^/generate: /'
cat > "$work/config.toml" <<TOML
[data]
events = "$work/events.csv"
item_features = "$work/item_features.csv"
[split]
cutoff = "2015-09-01"
TOML

echo "train: full-size synthetic data (generate --seed 7), default model settings; $kills random kills + $(( kills / 10 > 0 ? kills / 10 : 1 )) aimed into the load and as many into the save; seed $seed"
echo "pg, s3: $rounds rounds"
log="$work/faults.log"
status=0
RECSYS_FAULTS_CONFIG="$work/config.toml" RECSYS_FAULTS_TRAIN_KILLS="$kills" \
RECSYS_FAULTS_ROUNDS="$rounds" RECSYS_FAULTS_SEED="$seed" \
    cargo test --release --quiet --test tests faults:: -- --nocapture --test-threads 1 >"$log" 2>&1 ||
    status=$?
# The tables, without the test harness around them.
grep -E '^(\||recsys )' "$log" | sed -E 's/^recsys /\nrecsys /'
grep -E '^test result' "$log" || true
if [ "$status" -ne 0 ]; then
    tail -n 60 "$log" >&2
    exit "$status"
fi
