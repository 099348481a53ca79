#!/usr/bin/env bash
# The citus suite: a Citus cluster (cluster.sh) on ports PORT to PORT+2 and a
# spare server on PORT+3 (storm.py adds it as a third worker), the
# pg_regress schedule of test/citus/ through its coordinator, the isolation
# specs (isolation_schedule, specs/) through it, the storms, then the
# cluster goes.  Run as the unprivileged user, with vote_guard and Citus
# installed (test/run-all.sh does both as root).
#
#   test/citus/run.sh PORT
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
port=${1:?port}
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
# psql for the test's second session, the server's own
export PATH="$("$PG_CONFIG" --bindir):$PATH"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_citus.XXXXXX")
trap '"$here/cluster.sh" stop "$tmp/cluster"; rm -rf "$tmp"' EXIT

start=$(date +%s%N)
VG_CITUS_SPARE=1 "$here/cluster.sh" start "$tmp/cluster" "$port" >/dev/null
echo "# citus cluster: 1 coordinator + 2 workers up in $((($(date +%s%N) - start) / 1000000)) ms"

cd "$here"
rm -f regression.diffs regression.out
"$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/regress/pg_regress" \
    --bindir="$("$PG_CONFIG" --bindir)" --inputdir=. --outputdir=. \
    --host="$tmp/cluster" --port="$port" --use-existing --dbname=regression \
    --schedule=schedule || status=$?
# races through the coordinator (specs/; the first, isolation_setup, lets
# isolationtester see waits on the workers; a wait it does not see would
# stall a step: cancelled after 60 s instead of the default 360)
rm -rf isolation && mkdir isolation
PGISOLATIONTIMEOUT=${PGISOLATIONTIMEOUT:-60} \
"$("$PG_CONFIG" --pkglibdir)/pgxs/src/test/isolation/pg_isolation_regress" \
    --bindir="$("$PG_CONFIG" --bindir)" --inputdir=. --outputdir=isolation \
    --host="$tmp/cluster" --port="$port" --use-existing --dbname=regression \
    --schedule=isolation_schedule || status=$?
# vote storms: shard moves, 64 clients on every node, a third worker and a
# rebalance (python3-psycopg: test/citus/build.sh installs it)
/usr/bin/python3 "$here/storm.py" "$tmp/cluster" "$port" move storm grow || status=$?
exit "${status:-0}"
