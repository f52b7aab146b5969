#!/usr/bin/env bash
# `recsys pg load` beside `psql \copy … to csv` on the same events table.
#
# Makes 1M- and 10M-row events tables (`recsys generate` to Parquet, then
# `recsys pg push`), then for each times, in one run and under `/usr/bin/time -v`,
#   recsys pg load --table-name T --save-dir DIR           (binary COPY → Parquet)
#   psql -c "\copy (select * from T) to 'DIR/T.csv' csv"    (text COPY → CSV)
# and prints wall time, rows/s, peak RSS and the time ratio. Peak RSS at 1M
# and at 10M rows shows whether memory stays flat in the table's size.
# Both readers run after a warm-up scan, so both find the table in the cache.
# The tables (schema recsys_bench) and files are removed at the end.
#
# Env: RECSYS_BIN (default $CARGO_TARGET_DIR/release/recsys), RECSYS_BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/test), RECSYS_BENCH_ROWS (default "1000000 10000000").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
bin="${RECSYS_BIN:-$CARGO_TARGET_DIR/release/recsys}"
url="${RECSYS_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
sizes="${RECSYS_BENCH_ROWS:-1000000 10000000}"
[ -x "$bin" ] || (cd "$here/.." && cargo build --release --quiet)
work="$(mktemp -d "${TMPDIR:-/tmp}/recsys-pg-bench.XXXXXX")"
cleanup() {
    psql "$url" -q -c 'DROP SCHEMA IF EXISTS recsys_bench CASCADE' >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
psql "$url" -q -c 'DROP SCHEMA IF EXISTS recsys_bench CASCADE; CREATE SCHEMA recsys_bench' >/dev/null

# "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.5" → seconds.
wall_seconds() {
    grep 'Elapsed (wall clock)' "$1" | awk '{print $NF}' |
        awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }'
}
peak_mb() { grep 'Maximum resident set size' "$1" | awk '{printf "%.0f", $NF / 1024}'; }

echo "recsys: $("$bin" --version)   psql: $(psql --version)   server: $(psql "$url" -tAc 'show server_version')"
printf '%-10s %-14s %9s %12s %13s %12s\n' rows tool "wall s" "rows/s" "peak RSS MB" "output MB"
for rows in $sizes; do
    table="recsys_bench.events_$rows"
    gen="$work/gen_$rows"
    "$bin" generate --users $((rows / 20 + 1000)) --items $((rows / 100 + 1000)) --events "$rows" \
        --seed 7 --out "$gen" --format parquet 2>/dev/null
    "$bin" pg push --file "$gen/events.parquet" --table-name "$table" --database-url "$url" >/dev/null
    rm -rf "$gen"
    actual="$(psql "$url" -tAc "select count(*) from $table")"   # also the warm-up scan
    out="$work/out_$rows"
    mkdir -p "$out"

    /usr/bin/time -v "$bin" pg load --table-name "$table" --save-dir "$out" --database-url "$url" \
        >/dev/null 2>"$work/recsys.time"
    /usr/bin/time -v psql "$url" -q -c "\\copy (select * from $table) to '$out/$table.csv' csv" \
        2>"$work/psql.time"

    recsys_s="$(wall_seconds "$work/recsys.time")"
    psql_s="$(wall_seconds "$work/psql.time")"
    for tool in recsys psql; do
        seconds="$(wall_seconds "$work/$tool.time")"
        file="$out/$table.parquet"; [ "$tool" = psql ] && file="$out/$table.csv"
        printf '%-10s %-14s %9.2f %12.0f %13s %12.0f\n' "$actual" \
            "$([ "$tool" = recsys ] && echo 'recsys pg load' || echo 'psql \copy')" \
            "$seconds" "$(echo "$actual / $seconds" | bc -l)" "$(peak_mb "$work/$tool.time")" \
            "$(echo "$(stat -c %s "$file") / 1048576" | bc -l)"
    done
    printf '%-10s recsys/psql time ratio: %.2f\n' "$actual" "$(echo "$recsys_s / $psql_s" | bc -l)"
    rm -rf "$out"
    psql "$url" -q -c "DROP TABLE $table" >/dev/null
done
