#!/usr/bin/env bash
# A throwaway Citus cluster for vote_guard's tests: one coordinator and two
# workers on Unix sockets only, in a temporary folder, run by the calling
# (non-root) user.
#
#   test/citus/cluster.sh start DIR PORT   # coordinator on PORT, workers PORT+1, PORT+2
#   test/citus/cluster.sh stop DIR         # stop the three servers, remove DIR
#
# start creates database "regression" with extension citus on every node
# and registers the coordinator and the workers; it prints the environment
# to reach the coordinator (PGHOST, PGPORT, PGDATABASE).  The test creates
# vote_guard itself (CREATE EXTENSION on the coordinator reaches every node).  Every
# node listens only on its socket in DIR; the nodes reach each other there
# (Citus accepts a socket folder as a node name).
#
# With VG_CITUS_SPARE=1 one more server starts on the next port, with the
# database and citus but not added as a node (a test adds it: citus_add_node).
# wal_level is logical: Citus moves shards by logical replication unless told
# to block writes.
#
# Environment: PG_CONFIG, VG_CITUS_WORKERS (default 2), VG_CITUS_SPARE.
set -euo pipefail

PG_CONFIG=${PG_CONFIG:-pg_config}
bindir=$("$PG_CONFIG" --bindir)
cmd=${1:-}
dir=${2:-}
[ -n "$dir" ] || { echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2; }
workers=${VG_CITUS_WORKERS:-2}

node_dirs() {
    local d
    for d in "$dir"/coordinator "$dir"/worker*; do
        [ -d "$d" ] && echo "$d"
    done
    return 0
}

case $cmd in
stop)
    for d in $(node_dirs); do
        "$bindir/pg_ctl" -D "$d" -m immediate stop >/dev/null 2>&1 || true
    done
    rm -rf "$dir"
    exit 0
    ;;
start) ;;
*) echo "usage: $0 start DIR PORT | stop DIR" >&2; exit 2 ;;
esac

port=${3:?port}
user=$(id -un)
mkdir -p "$dir"
# one initdb, copied: initdb costs a second or more each on this machine
"$bindir/initdb" -D "$dir/template" -A trust -U "$user" -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log"; exit 1; }
cat >>"$dir/template/postgresql.conf" <<CONF
shared_preload_libraries = 'citus'
listen_addresses = ''
unix_socket_directories = '$dir'
max_connections = 150
fsync = off
synchronous_commit = off
full_page_writes = off
max_prepared_transactions = 100
wal_level = logical
citus.enable_statistics_collection = off
citus.local_hostname = '$dir'
log_min_messages = warning
CONF

names=(coordinator)
for i in $(seq 1 "$workers"); do names+=("worker$i"); done
servers=$workers
if [ "${VG_CITUS_SPARE:-0}" = 1 ]; then
    servers=$((workers + 1))
    names+=("worker$servers")
fi
i=0
for name in "${names[@]}"; do
    cp -a "$dir/template" "$dir/$name"
    echo "port = $((port + i))" >>"$dir/$name/postgresql.conf"
    i=$((i + 1))
done
rm -rf "$dir/template"
# start all, then wait for all
for name in "${names[@]}"; do
    "$bindir/pg_ctl" -D "$dir/$name" -l "$dir/$name.log" -W start >/dev/null
done
i=0
for name in "${names[@]}"; do
    "$bindir/pg_ctl" -D "$dir/$name" -w status >/dev/null 2>&1 || true
    for _ in $(seq 1 100); do
        "$bindir/pg_isready" -q -h "$dir" -p $((port + i)) && break
        sleep 0.1
    done
    "$bindir/pg_isready" -q -h "$dir" -p $((port + i)) ||
        { echo "citus cluster: $name did not start"; cat "$dir/$name.log"; exit 1; }
    i=$((i + 1))
done

psql_on() {
    local p=$1; shift
    "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$p" "$@"
}
# the nodes one at a time would take a second or more each
pids=()
for i in $(seq 0 "$servers"); do
    { psql_on $((port + i)) -d postgres -c 'CREATE DATABASE regression' &&
      psql_on $((port + i)) -d regression -c 'CREATE EXTENSION citus'; } &
    pids+=($!)
done
for pid in "${pids[@]}"; do
    wait "$pid" || { echo "citus cluster: creating the database failed"; exit 1; }
done
{
    echo "SELECT pg_catalog.citus_set_coordinator_host('$dir', $port);"
    for i in $(seq 1 "$workers"); do
        echo "SELECT pg_catalog.citus_add_node('$dir', $((port + i)));"
    done
} | psql_on "$port" -d regression >/dev/null
echo "PGHOST=$dir PGPORT=$port PGDATABASE=regression"
