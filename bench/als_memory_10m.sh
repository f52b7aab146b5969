#!/usr/bin/env bash
# Peak memory of ALS on a 10M-non-zero matrix: 500,000 users × 100,000 items,
# 10,000,000 distinct cells, factors 64, 15 iterations, 3 CG steps.
# Prints the peak RSS of the Rust side (examples/als_bench), which holds the
# matrix, its transpose and both factor tables. Reuses bench/als_vs_implicit.sh's venv.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${RECSYS_BENCH_VENV:-$HOME/.cache/recsys-ci/venv-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
data="${RECSYS_BENCH_DATA:-$HOME/.cache/recsys-ci/bench-data}/random-10m"
[ -x "$venv/bin/python" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install -q numpy scipy; }
(cd "$here/.." && cargo build --release --quiet --example als_bench)
[ -f "$data/shape.npy" ] || "$venv/bin/python" "$here/make_matrix.py" random "$data" --users 500000 --items 100000 --nnz 10000000
cd "$data"
/usr/bin/time -f "peak RSS %M KB, %e s wall" "$CARGO_TARGET_DIR/release/examples/als_bench" \
  --rows rows.npy --cols cols.npy --data data.npy --shape shape.npy \
  --factors 64 --iterations 15 --regularization 0.01 --alpha 1 --cg-steps 3 | tail -1
