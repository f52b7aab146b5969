#!/usr/bin/env bash
# `recsys pg load` beside `psql \copy … to csv` on the same events table.
#
# Makes 1M-, 10M- and 20M-row events tables (`recsys generate` to Parquet, then
# `recsys pg push`), then for each times, under `/usr/bin/time -v`,
#   recsys pg load --table-name T --save-dir DIR            (binary COPY → Parquet, zstd)
#   psql -c "\copy (select * from T) to 'DIR/T.csv' csv"     (text COPY → CSV)
# alternating, REPEAT times each (default 3), after a warm-up scan so both find
# the table in the cache. Prints the median wall time, rows/s at the median,
# the largest peak RSS, the output size and the time ratio. Peak RSS at 1M, 10M
# and 20M rows shows whether memory stays flat in the table's size. Both
# clients connect the same way (sslmode=prefer: TLS when the server offers it).
# The tables (schema recsys_bench) and files are removed at the end.
#
# Env: RECSYS_BIN (default $CARGO_TARGET_DIR/release/recsys), RECSYS_BENCH_DATABASE_URL
# (default postgres://postgres@127.0.0.1:5432/test), RECSYS_BENCH_ROWS (default
# "1000000 10000000 20000000"), REPEAT (default 3).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
bin="${RECSYS_BIN:-$CARGO_TARGET_DIR/release/recsys}"
url="${RECSYS_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
sizes="${RECSYS_BENCH_ROWS:-1000000 10000000 20000000}"
repeat="${REPEAT:-3}"
[ -x "$bin" ] || (cd "$here/.." && cargo build --release --quiet)
work="$(mktemp -d "${TMPDIR:-/tmp}/recsys-pg-bench.XXXXXX")"
cleanup() {
    PGOPTIONS='-c client_min_messages=warning' psql "$url" -q -c 'DROP SCHEMA IF EXISTS recsys_bench CASCADE' >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
PGOPTIONS='-c client_min_messages=warning' psql "$url" -q -c 'DROP SCHEMA IF EXISTS recsys_bench CASCADE' \
    -c 'CREATE SCHEMA recsys_bench' >/dev/null

# "Elapsed (wall clock) time (h:mm:ss or m:ss): 1:02.5" → seconds.
wall_seconds() {
    grep 'Elapsed (wall clock)' "$1" | awk '{print $NF}' |
        awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }'
}
peak_kb() { grep 'Maximum resident set size' "$1" | awk '{print $NF}'; }
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "recsys $("$bin" --version | awk '{print $2}'), $(psql --version), server $(psql "$url" -tAc 'show server_version'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %-15s %9s %12s %13s %11s\n' rows tool "wall s" "rows/s" "peak RSS MB" "output MB"
for rows in $sizes; do
    table="recsys_bench.events_$rows"
    gen="$work/gen_$rows"
    "$bin" generate --users $((rows / 20 + 1000)) --items $((rows / 100 + 1000)) --events "$rows" \
        --seed 7 --out "$gen" --format parquet >/dev/null 2>"$work/generate.log" ||
        { cat "$work/generate.log" >&2; exit 1; }
    "$bin" pg push --file "$gen/events.parquet" --table-name "$table" --database-url "$url" >/dev/null
    rm -rf "$gen"
    actual="$(psql "$url" -tAc "select count(*) from $table")" # also the warm-up scan
    out="$work/out_$rows"
    mkdir -p "$out"
    for rep in $(seq "$repeat"); do
        rm -f "$out"/*
        /usr/bin/time -v "$bin" pg load --table-name "$table" --save-dir "$out" --database-url "$url" \
            >/dev/null 2>"$work/recsys.$rep.time"
        /usr/bin/time -v psql "$url" -q -c "\\copy (select * from $table) to '$out/$table.csv' csv" \
            2>"$work/psql.$rep.time"
    done
    for tool in recsys psql; do
        seconds="$(for rep in $(seq "$repeat"); do wall_seconds "$work/$tool.$rep.time"; done | median)"
        peak="$(for rep in $(seq "$repeat"); do peak_kb "$work/$tool.$rep.time"; done | sort -g | tail -n 1)"
        file="$out/$table.parquet"; label='recsys pg load'
        if [ "$tool" = psql ]; then file="$out/$table.csv"; label='psql \copy csv'; fi
        printf '%-10s %-15s %9.2f %12.0f %13.0f %11.0f\n' "$actual" "$label" "$seconds" \
            "$(echo "$actual / $seconds" | bc -l)" "$(echo "$peak / 1024" | bc -l)" \
            "$(echo "$(stat -c %s "$file") / 1048576" | bc -l)"
        eval "${tool}_seconds=$seconds"
    done
    printf '%-10s recsys / psql wall time: %.2f (median of %d runs each)\n' "$actual" \
        "$(echo "$recsys_seconds / $psql_seconds" | bc -l)" "$repeat"
    rm -rf "$out"
    psql "$url" -q -c "DROP TABLE $table" >/dev/null
done
