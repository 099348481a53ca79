#!/usr/bin/env bash
# vote_guard: votes of different voters for ONE entry at each isolation level,
# N clients, with pgbench retrying serialization failures (--max-tries): how
# many accepted votes per second, how many transactions needed retries, and
# how many retries an accepted vote took (mean, p99, max).  A few seconds per
# cell, on a throwaway cluster on a Unix socket; it only reports.
#
#   bench/serializable.sh                       # about 1 minute
#   SER_LEVELS=serializable SER_CLIENTS="2 8 32" SER_SECONDS=10 bench/serializable.sh
#
# As root it builds and installs the extension first (wrap it in the shared
# test lock where several people share one PostgreSQL installation) and runs
# as "postgres" on a copy of the tree; as another user the extension must be
# installed.
#
# Environment: SER_SECONDS (per cell; 4), SER_CLIENTS ("2 8 16"),
# SER_LEVELS ("read_committed repeatable_read serializable"), SER_POLICY
# (create_contest arguments; "dedupe_on => '{user}'"), SER_MAX_TRIES (1000),
# SER_PORT (55441), PG_MAJOR (15).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
SER_SECONDS=${SER_SECONDS:-4}
SER_CLIENTS=${SER_CLIENTS:-2 8 16}
SER_LEVELS=${SER_LEVELS:-read_committed repeatable_read serializable}
SER_POLICY=${SER_POLICY:-"dedupe_on => '{user}'"}
SER_MAX_TRIES=${SER_MAX_TRIES:-1000}
SER_PORT=${SER_PORT:-55441}

if [ "$(id -u)" = 0 ]; then
    "$src/test/install-deps.sh"
    make -C "$src" -s all
    make -C "$src" -s install
    work=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_ser.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    tar -C "$src" --exclude=.git -cf - . | tar -C "$work" -xf -
    chown -R postgres: "$work"
    runuser -u postgres -- env PG_CONFIG="$PG_CONFIG" PATH="$PATH" TMPDIR="${TMPDIR:-/tmp}" \
        SER_SECONDS="$SER_SECONDS" SER_CLIENTS="$SER_CLIENTS" SER_LEVELS="$SER_LEVELS" \
        SER_POLICY="$SER_POLICY" SER_MAX_TRIES="$SER_MAX_TRIES" SER_PORT="$SER_PORT" \
        "$work/bench/serializable.sh"
    exit $?
fi

bindir=$("$PG_CONFIG" --bindir)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_ser_cluster.XXXXXX")
cleanup() {
    "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
"$bindir/initdb" -D "$tmp/data" -A trust -U "$(id -un)" --no-sync >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log"; exit 1; }
"$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
    -o "-p $SER_PORT -k $tmp -c listen_addresses='' -c max_connections=100 -c fsync=off -c synchronous_commit=off -c max_pred_locks_per_transaction=256" \
    start >/dev/null || { cat "$tmp/server.log"; exit 1; }
export PGHOST=$tmp PGPORT=$SER_PORT PGUSER=$(id -un) PGDATABASE=postgres
psql -qX -v ON_ERROR_STOP=1 -c "CREATE EXTENSION vote_guard" >/dev/null

echo "one hot entry, policy: $SER_POLICY; ${SER_SECONDS}s per cell; pgbench --max-tries=$SER_MAX_TRIES"
printf '%-16s %7s %9s %10s %11s %12s %8s %8s %6s\n' level clients votes/s accepted "tx retried" "retries/vote" "p99" "max" drift
for level in $SER_LEVELS; do
    for clients in $SER_CLIENTS; do
        c=$(psql -qXAt -c "SELECT vote_guard.create_contest('ser $level $clients', $SER_POLICY)")
        psql -qX -c "SELECT vote_guard.add_entry($c, 1)" >/dev/null
        cat >"$tmp/vote.sql" <<EOF
\set u random(1, 2000000000)
BEGIN ISOLATION LEVEL ${level//_/ };
SELECT * FROM vote_guard.cast_vote($c, 1, NULL, 'u' || :client_id || '-' || :u);
END;
EOF
        rm -f "$tmp"/log.*
        pgbench -n -M prepared -f "$tmp/vote.sql" -c "$clients" -j "$clients" -T "$SER_SECONDS" \
            --max-tries="$SER_MAX_TRIES" --failures-detailed -l --log-prefix="$tmp/log" \
            >"$tmp/pgbench.out" 2>&1 || { cat "$tmp/pgbench.out"; exit 1; }
        # per transaction log: client tx time script epoch us retries (PG 15)
        cat "$tmp"/log.* | awk '{ print $NF }' | sort -n >"$tmp/retries"
        read -r txs retried retries p99 max < <(awk '
            { n++; s += $1; if ($1 > 0) k++; v[n] = $1 }
            END { i = int(n * 0.99); if (i < 1) i = 1
                  printf "%d %d %d %d %d\n", n, k, s, v[i], v[n] }' "$tmp/retries")
        failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$tmp/pgbench.out")
        read -r accepted drift < <(psql -qXAt -F' ' -c \
            "SELECT sum(actual), max(abs(drift)) FROM vote_guard.verify($c)")
        printf '%-16s %7d %9.0f %10d %10.1f%% %12.2f %8d %8d %6d\n' "$level" "$clients" \
            "$(echo "$accepted $SER_SECONDS" | awk '{print $1 / $2}')" "$accepted" \
            "$(echo "$retried $txs" | awk '{print $2 ? 100 * $1 / $2 : 0}')" \
            "$(echo "$retries $accepted" | awk '{print $2 ? $1 / $2 : 0}')" "$p99" "$max" "$drift"
        [ "${failed:-0}" = 0 ] || echo "  ($failed transactions failed after $SER_MAX_TRIES tries)"
    done
done
