#!/usr/bin/env bash
# Redis on 127.0.0.1:6379 (the serve event store's tests).
set -euo pipefail
if redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
    echo "redis: already answering on 127.0.0.1:6379"
    exit 0
fi
mkdir -p /var/lib/redis /var/log/redis
redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
for _ in $(seq 50); do
    redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG && { echo "redis: started"; exit 0; }
    sleep 0.2
done
echo "redis: did not answer on 127.0.0.1:6379; see /var/log/redis/ci.log" >&2
exit 1
