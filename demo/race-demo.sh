#!/usr/bin/env bash
# vote_guard demo: 50 concurrent requests from one voter, handled the naive
# way (check, then insert) and by vote_guard.cast_vote.
#
#   demo/race-demo.sh
#
# As root it installs what is missing from Debian's archive, builds and
# installs the extension, then runs a throwaway cluster as user "postgres".
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
clients=${DEMO_CLIENTS:-50}

if [ "$(id -u)" = 0 ]; then
    "$src/test/install-deps.sh"
    make -C "$src" -s all
    make -C "$src" -s install
    work=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_demo.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    cp -r "$src/demo" "$work/"
    chown -R postgres: "$work"
    runuser -u postgres -- env PG_CONFIG="$PG_CONFIG" DEMO_CLIENTS="$clients" \
        PATH="$PATH" "$work/demo/race-demo.sh"
    exit
fi

bindir=$("$PG_CONFIG" --bindir)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_demo_cluster.XXXXXX")
trap '"$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
"$bindir/initdb" -D "$tmp/data" -A trust -U "$(id -un)" --no-sync >/dev/null
"$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
    -o "-p 55433 -k $tmp -c listen_addresses='' -c max_connections=$((clients + 20))" start >/dev/null
export PGHOST=$tmp PGPORT=55433 PGUSER=$(id -un) PGDATABASE=postgres
psql_q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_q -o /dev/null <<'SQL'
CREATE EXTENSION vote_guard;
CREATE SCHEMA demo;
CREATE TABLE demo.naive_entries (entry_id bigint PRIMARY KEY, votes bigint NOT NULL);
CREATE TABLE demo.naive_votes (entry_id bigint, voter_ip inet);
INSERT INTO demo.naive_entries VALUES (1, 0);
CREATE TABLE demo.guarded_answers (error_code text);
SELECT vote_guard.create_contest('demo') AS contest \gset
SELECT vote_guard.add_entry(:contest, 1, 'the only entry');
SQL
contest=$(psql_q -At -c "SELECT max(id) FROM vote_guard.contests")

echo "$clients concurrent requests from one voter (203.0.113.7), one request per client:"
echo
"$bindir/pgbench" -n -c "$clients" -j 2 -t 1 -f "$(dirname "$0")/naive.sql" >"$tmp/naive.log" 2>&1 || { cat "$tmp/naive.log"; exit 1; }
psql_q -At -F ' ' -c "SELECT (SELECT count(*) FROM demo.naive_votes),
                             (SELECT votes FROM demo.naive_entries WHERE entry_id = 1)" |
    { read -r rows counter
      echo "  naive check-then-insert: $rows votes stored for one voter, counter says $counter"; }

"$bindir/pgbench" -n -c "$clients" -j 2 -t 1 -D contest="$contest" \
    -f "$(dirname "$0")/guarded.sql" >/dev/null 2>&1
psql_q -At -F '|' -v contest="$contest" <<'SQL' |
SELECT (SELECT count(*) FROM vote_guard.votes WHERE contest_id = :contest),
       (SELECT votes FROM vote_guard.results(:contest)),
       (SELECT string_agg(error_code || ' x' || n, ', ' ORDER BY error_code)
          FROM (SELECT error_code, count(*) AS n FROM demo.guarded_answers GROUP BY 1) a),
       (SELECT sum(abs(drift)) FROM vote_guard.verify(:contest))
SQL
    { IFS='|' read -r rows counter answers drift
      echo "  vote_guard.cast_vote:    $rows vote stored, counter says $counter (verify() drift $drift)"
      echo "                           answers: $answers"; }
