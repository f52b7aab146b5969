#!/usr/bin/env bash
# PostgreSQL on 127.0.0.1:5432 (the `recsys pg` tests): trust auth, database `test`.
#
# The machines come with the Debian postgresql package and one cluster in
# /etc/postgresql/<version>/main; it usually runs already. If it does not
# answer, start that cluster (the newest version if there are several) and wait
# until it accepts connections. Nothing is installed, so RECSYS_CI_CACHE is
# not used here.
set -euo pipefail
host=127.0.0.1
port=5432
if pg_isready -h "$host" -p "$port" -q; then
    echo "postgres: already answering on $host:$port"
else
    version="$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)"
    if [ -z "$version" ]; then
        echo "postgres: no cluster under /etc/postgresql; install the postgresql package" >&2
        exit 1
    fi
    pg_ctlcluster --skip-systemctl-redirect "$version" main start
    ready=false
    for _ in $(seq 150); do
        if pg_isready -h "$host" -p "$port" -q; then ready=true; break; fi
        sleep 0.2
    done
    if ! $ready; then
        echo "postgres: cluster $version/main did not answer on $host:$port within 30 s;" \
             "see /var/log/postgresql/postgresql-$version-main.log" >&2
        exit 1
    fi
    echo "postgres: started cluster $version/main on $host:$port"
fi
# The tests use database `test`; make it if a fresh cluster lacks it.
if ! psql -h "$host" -p "$port" -U postgres -d test -tAc 'SELECT 1' >/dev/null 2>&1; then
    createdb -h "$host" -p "$port" -U postgres test \
        || { echo "postgres: cannot reach or create database test as user postgres" >&2; exit 1; }
    echo "postgres: created database test"
fi
