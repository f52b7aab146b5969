#!/usr/bin/env bash
# Apache Airflow (PyPI `apache-airflow`, pinned) for the pipeline tests (tests/airflow.rs).
#
# Only installs: each test makes its own AIRFLOW_HOME with a sqlite metadata DB
# and runs `airflow dags test`, which executes a whole DAG run in one process,
# so no scheduler or API server is left running. The venv lives in
# RECSYS_CI_CACHE so a second run reuses it; the tests find the executable at
# $RECSYS_CI_CACHE/venv-airflow/bin/airflow (or wherever RECSYS_TEST_AIRFLOW
# points).
#
# Dependencies are pinned, so that a new upstream release cannot break CI
# unnoticed: by Airflow's constraints file for this version and Python when it
# can be downloaded, else by pipelines/airflow/constraints-<version>-py<X.Y>.txt
# (the set the tests passed with, frozen from such an install), else not at all.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${RECSYS_CI_CACHE:-$HOME/.cache/recsys-ci}"
version=3.1.8
venv="$cache/venv-airflow"

installed() {
    "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("apache-airflow"))' 2>/dev/null
}

if [ "$(installed || true)" = "$version" ]; then
    echo "airflow: $version already installed in $venv"
    exit 0
fi

started=$SECONDS
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
python="$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
url="https://raw.githubusercontent.com/apache/airflow/constraints-$version/constraints-$python.txt"
downloaded="$cache/airflow-constraints-$version-py$python.txt"
frozen="$repo/pipelines/airflow/constraints-$version-py$python.txt"
if curl -fsSL --max-time 20 -o "$downloaded.tmp" "$url" 2>/dev/null; then
    mv "$downloaded.tmp" "$downloaded"
    constraints=("--constraint" "$downloaded")
    pinned="Airflow's constraints file"
elif [ -f "$frozen" ]; then
    rm -f "$downloaded.tmp"
    constraints=("--constraint" "$frozen")
    pinned="${frozen#"$repo/"} (Airflow's constraints file was not reachable)"
else
    rm -f "$downloaded.tmp"
    constraints=()
    pinned="no constraints (none reachable or frozen for Python $python)"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "apache-airflow==$version" "${constraints[@]}"
echo "airflow: installed $(installed) in $venv with $pinned in $((SECONDS - started)) s"
