#!/usr/bin/env bash
# `recsys s3 push` beside `aws s3 cp` of the same 1 GB file to the same S3 server,
# in one run: MB/s of each (1 MB = 10^6 bytes) and the ratio.
#
# Needs the server of the tests (`.ci/services/up` starts SeaweedFS on
# 127.0.0.1:8333 with the keys of .ci/seaweedfs/identities.json), the `aws` CLI
# and a release build (`cargo build --release`). Both tools get the same keys,
# endpoint and a fresh bucket, which is removed at the end.
#
#   bench/s3_push_vs_aws.sh            # 1024 MB, one round
#   SIZE_MB=256 ROUNDS=3 bench/s3_push_vs_aws.sh
#
# Rounds alternate which tool goes first, so neither always meets a warmer server.
set -euo pipefail
cd "$(dirname "$0")/.."

size_mb="${SIZE_MB:-1024}"
rounds="${ROUNDS:-1}"
endpoint="${RECSYS_TEST_S3_ENDPOINT:-http://127.0.0.1:8333}"
target="${CARGO_TARGET_DIR:-${RECSYS_CI_CACHE:-$HOME/.cache/recsys-ci}/target}"
recsys="${RECSYS_BIN:-$target/release/recsys}"
[ -x "$recsys" ] || { echo "no release binary at $recsys; run cargo build --release" >&2; exit 1; }
command -v aws >/dev/null || { echo "the aws CLI is not on PATH" >&2; exit 1; }
curl -s -o /dev/null --max-time 2 "$endpoint/" ||
    { echo "no S3 server answers at $endpoint; run .ci/services/up" >&2; exit 1; }

read -r access secret < <(python3 -c '
import json
c = json.load(open(".ci/seaweedfs/identities.json"))["identities"][0]["credentials"][0]
print(c["accessKey"], c["secretKey"])')
export AWS_ACCESS_KEY_ID="$access" AWS_SECRET_ACCESS_KEY="$secret"
export AWS_ENDPOINT_URL="$endpoint" AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
unset AWS_PROFILE AWS_SESSION_TOKEN
bucket="recsys-bench-$$-$(date +%s)"
export S3_BUCKET_NAME="$bucket"

work="$(mktemp -d)"
cleanup() {
    aws --endpoint-url "$endpoint" s3 rb --force "s3://$bucket" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT

file="$work/big.bin"
head -c "$((size_mb * 1000 * 1000))" /dev/urandom >"$file"
bytes=$(stat -c %s "$file")
aws --endpoint-url "$endpoint" s3 mb "s3://$bucket" >/dev/null

echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "server: $endpoint ($("${RECSYS_CI_CACHE:-$HOME/.cache/recsys-ci}/venv-seaweedfs/bin/weed" version 2>/dev/null | head -1 || echo unknown))"
echo "recsys: $recsys; aws: $(aws --version 2>&1)"
echo "file: $bytes bytes; rounds: $rounds"

now() { date +%s.%N; }
size_of() { aws --endpoint-url "$endpoint" s3api head-object --bucket "$bucket" --key "$1" --query ContentLength --output text; }
run_recsys() {
    local start end
    start=$(now)
    "$recsys" s3 push --local-file-path "$file" --s3-file-path "recsys/big.bin" >/dev/null
    end=$(now)
    [ "$(size_of recsys/big.bin)" = "$bytes" ] || { echo "recsys upload has the wrong size" >&2; exit 1; }
    echo "$end - $start" | bc -l
}
run_aws() {
    local start end
    start=$(now)
    aws --endpoint-url "$endpoint" s3 cp --only-show-errors "$file" "s3://$bucket/aws/big.bin"
    end=$(now)
    [ "$(size_of aws/big.bin)" = "$bytes" ] || { echo "aws upload has the wrong size" >&2; exit 1; }
    echo "$end - $start" | bc -l
}
rate() { echo "scale=1; $bytes / 1000000 / $1" | bc -l; }

for round in $(seq "$rounds"); do
    if [ $((round % 2)) = 1 ]; then
        t_recsys=$(run_recsys); t_aws=$(run_aws)
    else
        t_aws=$(run_aws); t_recsys=$(run_recsys)
    fi
    printf 'round %d: recsys s3 push %.2f s = %s MB/s; aws s3 cp %.2f s = %s MB/s; recsys/aws speed %.2fx\n' \
        "$round" "$t_recsys" "$(rate "$t_recsys")" "$t_aws" "$(rate "$t_aws")" \
        "$(echo "$t_aws / $t_recsys" | bc -l)"
done
