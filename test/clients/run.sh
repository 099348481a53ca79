#!/usr/bin/env bash
# vote_guard: the client examples (examples/node, examples/python) under real
# concurrent HTTP requests on loopback, against the database directly and
# through PgBouncer in transaction mode; then the settings that lose votes
# (named or prepared statements through the pooler, psycopg without a commit),
# shown to lose them.
#
#   VG_SUITES=clients test/run-all.sh
#
# test/run-all.sh runs it as the suite "clients", as an unprivileged user,
# against its throwaway cluster (PGHOST, PGPORT, PGUSER, PG_CONFIG).  Needs
# node and npm, pgbouncer, /usr/bin/python3 with psycopg and psycopg_pool
# (test/install-deps.sh installs them); `npm ci` installs the example's locked
# packages from the npm registry.  The examples listen on 127.0.0.1, ports
# VG_HTTP_PORT (default 18080) and the next 7; PgBouncer on a Unix socket in a
# private directory only.  Prints TAP lines; exits non-zero on any failure.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
here=$src/test/clients
http_port=${VG_HTTP_PORT:-18080}
: "${PGHOST:?run by test/run-all.sh}" "${PGPORT:?}"
direct_host=$PGHOST
direct_port=$PGPORT
db=vg_clients
python=/usr/bin/python3
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_clients.XXXXXX")
server_pid=
bouncer_pid=
cleanup() {
    for pid in $server_pid $bouncer_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

n=0
failed=0
tap() {
    local result=$1; shift
    n=$((n + 1))
    if [ "$result" = ok ]; then
        echo "ok $n - $*"
    else
        failed=$((failed + 1))
        echo "not ok $n - $*"
    fi
}
finish() {
    echo "1..$n"
    exit $((failed > 0))
}

# Debian's pgbouncer is in /usr/sbin, which is not on every PATH
PATH=$PATH:/usr/sbin
missing=()
for cmd in node npm pgbouncer; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
done
"$python" -c 'import psycopg, psycopg_pool' 2>/dev/null || missing+=("psycopg, psycopg_pool")
if [ ${#missing[@]} -gt 0 ]; then
    tap fail "missing: ${missing[*]} (test/install-deps.sh installs them)"
    finish
fi

echo "# $(node --version) node, $(pgbouncer --version | head -n 1)," \
     "psycopg $("$python" -c 'import psycopg; print(psycopg.__version__)')"
if ! (cd "$src/examples/node" && npm ci --no-audit --no-fund --loglevel=error) >"$tmp/npm.log" 2>&1; then
    sed 's/^/# /' "$tmp/npm.log"
    tap fail "npm ci in examples/node"
    finish
fi

psql_q() { "$("$PG_CONFIG" --bindir)/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_q -d postgres -c 'SET client_min_messages = warning' \
    -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
psql_q -d "$db" -c 'CREATE EXTENSION vote_guard'

# PgBouncer in transaction mode, fewer server connections than the examples'
# pools have clients, so that transactions of one client connection run on
# different server connections, as they do in production
bouncer_port=$((PGPORT + 1))
echo "\"$(id -un)\" \"\"" >"$tmp/userlist.txt"
cat >"$tmp/pgbouncer.ini" <<EOF
[databases]
$db = host=$direct_host port=$direct_port dbname=$db

[pgbouncer]
unix_socket_dir = $tmp
listen_port = $bouncer_port
auth_type = trust
auth_file = $tmp/userlist.txt
pool_mode = transaction
default_pool_size = 4
max_client_conn = 200
logfile = $tmp/pgbouncer.log
EOF
pgbouncer "$tmp/pgbouncer.ini" >/dev/null 2>&1 &
bouncer_pid=$!
for _ in $(seq 50); do
    psql_q -h "$tmp" -p "$bouncer_port" -d "$db" -c 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.2
done
if ! psql_q -h "$tmp" -p "$bouncer_port" -d "$db" -c 'SELECT 1' >/dev/null 2>&1; then
    sed 's/^/# /' "$tmp/pgbouncer.log"
    tap fail "PgBouncer does not start"
    finish
fi

# start NAME VIA COMMAND...: an example on the next HTTP port, its database
# reached directly or through PgBouncer
start() {
    local name=$1 via=$2; shift 2
    local host=$direct_host port=$direct_port
    if [ "$via" = pgbouncer ]; then host=$tmp; port=$bouncer_port; fi
    current=$name
    url=http://127.0.0.1:$http_port
    log=$tmp/$name.log
    env HOST=127.0.0.1 PORT="$http_port" TRUSTED_PROXIES=127.0.0.1,192.0.2.0/24 \
        PGHOST="$host" PGPORT="$port" PGDATABASE="$db" "$@" >"$log" 2>&1 &
    server_pid=$!
    http_port=$((http_port + 1))
    for _ in $(seq 100); do
        grep -q '^listening on' "$log" && return 0
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    sed 's/^/# /' "$log"
    tap fail "$name does not start"
    return 1
}

stop() {
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    # what the server logged, by SQLSTATE
    local errors
    errors=$(sed -n 's/^vote failed: \([0-9A-Z]*\).*/\1/p' "$log" | sort | uniq -c |
             awk '{ printf "%s%s x%d", sep, ($2 == "" ? "no SQLSTATE" : $2), $1; sep = ", " }')
    [ -z "$errors" ] || echo "# $current: server errors by SQLSTATE: $errors"
}

# load SCENARIO LABEL [--expect-failures]: test/clients/load.js against the
# running example; its "ok - " lines numbered here
load() {
    local out rc=0
    out=$(PGHOST=$direct_host PGPORT=$direct_port PGDATABASE=$db \
          timeout 120 node "$here/load.js" "$1" "$url" "$2" ${3:+"$3"} 2>&1) || rc=$?
    while IFS= read -r line; do
        case $line in
            "ok - "*) tap ok "${line#ok - }" ;;
            "not ok - "*) tap fail "${line#not ok - }" ;;
            "# "*) echo "$line" ;;
            *) echo "# $line" ;;
        esac
    done <<<"$out"
    if [ "$rc" != 0 ] && ! grep -q '^not ok - ' <<<"$out"; then
        tap fail "$2 $1: load.js exited with $rc"
    fi
}

# the examples as shipped: every check exact, directly and through the pooler
for via in direct pgbouncer; do
    if start "node-$via" "$via" node "$src/examples/node/server.js"; then
        load one-voter "node-$via"; load crowd "node-$via"; load inputs "node-$via"; stop
    fi
    if start "python-$via" "$via" "$python" "$src/examples/python/server.py"; then
        load one-voter "python-$via"; load crowd "python-$via"; load inputs "python-$via"; stop
    fi
done

# the settings the README warns about, each shown to fail
if start node-named-pgbouncer pgbouncer node "$here/naive-node.js"; then
    load crowd node-named-pgbouncer --expect-failures; stop
fi
for mode in prepare-default prepare-0; do
    if start "python-$mode-pgbouncer" pgbouncer "$python" "$here/naive_python.py" "$mode"; then
        load crowd "python-$mode-pgbouncer" --expect-failures; stop
    fi
done
if start python-no-commit-direct direct "$python" "$here/naive_python.py" no-commit; then
    load crowd python-no-commit-direct --expect-failures; stop
fi

finish
