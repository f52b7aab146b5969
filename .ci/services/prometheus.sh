#!/usr/bin/env bash
# Prometheus (Debian's package): the serve tests start their own server from it.
set -euo pipefail
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
    echo "prometheus: $(prometheus --version 2>&1 | head -1)"
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends prometheus >/dev/null
# The package starts a system service on :9090 where systemd runs; the tests
# need only the binaries.
echo "prometheus: installed $(prometheus --version 2>&1 | head -1)"
