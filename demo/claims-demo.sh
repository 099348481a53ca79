#!/usr/bin/env bash
# vote_guard demo: 100 seats, 1000 concurrent claimants (distinct users),
# handled the naive way (count, then insert) and by vote_guard.cast_vote on
# an entry with capacity 100.
#
#   demo/claims-demo.sh
#
# As root it installs what is missing from Debian's archive, builds and
# installs the extension, then runs a throwaway cluster as user "postgres".
# DEMO_CLIENTS (100) connections make DEMO_CLAIMANTS (1000) requests;
# DEMO_PORT (55434).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
clients=${DEMO_CLIENTS:-100}
claimants=${DEMO_CLAIMANTS:-1000}
port=${DEMO_PORT:-55434}
seats=100

if [ "$(id -u)" = 0 ]; then
    "$src/test/install-deps.sh"
    make -C "$src" -s all
    make -C "$src" -s install
    work=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_demo.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    cp -r "$src/demo" "$work/"
    chown -R postgres: "$work"
    runuser -u postgres -- env PG_CONFIG="$PG_CONFIG" DEMO_CLIENTS="$clients" \
        DEMO_CLAIMANTS="$claimants" DEMO_PORT="$port" PATH="$PATH" "$work/demo/claims-demo.sh"
    exit
fi

bindir=$("$PG_CONFIG" --bindir)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_demo_cluster.XXXXXX")
trap '"$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
"$bindir/initdb" -D "$tmp/data" -A trust -U "$(id -un)" --no-sync >/dev/null
"$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
    -o "-p $port -k $tmp -c listen_addresses='' -c max_connections=$((clients + 20))" start >/dev/null
export PGHOST=$tmp PGPORT=$port PGUSER=$(id -un) PGDATABASE=postgres
psql_q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }

psql_q -o /dev/null -v seats="$seats" <<'SQL'
CREATE EXTENSION vote_guard;
CREATE SCHEMA demo;
CREATE SEQUENCE demo.claimant;
CREATE TABLE demo.naive_claims (user_id text PRIMARY KEY);
CREATE TABLE demo.guarded_answers (error_code text);
SELECT vote_guard.create_contest('workshop', dedupe_on => '{user}') AS contest \gset
SELECT vote_guard.add_entry(:contest, 1, 'the workshop', capacity => :seats);
SQL
contest=$(psql_q -At -c "SELECT max(id) FROM vote_guard.contests")
per_client=$(( (claimants + clients - 1) / clients ))

echo "$seats seats, $((per_client * clients)) claimants (distinct users) over $clients concurrent connections:"
echo
"$bindir/pgbench" -n -c "$clients" -j 2 -t "$per_client" -f "$(dirname "$0")/naive-claims.sql" \
    >"$tmp/naive.log" 2>&1 || { cat "$tmp/naive.log"; exit 1; }
sold=$(psql_q -At -c "SELECT count(*) FROM demo.naive_claims")
echo "  naive count-then-insert: $sold seats sold for $seats: oversold by $((sold - seats))"

"$bindir/pgbench" -n -c "$clients" -j 2 -t "$per_client" -D contest="$contest" \
    -f "$(dirname "$0")/guarded-claims.sql" >"$tmp/guarded.log" 2>&1 || { cat "$tmp/guarded.log"; exit 1; }
psql_q -At -F '|' -v contest="$contest" <<'SQL' |
SELECT (SELECT count(*) FROM vote_guard.votes WHERE contest_id = :contest),
       (SELECT string_agg(error_code || ' x' || n, ', ' ORDER BY error_code)
          FROM (SELECT error_code, count(*) AS n FROM demo.guarded_answers GROUP BY 1) a),
       (SELECT sum(abs(drift)) FROM vote_guard.verify(:contest))
SQL
    { IFS='|' read -r rows answers drift
      echo "  vote_guard.cast_vote:    $rows seats sold for $seats (verify() drift $drift)"
      echo "                           answers: $answers"; }
