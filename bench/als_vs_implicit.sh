#!/usr/bin/env bash
# Our ALS (examples/als_bench.rs) against the Python `implicit` package's CPU
# ALS (conjugate gradient), on the same seeded matrices, in one run.
#
#   bash bench/als_vs_implicit.sh
#
# 1. a venv with implicit==0.7.3, numpy, scipy, threadpoolctl
#    (${RECSYS_BENCH_VENV:-$HOME/.cache/recsys-ci/venv-bench});
# 2. `cargo build --release --example als_bench` once
#    (CARGO_TARGET_DIR defaults to $HOME/.cache/recsys-ci/target);
# 3. bench/make_matrix.py writes two matrices as .npy triplets:
#    random  — 100,000 users × 20,000 items, 2,000,000 distinct cells, weights 1..5
#              (timing only: there is nothing to learn);
#    planted — 50,000 users × 10,000 items in 20 latent groups, 20..50
#              interactions per user, 85% inside the user's group, one per user
#              held out (model quality: loss and recall@10);
# 4. both libraries train on both with the same objective (see
#    bench/als_implicit.py: implicit gets c = 1 + alpha·w with its alpha = 1),
#    on $BENCH_THREADS threads (rayon for us, OpenMP for implicit with BLAS
#    limited to 1 thread by threadpoolctl);
# 5. a table, ending with `speedup X`: implicit's mean seconds per iteration
#    over ours, on the random matrix (mean over all iterations, first included).
#
# Knobs (environment): BENCH_THREADS (2), BENCH_ALPHA (1, AlsConfig's default),
# BENCH_FACTORS (64), BENCH_PLANTED_FACTORS (32), BENCH_ITERATIONS (15),
# BENCH_REGULARIZATION (0.01), BENCH_CG_STEPS (3), BENCH_SEED (20240601),
# RECSYS_BENCH_DATA (where matrices and raw JSON lines go).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="${RECSYS_BENCH_VENV:-$HOME/.cache/recsys-ci/venv-bench}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
data="${RECSYS_BENCH_DATA:-$HOME/.cache/recsys-ci/bench-data}"
threads="${BENCH_THREADS:-2}"
alpha="${BENCH_ALPHA:-1}"
factors="${BENCH_FACTORS:-64}"
planted_factors="${BENCH_PLANTED_FACTORS:-32}"
iterations="${BENCH_ITERATIONS:-15}"
reg="${BENCH_REGULARIZATION:-0.01}"
cg="${BENCH_CG_STEPS:-3}"
seed="${BENCH_SEED:-20240601}"

log() { printf '[bench] %s\n' "$*" >&2; }

# Python without the OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE overrides some machines
# here set for old OpenBLAS builds: they slow the current wheels' kernels. Only
# these commands lose them; the kernel actually used is reported by threadpoolctl.
py() { env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$venv/bin/python" "$@"; }

# 1. venv
if [ ! -x "$venv/bin/python" ]; then
    log "creating venv $venv"
    python3 -m venv "$venv"
fi
log "pip install implicit==0.7.3 numpy scipy threadpoolctl"
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
    implicit==0.7.3 numpy scipy threadpoolctl

# 2. our side, built once
log "cargo build --release --example als_bench (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
(cd "$root" && cargo build --release --example als_bench)
bin="$CARGO_TARGET_DIR/release/examples/als_bench"

# 3. data (seeded: the same files every run)
mkdir -p "$data/out"
py "$here/make_matrix.py" random "$data/random" --seed "$seed" >&2
py "$here/make_matrix.py" planted "$data/planted" --seed "$seed" >&2

# Other work on a 2-core machine skews every number below; say so.
cpu_busy() { # percent of all cores busy over one second
    local a b
    read -r -a a < /proc/stat
    sleep 1
    read -r -a b < /proc/stat
    local total=0 i
    for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
    local idle=$((b[4] + b[5] - a[4] - a[5]))
    echo $((100 * (total - idle) / (total > 0 ? total : 1)))
}
busy="$(cpu_busy)"
read -r load1 _ < /proc/loadavg
log "before timing: ${busy}% CPU busy over 1 s, load average $load1 (OPENBLAS_CORETYPE here: ${OPENBLAS_CORETYPE:-unset})"
if [ "$busy" -gt 10 ]; then
    log "WARNING: other processes are using the CPU; the timings below are skewed"
fi

# CPU used by *other* processes during each timed phase: all cores' busy time
# (/proc/stat) minus what this script's children used (/proc/$$/stat cutime +
# cstime, which counts every waited-for descendant). Both are in USER_HZ ticks.
foreign="$data/out/foreign_cpu.tsv"
printf 'phase\twall_seconds\tother_core_seconds\n' > "$foreign"
ticks_busy() { local a; read -r -a a < /proc/stat; echo $((a[1] + a[2] + a[3] + a[6] + a[7])); }
ticks_children() { local f; read -r -a f < "/proc/$$/stat"; echo $((f[15] + f[16])); }
hz="$(getconf CLK_TCK)"
phase() { # name command...
    local name="$1" b0 c0 t0 b1 c1 t1
    shift
    b0="$(ticks_busy)"; c0="$(ticks_children)"; t0="$(date +%s.%N)"
    "$@"
    b1="$(ticks_busy)"; c1="$(ticks_children)"; t1="$(date +%s.%N)"
    local other=$(( (b1 - b0) - (c1 - c0) ))
    awk -v n="$name" -v t0="$t0" -v t1="$t1" -v o="$other" -v hz="$hz" \
        'BEGIN { o = o / hz; if (o < 0) o = 0; printf "%s\t%.1f\t%.1f\n", n, t1 - t0, o }' >> "$foreign"
    log "$(tail -n 1 "$foreign" | awk -F'\t' '{ printf "%s: %.1f s wall, other processes used %.1f core-seconds", $1, $2, $3 }')"
}

ours() { # matrix-folder factors out.jsonl [extra args]
    local m="$1" f="$2" out="$3"
    shift 3
    RAYON_NUM_THREADS="$threads" "$bin" \
        --rows "$m/rows.npy" --cols "$m/cols.npy" --data "$m/data.npy" --shape "$m/shape.npy" \
        --factors "$f" --iterations "$iterations" --regularization "$reg" --alpha "$alpha" \
        --cg-steps "$cg" "$@" | tee "$out" >&2
}
theirs() { # matrix-folder factors out.jsonl [extra args]
    local m="$1" f="$2" out="$3"
    shift 3
    py "$here/als_implicit.py" train --matrix "$m" --factors "$f" --iterations "$iterations" \
        --regularization "$reg" --alpha "$alpha" --cg-steps "$cg" --threads "$threads" "$@" \
        | tee "$out" >&2
}

# 4. timing on the random matrix
log "random matrix: ours"
phase random-ours ours "$data/random" "$factors" "$data/out/random_ours.jsonl" \
    --save-factors "$data/out/random_ours_factors"
log "random matrix: implicit"
phase random-implicit theirs "$data/random" "$factors" "$data/out/random_implicit.jsonl" \
    --rust-factors "$data/out/random_ours_factors"

# 5. quality on the planted matrix. On both matrices implicit's side also scores
#    our saved factors with its numpy loss (and recall), so both are measured by
#    one piece of code besides each library's own.
log "planted matrix: ours"
phase planted-ours ours "$data/planted" "$planted_factors" "$data/out/planted_ours.jsonl" \
    --test "$data/planted/test.npy" --save-factors "$data/out/planted_ours_factors"
log "planted matrix: implicit"
phase planted-implicit theirs "$data/planted" "$planted_factors" "$data/out/planted_implicit.jsonl" \
    --test --rust-factors "$data/out/planted_ours_factors"

read -r load1 _ < /proc/loadavg
log "after timing: load average $load1 (ours and implicit add 2 while they run); raw JSON lines in $data/out"

# 6. summary; its last line is `speedup X`
echo "ALS: ours (recsys examples/als_bench) vs implicit 0.7.3 CPU CG;" \
    "alpha=$alpha (c = 1 + alpha*w), regularization=$reg, cg_steps=$cg," \
    "iterations=$iterations, factors=$factors (random) / $planted_factors (planted), threads=$threads"
py "$here/als_implicit.py" summary \
    --random-ours "$data/out/random_ours.jsonl" --random-implicit "$data/out/random_implicit.jsonl" \
    --planted-ours "$data/out/planted_ours.jsonl" --planted-implicit "$data/out/planted_implicit.jsonl" \
    --foreign-cpu "$foreign"
