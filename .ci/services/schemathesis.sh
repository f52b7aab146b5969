#!/usr/bin/env bash
# Schemathesis (PyPI `schemathesis`, pinned) for the API fuzzing test.
#
# Only installs: `tests/api_fuzz.rs` starts its own `recsys serve` and runs
# `st run` against the service's /openapi.json. The venv lives in
# RECSYS_CI_CACHE so a second run reuses it; the test finds the binary at
# $RECSYS_CI_CACHE/venv-schemathesis/bin/st (or wherever RECSYS_TEST_ST points).
set -euo pipefail
cache="${RECSYS_CI_CACHE:-$HOME/.cache/recsys-ci}"
version=4.32.5
venv="$cache/venv-schemathesis"

installed() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("schemathesis"))' 2>/dev/null
}

if [ "$(installed || true)" = "$version" ]; then
    echo "schemathesis: $version already installed in $venv"
    exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$version"
echo "schemathesis: installed $(installed) in $venv"
