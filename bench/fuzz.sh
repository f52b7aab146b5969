#!/usr/bin/env bash
# Fuzzing (issue 17): every cargo-fuzz target in fuzz/ run for MINUTES (10) each
# under libFuzzer with AddressSanitizer, JOBS (1) at a time. Prints a table per
# target: executions (libFuzzer's stat::number_of_executed_units), executions per
# second, findings (crash-, oom-, timeout- and leak- files it wrote) and minutes;
# exits non-zero if any target found something or failed to run.
#
# Targets: events_csv, events_parquet, item_features, item_properties, config_toml, bundle_load,
# serve_requests (each file in fuzz/fuzz_targets/ says what it checks). Inputs that
# found new coverage accumulate in fuzz/corpus/TARGET (not committed; the small
# committed seeds are fuzz/seeds/TARGET), findings land in fuzz/artifacts/TARGET,
# each run's libFuzzer log in fuzz/logs/TARGET.log. A finding is a panic, an abort,
# ASan error, an allocation over 2 GB (-rss_limit_mb / malloc limit), or one input
# running over 10 s (-timeout); an Err from the code under test is not.
#
# Needs cargo-fuzz (`cargo install cargo-fuzz`); the stable toolchain is used with
# RUSTC_BOOTSTRAP=1 for the sanitizer flags. The build goes to FUZZ_TARGET_DIR
# (~/.cache/recsys-ci/fuzz-target): it rebuilds every dependency with coverage
# instrumentation, about an hour on 2 cores the first time.
#
#   bench/fuzz.sh                                   # 10 minutes per target, one at a time
#   MINUTES=1 JOBS=2 bench/fuzz.sh                  # a quick pass, two targets at once
#   TARGETS="config_toml serve_requests" bench/fuzz.sh
#
# Reproducing a finding (prints the panic and its backtrace, runs the input once):
#
#   ~/.cache/recsys-ci/fuzz-target/x86_64-unknown-linux-gnu/release/TARGET fuzz/artifacts/TARGET/crash-…
#   (or: cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run -O -a --target-dir ~/.cache/recsys-ci/fuzz-target TARGET artifacts/TARGET/crash-…)
#
# and minimising it before it becomes a regression test:
#
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz tmin -O -a --target-dir ~/.cache/recsys-ci/fuzz-target TARGET artifacts/TARGET/crash-…
set -euo pipefail
cd "$(dirname "$0")/.."
minutes="${MINUTES:-10}"
jobs="${JOBS:-1}"
targets="${TARGETS:-events_csv events_parquet item_features item_properties config_toml bundle_load serve_requests}"
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/recsys-ci/fuzz-target}"
bin_dir="$target_dir/x86_64-unknown-linux-gnu/release"

(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz build -O -a --target-dir "$target_dir")
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg); recsys $(git rev-parse --short HEAD); $minutes min per target, $jobs at a time"

results="$(mktemp -d)"
trap 'rm -rf "$results"' EXIT
# The targets' scratch files (one directory per process) go with the results.
export TMPDIR="$results"

# Run one target; writes "executions findings seconds status" to $results/TARGET.
fuzz_one() {
  local target="$1"
  mkdir -p "fuzz/corpus/$target" "fuzz/artifacts/$target" fuzz/logs
  local log="fuzz/logs/$target.log" marker="$results/$target.start"
  touch "$marker"
  local start status=ok
  start=$(date +%s)
  # detect_odr_violation=0: as cargo fuzz sets it (Rust generics trip it falsely).
  # -detect_leaks=0: memory kept by global pools (rayon, polars) is not a leak
  # of an input, and leaks are not among what the issue asks to find.
  ASAN_OPTIONS="detect_odr_violation=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    "$bin_dir/$target" \
    -artifact_prefix="fuzz/artifacts/$target/" \
    -max_total_time=$((minutes * 60)) \
    -rss_limit_mb=2048 -timeout=10 -detect_leaks=0 -print_final_stats=1 \
    "fuzz/corpus/$target" "fuzz/seeds/$target" >"$log" 2>&1 || status=failed
  local seconds=$(( $(date +%s) - start ))
  local executions
  executions=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*$' || true)
  if [[ -z "$executions" ]]; then
    executions=$(grep -oE '^#[0-9]+' "$log" | tail -1 | tr -d '#' || true)
  fi
  local findings
  findings=$(find "fuzz/artifacts/$target" -newer "$marker" -type f \
    \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  echo "${executions:-0} $findings $seconds $status" >"$results/$target"
}

running=0
for target in $targets; do
  if (( running >= jobs )); then
    wait -n
    running=$((running - 1))
  fi
  echo "fuzzing $target for $minutes min (log: fuzz/logs/$target.log)"
  fuzz_one "$target" &
  running=$((running + 1))
done
wait

printf '\n| %-16s | %12s | %9s | %8s | %7s |\n' target executions "execs/s" findings minutes
printf '| %-16s | %12s | %9s | %8s | %7s |\n' --- ---: ---: ---: ---:
bad=0
for target in $targets; do
  read -r executions findings seconds status <"$results/$target"
  rate=$(( seconds > 0 ? executions / seconds : 0 ))
  printf '| %-16s | %12s | %9s | %8s | %7s |\n' "$target" "$executions" "$rate" "$findings" \
    "$(awk -v s="$seconds" 'BEGIN {printf "%.1f", s / 60}')"
  if (( findings > 0 )) || [[ "$status" != ok ]]; then
    bad=1
    echo "  $target: $status, $findings new finding(s) in fuzz/artifacts/$target/, see fuzz/logs/$target.log" >&2
  fi
done
exit "$bad"
