#!/usr/bin/env bash
# vote_guard on Citus: what a vote costs on a worker against one node, and
# votes/s through the coordinator, through the workers and on one node.
#
#   bench/citus.sh         # about 4 minutes; as root it installs missing
#                          # packages, builds and installs vote_guard and
#                          # Citus (test/citus/build.sh), then runs as postgres
#
# Servers, all on this machine (Unix sockets, fsync, synchronous_commit and
# full_page_writes off, as in the test suite): a Citus cluster of one
# coordinator and two workers (test/citus/cluster.sh, default shard count)
# and one plain node without Citus.  Each gets 100 contests of 10 entries
# (vote_guard.distribute() on the cluster), one counter row per entry.
#
# 1. Instructions per cast_vote call (callgrind, bench/callgrind.sh's
#    method): CG_CALLS prepared calls in single-user mode, new voters, on the
#    contests whose shards are on worker 1, run on worker 1's data directory
#    (the fast paths opening the shards) and on the plain node's, each minus
#    a session of the same data directory with only the warm-up (one vote
#    per entry of those contests); for the whole statement and for
#    vote_guard's function alone (callgrind_annotate, callees included).
# 2. Latency of one client (psycopg, prepared, LAT_CALLS calls each, new
#    voters): the plain node; a worker voting in its own contests; a worker
#    voting in the other worker's contests (Citus sends the call there); the
#    coordinator.  The differences are the delegation and the network hop.
# 3. votes/s with BENCH_CLIENTS clients (pgbench -M prepared, BENCH_SECONDS
#    each), in BENCH_ROUNDS rounds, each round: the plain node, the
#    coordinator, both workers at once (half the clients on each, any
#    contest).  The machine may be shared: only the ratios within a round
#    mean something; their median is reported.
#
# Environment: PG_MAJOR (15), BENCH_PORT (55450; the cluster takes it to +2,
# the plain node +3), CG_CALLS (1500), LAT_CALLS (2000), BENCH_CLIENTS (8),
# BENCH_SECONDS (8), BENCH_ROUNDS (3), BENCH_PARTS (cg: the instructions
# only), CG_KEEP (a folder to copy the callgrind files to).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
export CG_CALLS=${CG_CALLS:-1500} LAT_CALLS=${LAT_CALLS:-2000} BENCH_CLIENTS=${BENCH_CLIENTS:-8}
export BENCH_SECONDS=${BENCH_SECONDS:-8} BENCH_ROUNDS=${BENCH_ROUNDS:-3}
export BENCH_PORT=${BENCH_PORT:-55450}

if [ "$(id -u)" = 0 ]; then
    "$src/test/install-deps.sh" valgrind python3-psycopg
    make -C "$src" -s all install
    "$src/test/citus/build.sh"
    exec runuser -u postgres -- env PG_CONFIG="$PG_CONFIG" PATH="$PATH" TMPDIR="${TMPDIR:-/tmp}" \
        CG_CALLS="$CG_CALLS" LAT_CALLS="$LAT_CALLS" BENCH_CLIENTS="$BENCH_CLIENTS" \
        BENCH_SECONDS="$BENCH_SECONDS" BENCH_ROUNDS="$BENCH_ROUNDS" BENCH_PORT="$BENCH_PORT" \
        BENCH_PARTS="${BENCH_PARTS:-all}" CG_KEEP="${CG_KEEP:-}" \
        "$src/bench/citus.sh"
fi

bindir=$("$PG_CONFIG" --bindir)
export PATH="$bindir:$PATH"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_citus_bench.XXXXXX")
port=$BENCH_PORT
single=$((port + 3))
cluster=$tmp/cluster
cleanup() {
    "$src/test/citus/cluster.sh" stop "$cluster" >/dev/null 2>&1 || true
    pg_ctl -D "$tmp/single" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

q() { local p=$1; shift; psql -X -q -v ON_ERROR_STOP=1 -h "$cluster" -p "$p" -d regression "$@"; }
qs() { psql -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$single" -d regression "$@"; }

echo "== machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GB", $2 / 1048576}' /proc/meminfo)," \
     "load $(cut -d' ' -f1-3 /proc/loadavg); PostgreSQL $(postgres -V | awk '{print $3}')," \
     "Citus $(ls "$("$PG_CONFIG" --sharedir)"/extension/citus--*.sql | sed -n 's/.*citus--\([0-9.-]*\)\.sql$/\1/p' | sort -V | tail -n 1)"

# the Citus cluster and the plain node
"$src/test/citus/cluster.sh" start "$cluster" "$port" >/dev/null
initdb -D "$tmp/single" -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$tmp/initdb.log" 2>&1 ||
    { cat "$tmp/initdb.log"; exit 1; }
cat >>"$tmp/single/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$tmp'
port = $single
max_connections = 150
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
pg_ctl -D "$tmp/single" -l "$tmp/single.log" -w start >/dev/null
psql -X -q -h "$tmp" -p "$single" -d postgres -c 'CREATE DATABASE regression'

contests="SELECT vote_guard.create_contest('c' || i) FROM generate_series(1, 100) i;
SELECT vote_guard.add_entry(c, e) FROM generate_series(1, 100) c, generate_series(1, 10) e;
INSERT INTO vote_guard.counters SELECT c, e, 0, 0 FROM generate_series(1, 100) c, generate_series(1, 10) e;"
qs -o /dev/null -c 'CREATE EXTENSION vote_guard' -c "$contests"
q "$port" -o /dev/null -c 'CREATE EXTENSION vote_guard' -c 'SELECT vote_guard.distribute()' -c "$contests"
# the contests on each worker
local_contests() {
    q "$port" -At -c "SELECT string_agg(c::text, ' ' ORDER BY c) FROM generate_series(1, 100) c
        JOIN pg_dist_placement p ON p.shardid = get_shard_id_for_distribution_column('vote_guard.contests', c)
        JOIN pg_dist_node n USING (groupid) WHERE n.nodeport = $1"
}
on_w1=$(local_contests $((port + 1)))
on_w2=$(local_contests $((port + 2)))
echo "   contests on worker 1: $(wc -w <<<"$on_w1"), on worker 2: $(wc -w <<<"$on_w2")"

# 1. instructions per call
calls() {   # contests...: CG_CALLS calls over them, new voters, a fixed sequence
    awk -v n="$CG_CALLS" -v list="$*" 'BEGIN {
        k = split(list, c, " "); srand(20261201)
        print "PREPARE cv(bigint, bigint, bigint) AS SELECT r.vote_count FROM vote_guard.cast_vote($1, $2, '"'"'0.0.0.0'"'"'::inet + $3, '"'"'u'"'"' || $3, '"'"'v'"'"' || $3 || '"'"'@example.com'"'"') r;"
        for (i = 0; i < n; i++)
            printf "EXECUTE cv(%d, %d, %d);\n", c[1 + int(rand() * k)], 1 + int(rand() * 10),
                   1 + int(rand() * 2147483646)
    }'
}
# a warm-up first: one vote per entry of every contest, so that what is
# counted is the steady state (a backend's first call for a contest reads
# the contest, its keys and, on a worker, where its shards are: about 1.1 M
# instructions per table on a worker, paid once per backend)
warmup() {   # voter base: one vote per entry of worker 1's contests, new voters
    awk -v list="$on_w1" -v base="$1" 'BEGIN { k = split(list, c, " ")
        for (i = 1; i <= k; i++) for (e = 1; e <= 10; e++) printf "EXECUTE cv(%d, %d, %d);\n", c[i], e, base + i * 10 + e }'
}
calls $on_w1 | awk 'NR == 1' >"$tmp/empty.sql"
cp "$tmp/empty.sql" "$tmp/calls.sql"
warmup 2100000000 >>"$tmp/empty.sql"
warmup 2000000000 >>"$tmp/calls.sql"
calls $on_w1 | awk 'NR > 1' >>"$tmp/calls.sql"
nodes=(coordinator worker1 worker2)
for n in "${nodes[@]}"; do pg_ctl -D "$cluster/$n" -w stop >/dev/null; done
pg_ctl -D "$tmp/single" -w stop >/dev/null
cg() {   # data directory, script, name: instructions of the session (callgrind file kept)
    (cd "$tmp" && valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$3.out" \
        postgres --single -D "$1" -c synchronous_commit=off regression <"$2" >"$tmp/cg.log" 2>&1)
    if grep -q ERROR "$tmp/cg.log"; then
        echo "errors in single-user mode ($1):" >&2; grep -m 5 ERROR "$tmp/cg.log" >&2; exit 1
    fi
    grep -m1 '^summary:' "$tmp/cg.$3.out" | awk '{print $2}'
}
incl() {   # callgrind file, function: its instructions, callees included
    callgrind_annotate --inclusive=yes --threshold=100 "$1" 2>/dev/null |
        awk -v f=":$2 " 'index($0, f) { gsub(",", "", $1); print $1; exit }'
}
inclusive() {   # name, function: its instructions per counted call
    echo $(( ($(incl "$tmp/cg.$1.out" "$2") - $(incl "$tmp/cg.$1.empty.out" "$2")) / CG_CALLS ))
}
per_call() { echo $(( ($(cg "$1" "$tmp/calls.sql" "$2") - $(cg "$1" "$tmp/empty.sql" "$2.empty")) / CG_CALLS )); }
cg_single=$(per_call "$tmp/single" single)
cg_worker=$(per_call "$cluster/worker1" worker)
echo "== 1. instructions per cast_vote call (callgrind, $CG_CALLS calls, single-user mode, new voters)"
echo "   statement: the whole EXECUTE (parse, plan, execute, commit), after a warm-up (one vote per entry)"
echo "   vg_cast_vote: vote_guard's function, callees included"
printf '   %-10s %10s %14s\n' "" statement vg_cast_vote
for n in single worker; do
    total=$([ $n = single ] && echo "$cg_single" || echo "$cg_worker")
    printf '   %-10s %10d %14d\n' "$([ $n = single ] && echo "one node" || echo "worker 1")" \
        "$total" "$(inclusive $n vg_cast_vote)"
done
awk -v s="$cg_single" -v w="$cg_worker" -v vs="$(inclusive single vg_cast_vote)" \
    -v vw="$(inclusive worker vg_cast_vote)" 'BEGIN {
    printf "   worker / one node: statement %.3fx, vg_cast_vote %.3fx\n", w / s, vw / vs }'
if [ -n "${CG_KEEP:-}" ]; then mkdir -p "$CG_KEEP" && cp "$tmp"/cg.*.out "$CG_KEEP/"; fi
for n in worker1 worker2 coordinator; do
    pg_ctl -D "$cluster/$n" -l "$cluster/$n.log" -w start >/dev/null
done
pg_ctl -D "$tmp/single" -l "$tmp/single.log" -w start >/dev/null

# 2. one client's latency by path
[ "${BENCH_PARTS:-all}" = cg ] && exit 0
echo "== 2. one client, mean latency per call (psycopg, prepared, $LAT_CALLS calls, new voters)"
/usr/bin/python3 - "$cluster" "$port" "$tmp" "$single" "$on_w1" "$on_w2" <<'PY'
import random, sys, time
import psycopg
host, port, shost, sport, w1, w2 = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), \
    [int(c) for c in sys.argv[5].split()], [int(c) for c in sys.argv[6].split()]
n = int(__import__("os").environ["LAT_CALLS"])
sql = ("SELECT r.vote_count FROM vote_guard.cast_vote(%s, %s, '0.0.0.0'::inet + %s,"
       " 'u' || %s::text, 'v' || %s::text || '@example.com') r")
rnd = random.Random(1)
def run(h, p, contests):
    conn = psycopg.connect(host=h, port=p, dbname="regression", autocommit=True)
    for _ in range(50):   # warm the backend's caches and Citus's connections
        v = rnd.randrange(1, 2**31 - 1); conn.execute(sql, (rnd.choice(contests), 1, v, v, v), prepare=True)
    t = time.perf_counter()
    for _ in range(n):
        v = rnd.randrange(1, 2**31 - 1)
        conn.execute(sql, (rnd.choice(contests), 1 + v % 10, v, v, v), prepare=True).fetchone()
    conn.close()
    return (time.perf_counter() - t) / n * 1e6
paths = [("one node", shost, sport, w1 + w2),
         ("worker 1, its own contests", host, port + 1, w1),
         ("worker 1, worker 2's contests (one hop)", host, port + 1, w2),
         ("coordinator (one hop)", host, port, w1 + w2)]
res = {}
for name, h, p, cs in paths:
    res[name] = run(h, p, cs)
base = res["one node"]
own = res["worker 1, its own contests"]
for name, *_ in paths:
    print("   %-42s %7.0f us  (%.2fx one node)" % (name, res[name], res[name] / base))
print("   delegation and hop: worker to worker %+.0f us, coordinator to worker %+.0f us;"
      " on the contest's node %+.0f us against one node"
      % (res["worker 1, worker 2's contests (one hop)"] - own,
         res["coordinator (one hop)"] - own, own - base))
PY

# 3. votes/s, interleaved rounds
cat >"$tmp/vote.pgbench" <<'PGB'
\set c random(1, 100)
\set e random(1, 10)
\set v random(1, 2147483646)
SELECT r.vote_count FROM vote_guard.cast_vote(:c, :e, '0.0.0.0'::inet + :v, 'u' || :v, 'v' || :v || '@example.com') r;
PGB
tps() {   # host port clients: tps of a pgbench run
    pgbench -n -M prepared -h "$1" -p "$2" -c "$3" -j "$3" -T "$BENCH_SECONDS" -f "$tmp/vote.pgbench" \
        regression 2>&1 | sed -n 's/^tps = \([0-9.]*\) .*/\1/p'
}
echo "== 3. votes/s, $BENCH_CLIENTS clients, pgbench -M prepared, $BENCH_SECONDS s a run, $BENCH_ROUNDS rounds"
half=$((BENCH_CLIENTS / 2))
: >"$tmp/rounds"
for r in $(seq 1 "$BENCH_ROUNDS"); do
    s=$(tps "$tmp" "$single" "$BENCH_CLIENTS")
    c=$(tps "$cluster" "$port" "$BENCH_CLIENTS")
    tps "$cluster" $((port + 1)) "$half" >"$tmp/w1" &
    tps "$cluster" $((port + 2)) "$half" >"$tmp/w2"
    wait
    w=$(awk '{ s += $1 } END { print s }' "$tmp/w1" "$tmp/w2")
    echo "$s $c $w" >>"$tmp/rounds"
    awk -v r="$r" '{ printf "   round %d: one node %6.0f, coordinator %6.0f (%.2fx), both workers %6.0f (%.2fx)\n",
                     r, $1, $2, $2 / $1, $3, $3 / $1 }' <<<"$s $c $w"
done
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
printf '   median of the rounds: coordinator %sx one node, both workers %sx one node\n' \
    "$(awk '{ printf "%.2f\n", $2 / $1 }' "$tmp/rounds" | median)" \
    "$(awk '{ printf "%.2f\n", $3 / $1 }' "$tmp/rounds" | median)"
