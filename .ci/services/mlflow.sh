#!/usr/bin/env bash
# MLflow (PyPI `mlflow`, pinned) for the experiment-tracking tests.
#
# Only installs: the tests start their own `mlflow server` on a free loopback
# port with a throw-away sqlite store and artifact directory, so runs never mix
# between tests or CI runs. The venv lives in RECSYS_CI_CACHE so a second run
# reuses it; the tests find the binary at $RECSYS_CI_CACHE/venv-mlflow/bin/mlflow
# (or wherever RECSYS_TEST_MLFLOW points).
set -euo pipefail
cache="${RECSYS_CI_CACHE:-$HOME/.cache/recsys-ci}"
version=3.17.2
venv="$cache/venv-mlflow"

installed() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null
}

if [ "$(installed || true)" = "$version" ]; then
    echo "mlflow: $version already installed in $venv"
    exit 0
fi
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "mlflow==$version"
echo "mlflow: installed $(installed) in $venv"
