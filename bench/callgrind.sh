#!/usr/bin/env bash
# vote_guard: instructions per cast_vote call, counted by callgrind.
#
# Instruction counts do not depend on what else the machine is doing, so
# this measures the CPU work of one call exactly and repeatably, where tps
# figures vary by 10-20 % between runs.  A throwaway cluster gets 100 contests
# of 10 entries (one counter row each, as voters one at a time leave them),
# then single-user postgres runs N prepared calls under valgrind for:
#
#   floor      the bare statement of bench/scripts/floor.sql
#   ceiling    its INSERT alone (bench/scripts/ceiling.sql): the vote's row
#              and nothing else
#   cast_vote  vote_guard.cast_vote on the same contests
#   skewed     cast_vote again after one hot contest with 20000 votes was
#              analyzed (statistics dominated by one contest)
#   policy     cast_vote on 100 contests with votes_per_voter 3 (the voter's
#              locks and earlier votes are read on every call)
#
# and prints instructions per call: (total - total of an empty session) / N.
# Every statement returns one column (the count; the vote_id for ceiling):
# single-user mode prints every result column with printf, about 3.5 k
# instructions each, which a client connection does not pay.
#
#   bench/callgrind.sh            # about 1 minute
#
# As root it installs missing packages, builds, and installs into a private
# copy of the PostgreSQL installation, then runs as postgres.  As another
# user the extension must be installed in PG_CONFIG's installation.
#
# Environment: CG_CALLS (1500), CG_PORT (55442), CG_VARIANTS (a part of
# "floor ceiling cast_vote skewed policy"; all), CG_SETUP_SQL (statements
# run in both databases after the setup, for experiments, e.g. "ALTER TABLE
# vote_guard.counters SET (fillfactor = 10)"), PG_MAJOR (15).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
CG_CALLS=${CG_CALLS:-1500}

if [ "$(id -u)" = 0 ]; then
    "$src/test/install-deps.sh"
    command -v valgrind >/dev/null || apt-get install -y -q valgrind >/dev/null
    make -C "$src" -s all
    # a private copy of the PostgreSQL installation (bench/private-install.sh)
    inst=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_cg_inst.XXXXXX")
    trap 'rm -rf "$inst"' EXIT
    "$src/bench/private-install.sh" "$inst"
    chmod 755 "$inst"
    status=0
    runuser -u postgres -- env PG_CONFIG="$inst$("$PG_CONFIG" --bindir)/pg_config" PATH="$PATH" \
        CG_CALLS="$CG_CALLS" CG_PORT="${CG_PORT:-55442}" \
        CG_VARIANTS="${CG_VARIANTS:-}" CG_SETUP_SQL="${CG_SETUP_SQL:-}" CG_KEEP="${CG_KEEP:-}" \
        TMPDIR="${TMPDIR:-/tmp}" "$src/bench/callgrind.sh" || status=$?
    exit $status
fi

bindir=$("$PG_CONFIG" --bindir)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_cg.XXXXXX")
port=${CG_PORT:-55442}
cleanup() {
    "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    [ -n "${CG_KEEP:-}" ] && echo "kept $tmp" || rm -rf "$tmp"
}
trap cleanup EXIT

"$bindir/initdb" -D "$tmp/data" -A trust --no-sync >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log"; exit 1; }
server() { "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w "$@" >/dev/null; }
q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$tmp" -p "$port" "$@"; }

# calls over contests 1..100 (or 101..200), entries 1..10, new voters; the
# same sequence every time (awk's generator with a fixed seed)
calls() {
    awk -v n="$CG_CALLS" -v name="$1" -v first="${2:-1}" 'BEGIN {
        srand(20261122)
        for (i = 0; i < n; i++)
            printf "EXECUTE %s(%d, %d, %d);\n", name, first + int(rand() * 100),
                   1 + int(rand() * 10), 1 + int(rand() * 2147483646)
    }'
}
{
    echo "PREPARE cv(bigint, bigint, bigint) AS SELECT r.vote_count FROM vote_guard.cast_vote(\$1, \$2, '0.0.0.0'::inet + \$3, 'u' || \$3, 'v' || \$3 || '@example.com') r;"
    calls cv
} >"$tmp/cast_vote.sql"
cp "$tmp/cast_vote.sql" "$tmp/skewed.sql"
{
    head -n 1 "$tmp/cast_vote.sql"
    calls cv 101
} >"$tmp/policy.sql"
{
    echo "PREPARE fl(bigint, bigint, bigint) AS WITH v AS (INSERT INTO f.votes (contest_id, entry_id, ip_key, user_id, email_key) VALUES (\$1, \$2, decode(lpad(to_hex(\$3), 64, '0'), 'hex'), 'u' || \$3, decode(lpad(to_hex(\$3), 64, 'f'), 'hex')) ON CONFLICT DO NOTHING RETURNING contest_id, entry_id) UPDATE f.entries e SET votes = e.votes + 1 FROM v WHERE e.contest_id = v.contest_id AND e.entry_id = v.entry_id RETURNING e.votes;"
    calls fl
} >"$tmp/floor.sql"
{
    echo "PREPARE ce(bigint, bigint, bigint) AS INSERT INTO f.votes (contest_id, entry_id, ip_key, user_id, email_key) VALUES (\$1, \$2, decode(lpad(to_hex(\$3), 64, '0'), 'hex'), 'u' || \$3, decode(lpad(to_hex(\$3), 64, 'f'), 'hex')) ON CONFLICT DO NOTHING RETURNING vote_id;"
    calls ce 101
} >"$tmp/ceiling.sql"
: >"$tmp/empty.sql"

# databases: one as a running system, one with skewed statistics
server -o "-p $port -k $tmp -c listen_addresses=''" start
for db in cg cgskew; do
    q -d postgres -c "CREATE DATABASE $db"
    q -d "$db" -o /dev/null <<'SQL'
CREATE EXTENSION vote_guard;
SELECT vote_guard.create_contest('c' || i) FROM generate_series(1, 100) i;
SELECT vote_guard.add_entry(c, e) FROM generate_series(1, 100) c, generate_series(1, 10) e;
INSERT INTO vote_guard.counters
SELECT c, e, 0, 0 FROM generate_series(1, 100) c, generate_series(1, 10) e;
SELECT vote_guard.create_contest('p' || i, votes_per_voter => 3) FROM generate_series(1, 100) i;
SELECT vote_guard.add_entry(c, e) FROM generate_series(101, 200) c, generate_series(1, 10) e;
CREATE SCHEMA f;
CREATE TABLE f.entries (contest_id bigint, entry_id bigint, votes bigint DEFAULT 0,
                        PRIMARY KEY (contest_id, entry_id));
INSERT INTO f.entries SELECT c, e FROM generate_series(1, 100) c, generate_series(1, 10) e;
CREATE TABLE f.votes (LIKE vote_guard.votes INCLUDING ALL);
SQL
done
q -d cgskew -o /dev/null <<'SQL'
SELECT vote_guard.create_contest('hot') AS hot \gset
SELECT vote_guard.add_entry(:hot, 1);
SELECT count(*) FROM generate_series(1, 20000) g,
       vote_guard.cast_vote(:hot, 1, '10.0.0.0'::inet + g, 'h' || g) r WHERE r.success;
SQL
if [ -n "${CG_SETUP_SQL:-}" ]; then
    for db in cg cgskew; do q -d "$db" -o /dev/null <<<"$CG_SETUP_SQL"; done
fi
q -d postgres -c 'VACUUM ANALYZE' -o /dev/null
for db in cg cgskew; do q -d "$db" -o /dev/null -c 'VACUUM ANALYZE'; done
server stop

run() {
    local name=$1 db=$2
    (cd "$tmp" && valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$name.out" \
        "$bindir/postgres" --single -D "$tmp/data" -c synchronous_commit=off "$db" \
        <"$tmp/$name.sql" >"$tmp/$name.log" 2>&1)
    grep -m1 '^summary:' "$tmp/cg.$name.out" | awk '{print $2}'
}
empty=$(run empty cg)
echo "instructions per call (callgrind, $CG_CALLS prepared calls in single-user mode, minus an empty session)"
for t in floor:cg ceiling:cg cast_vote:cg skewed:cgskew policy:cg; do
    name=${t%%:*}
    [ -n "${CG_VARIANTS:-}" ] && [[ " $CG_VARIANTS " != *" $name "* ]] && continue
    total=$(run "$name" "${t#*:}")
    errors=$(grep -c 'ERROR' "$tmp/$name.log" || true)
    printf '  %-10s %8d%s\n' "$name" $(( (total - empty) / CG_CALLS )) \
        "$([ "$errors" = 0 ] || echo "  ($errors errors)")"
done
