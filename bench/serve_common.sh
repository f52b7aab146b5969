# Sourced (not run) by bench/serve_wrk.sh and bench/soak.sh: the full-size
# data, its bundle and the traffic files, made once in the work directory and
# reused; starting a service and waiting until it is ready; the new shoppers'
# first views; a process's RSS.
#
# Data: the synthetic full-size dataset (1,407,580 visitors, 235,061 items,
# 2,756,101 events, seed 7; the same files as bench/e2e_full_size.sh), trained
# with the repository's config.toml (popular, history, als, two_stage).
# Traffic: 200,000 shopper ids, 90% drawn uniformly from all shoppers training
# knew and 10% new shoppers, each of whom has 1-5 views posted to the service
# before it is measured (items drawn from the event log, so popular items come
# up more often).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recsys-ci/target}"
work="${RECSYS_BENCH_DIR:-$HOME/.cache/recsys-ci/bench-data}/full-x1"
bin="$CARGO_TARGET_DIR/release/recsys"
port="${PORT:-18000}"
url="http://127.0.0.1:$port"
export USERS_LUA="$work/users.lua" ITEMS_LUA="$work/items.lua"
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

# Build, then make whatever is missing of data, bundle and traffic; sets
# $bundle to the newest bundle.
prepare() {
  cargo build --release --quiet
  mkdir -p "$work"
  if [ ! -f "$work/events.csv" ]; then
    "$bin" generate --seed 7 --out "$work" >/dev/null
  fi
  # The repository's config with the data and artifacts of the benchmark.
  sed -e 's#^events = .*#events = "events.csv"#' \
      -e 's#^item_features = .*#item_features = "item_features.csv"#' \
      -e 's#^dir = "artifacts"#dir = "serve-artifacts"#' \
      -e 's#^port = .*#port = '"$port"'#' \
      config.toml > "$work/serve-config.toml"
  if [ -z "$(ls -A "$work/serve-artifacts" 2>/dev/null)" ]; then
    /usr/bin/time -f "train: %e s wall, %M KB peak RSS" "$bin" train --config "$work/serve-config.toml"
  fi
  bundle="$(ls -d "$work"/serve-artifacts/*/ | tail -1)"
  python3 - "$bundle" <<'PY'
import json, sys
m = json.load(open(sys.argv[1] + "/manifest.json"))
d = m["data"]
print(f"bundle {m['run_id']}: {', '.join(m['models'])} on {d['users']} users x {d['items']} items")
PY
  [ -f "$work/new.txt" ] && return
  # Traffic: known ids from the training events, unknown ids beyond every visitor.
  python3 - "$work" <<'PY'
import csv, random, sys
work = sys.argv[1]
random.seed(11)
visitors, items = set(), []
with open(f"{work}/events.csv") as f:
    r = csv.reader(f); next(r)
    for row in r:
        if int(row[0]) < 1441065600000:  # 2015-09-01, the cutoff
            visitors.add(int(row[1]))
        items.append(int(row[3]))
visitors = sorted(visitors)
known = random.sample(visitors, 180000)
new = [10**9 + i for i in range(20000)]
users = known + new
random.shuffle(users)
picked = random.sample(items, 50000)
for name, ids in [("users", users), ("items", picked)]:
    with open(f"{work}/{name}.lua", "w") as f:
        f.write("return {" + ",".join(map(str, ids)) + "}\n")
with open(f"{work}/new.txt", "w") as f:
    for u in new:
        views = [random.choice(picked) for _ in range(random.randint(1, 5))]
        f.write(f"{u} {' '.join(map(str, views))}\n")
print(f"traffic: {len(known)} known shoppers (of {len(visitors)}), {len(new)} new ones")
PY
}

# Start `recsys serve --config $1` (stderr to $2) and wait until it is ready;
# sets $server to its pid.
start_server() {
  "$bin" serve --config "$1" 2> "$2" &
  server=$!
  for _ in $(seq 900); do
    curl -fs "$url/ready" >/dev/null 2>&1 && return
    kill -0 "$server" 2>/dev/null || { cat "$2" >&2; echo "recsys serve exited, log above" >&2; exit 1; }
    sleep 0.2
  done
  echo "recsys serve was not ready after 180 s (log: $2)" >&2
  exit 1
}

# Resident memory of the service, in MB.
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' "/proc/$server/status"; }

# 1-5 views for each new shopper; prints how many when given "verbose".
post_new_events() {
python3 - "$work/new.txt" "$port" "${1:-}" <<'PY'
import http.client, json, sys
conn = http.client.HTTPConnection("127.0.0.1", int(sys.argv[2]))
n = users = 0
for line in open(sys.argv[1]):
    user, *items = map(int, line.split())
    users += 1
    for item in items:
        conn.request("POST", "/events", json.dumps({"user_id": user, "item_id": item, "event": "view"}),
                     {"Content-Type": "application/json"})
        r = conn.getresponse(); r.read()
        assert r.status == 202, r.status
        n += 1
if sys.argv[3] == "verbose":
    print(f"posted {n} events for {users} new shoppers")
PY
}
