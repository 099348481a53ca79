#!/usr/bin/env bash
# vote_guard: cost per vote as contests grow.  The votes table of cast_vote
# and the floor's (bench/scripts/floor.sql: the same columns and indexes,
# written by one bare statement) grow side by side, block by block (floor's
# block, then cast_vote's, then the next), in one cluster whose
# shared_buffers is well below the final index size.  Per block it reports
# votes/s, bytes per vote (heap and each index), WAL bytes per vote, the
# share of full-page images in that WAL, the buffer hit ratio of the votes
# table and its indexes, and the p99 latency of a vote; at the end the time
# of results(), verify() and close_contest().  It only reports.
#
#   bench/scale.sh            # 10^7 votes per variant and shape: about 2 hours
#   SCALE_VOTES=2000000 bench/scale.sh   # about 15 minutes on 2 CPUs
#   QUICK=1 bench/scale.sh    # 2*10^5 votes, one shape: about 1.5 minutes
#
# Shapes (SCALE_SHAPES): "one" = one contest of 10^4 entries, "many" = 1000
# contests of 10 entries (votes spread over them).  Environment:
# SCALE_VOTES (votes per variant and shape; 10^7, QUICK 2*10^5), SCALE_BLOCK
# (blocks end at its multiples; SCALE_VOTES/10), SCALE_FIRST (the first
# block; 10^5 or SCALE_BLOCK if smaller), SCALE_SHAPES ("one many", QUICK
# "one"), SCALE_VARIANTS ("floor cast_vote"), SCALE_CLIENTS (8),
# SCALE_SYNC (synchronous_commit; off), SCALE_SHARED_BUFFERS (128MB, QUICK
# 16MB), SCALE_WALDUMP (1: full-page-image bytes from pg_waldump --stats; 0:
# only the count share from pg_stat_wal), SCALE_SAMPLING (share of the
# transactions logged for the latency; 0.1), SCALE_SETUP_SQL (statements run
# in each database after the setup, for experiments, e.g. "ALTER INDEX
# vote_guard.votes_pkey SET (fillfactor = 100)"; the floor's table is
# already made by then), SCALE_PORT (55620), PG_MAJOR (15).
#
# As root it installs missing packages, builds, installs into a private copy
# of the PostgreSQL installation (PostgreSQL finds its files relative to its
# binaries), then runs as postgres on a copy of the tree: it neither changes
# nor depends on the system's installed extension.  As another user the
# extension must be installed in PG_CONFIG's installation.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    SCALE_VOTES=${SCALE_VOTES:-200000}
    SCALE_SHAPES=${SCALE_SHAPES:-one}
    SCALE_SHARED_BUFFERS=${SCALE_SHARED_BUFFERS:-16MB}
else
    SCALE_VOTES=${SCALE_VOTES:-10000000}
    SCALE_SHAPES=${SCALE_SHAPES:-one many}
    SCALE_SHARED_BUFFERS=${SCALE_SHARED_BUFFERS:-128MB}
fi
SCALE_BLOCK=${SCALE_BLOCK:-$(( SCALE_VOTES / 10 ))}
SCALE_FIRST=${SCALE_FIRST:-$(( SCALE_BLOCK < 100000 ? SCALE_BLOCK : 100000 ))}
SCALE_VARIANTS=${SCALE_VARIANTS:-floor cast_vote}
SCALE_CLIENTS=${SCALE_CLIENTS:-8}
SCALE_SYNC=${SCALE_SYNC:-off}
SCALE_WALDUMP=${SCALE_WALDUMP:-1}
SCALE_SAMPLING=${SCALE_SAMPLING:-0.1}
SCALE_PORT=${SCALE_PORT:-55620}
SCALE_SETUP_SQL=${SCALE_SETUP_SQL:-}

if [ "$(id -u)" = 0 ]; then
    "$src/test/install-deps.sh"
    echo "== build and install into a private copy of PostgreSQL $PG_MAJOR"
    make -C "$src" -s all
    rev=$(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)
    work=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_scale.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    tar -C "$src" --exclude=.git -cf - . | tar -C "$work" -xf -
    # a private copy of the PostgreSQL installation (bench/private-install.sh)
    inst=$work/inst
    "$src/bench/private-install.sh" "$inst"
    chown -R postgres: "$work"
    status=0
    runuser -u postgres -- env PG_CONFIG="$inst$("$PG_CONFIG" --bindir)/pg_config" PATH="$PATH" QUICK="$QUICK" \
        SCALE_REVISION="$rev" SCALE_VOTES="$SCALE_VOTES" SCALE_BLOCK="$SCALE_BLOCK" SCALE_FIRST="$SCALE_FIRST" \
        SCALE_SHAPES="$SCALE_SHAPES" SCALE_VARIANTS="$SCALE_VARIANTS" SCALE_CLIENTS="$SCALE_CLIENTS" \
        SCALE_SYNC="$SCALE_SYNC" SCALE_SHARED_BUFFERS="$SCALE_SHARED_BUFFERS" SCALE_WALDUMP="$SCALE_WALDUMP" \
        SCALE_SAMPLING="$SCALE_SAMPLING" SCALE_SETUP_SQL="$SCALE_SETUP_SQL" SCALE_PORT="$SCALE_PORT" \
        TMPDIR="${TMPDIR:-/tmp}" "$work/bench/scale.sh" || status=$?
    exit $status
fi

bench=$src/bench
bindir=$("$PG_CONFIG" --bindir)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_scale_cluster.XXXXXX")
cleanup() {
    "$bindir/pg_ctl" -D "$tmp/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
started=$(date +%s)

SETTINGS="shared_buffers=$SCALE_SHARED_BUFFERS max_connections=50 max_wal_size=1GB checkpoint_timeout=5min fsync=on"
[ "$SCALE_WALDUMP" = 1 ] && SETTINGS+=" wal_keep_size=4GB"
opts="-p $SCALE_PORT -k $tmp -c listen_addresses=''"
for s in $SETTINGS; do opts+=" -c $s"; done
export PGHOST=$tmp PGPORT=$SCALE_PORT PGUSER=$(id -un)
q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
qv() { q -At -c "$1" "${@:2}"; }
shape_size() { if [ "$1" = one ]; then echo "1 10000"; else echo "1000 10"; fi; }

# the installed script must be this tree's
if ! cmp -s "$src/vote_guard--1.0.sql" "$("$PG_CONFIG" --sharedir)/extension/vote_guard--1.0.sql"; then
    echo "scale.sh: the installed vote_guard--1.0.sql is not this tree's (make install first)" >&2
    exit 1
fi
"$bindir/initdb" -D "$tmp/data" -A trust -U "$(id -un)" --no-sync >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log"; exit 1; }
"$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -o "$opts" start >/dev/null \
    || { cat "$tmp/server.log"; exit 1; }
for shape in $SCALE_SHAPES; do
    read -r ncontests nentries < <(shape_size "$shape")
    db=scale_$shape
    q -d postgres -c "CREATE DATABASE $db"
    PGOPTIONS="-c bench.ncontests=$ncontests -c bench.nentries=$nentries -c client_min_messages=warning" \
        q -d "$db" -o /dev/null -f "$bench/setup.sql"
    [ -n "$SCALE_SETUP_SQL" ] && q -d "$db" -o /dev/null -c "$SCALE_SETUP_SQL"
    q -d "$db" -o /dev/null \
      -c 'ALTER TABLE vote_guard.votes SET (autovacuum_enabled = off)' \
      -c 'ALTER TABLE bench_floor.votes SET (autovacuum_enabled = off)'
done
for shape in $SCALE_SHAPES; do q -d "scale_$shape" -o /dev/null -c 'VACUUM ANALYZE'; done

echo "== vote_guard growth benchmark$([ "$QUICK" = 1 ] && echo ' (QUICK)')"
echo "machine:    $(nproc) CPUs, $(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM," \
     "load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
echo "vote_guard: ${SCALE_REVISION:-$(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)}" \
     "(library md5 $(md5sum <"$("$PG_CONFIG" --pkglibdir)/vote_guard.so" | cut -c1-12))"
echo "postgres:   $(qv 'SELECT version()' -d postgres | cut -d, -f1)"
echo "cluster:    $SETTINGS, autovacuum on (off for the two votes tables)"
[ -n "$SCALE_SETUP_SQL" ] && echo "setup:      $SCALE_SETUP_SQL"
echo "runs:       pgbench -M prepared -c $SCALE_CLIENTS, synchronous_commit=$SCALE_SYNC, CHECKPOINT before each block;" \
     "$SCALE_VOTES votes per variant in blocks of $SCALE_BLOCK (first $SCALE_FIRST)"

results=$tmp/results.tsv
: >"$results"

# the votes table of a variant
vtable() { [ "$1" = floor ] && echo bench_floor.votes || echo vote_guard.votes; }

# statistics of a table, once its writers have gone: inserted rows, blocks
# hit and read (heap and indexes), WAL records, full-page images, WAL bytes
stats() {
    local db=$1 t=$2
    for _ in $(seq 1 50); do
        [ "$(q -d "$db" -At -c "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")" = 0 ] && break
        sleep 0.1
    done
    q -d "$db" -At -F ' ' -c "SELECT pg_stat_force_next_flush()" -c "
        SELECT s.n_tup_ins, io.heap_blks_hit + coalesce(io.idx_blks_hit, 0),
               io.heap_blks_read + coalesce(io.idx_blks_read, 0),
               w.wal_records, w.wal_fpi, w.wal_bytes, pg_current_wal_lsn()
          FROM pg_stat_user_tables s, pg_statio_user_tables io, pg_stat_wal w
         WHERE s.relid = '$t'::regclass AND io.relid = s.relid" | tail -n 1
}

# sizes: heap, then "label=bytes" for each index (label: its first column
# after contest_id), then the total with TOAST, FSM and visibility map
sizes() {
    local db=$1 t=$2
    q -d "$db" -At -c "
        SELECT string_agg(x, ' ' ORDER BY o) FROM (
          SELECT 0 AS o, 'heap=' || pg_relation_size('$t'::regclass) AS x
          UNION ALL
          SELECT 1, coalesce(a.attname, 'expr') || '=' || pg_relation_size(i.indexrelid)
            FROM pg_index i
            LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid
                 AND a.attnum = i.indkey[CASE WHEN i.indnatts > 1 THEN 1 ELSE 0 END]
           WHERE i.indrelid = '$t'::regclass
          UNION ALL
          SELECT 2, 'total=' || pg_total_relation_size('$t'::regclass)) s"
}

# one block: block DB SHAPE VARIANT N SEED CBASE NCONTESTS NENTRIES
block() {
    local db=$1 shape=$2 variant=$3 n=$4 seed=$5 cbase=$6 ncontests=$7 nentries=$8
    local t out=$tmp/pgbench.out err=$tmp/pgbench.err rc=0
    t=$(vtable "$variant")
    q -d "$db" -c CHECKPOINT
    local before after
    before=$(stats "$db" "$t")
    rm -f "$tmp"/pgl/*
    mkdir -p "$tmp/pgl"
    local per=$(( (n + SCALE_CLIENTS - 1) / SCALE_CLIENTS ))
    PGOPTIONS="-c synchronous_commit=$SCALE_SYNC" "$bindir/pgbench" -n -M prepared -d "$db" \
        -c "$SCALE_CLIENTS" -j "$(( SCALE_CLIENTS < $(nproc) ? SCALE_CLIENTS : $(nproc) ))" -t "$per" \
        -D cbase="$cbase" -D ncontests="$ncontests" -D nentries="$nentries" \
        -f "$bench/scripts/$variant.sql" --random-seed="$seed" \
        -l --sampling-rate="$SCALE_SAMPLING" --log-prefix="$tmp/pgl/log" >"$out" 2>"$err" || rc=$?
    after=$(stats "$db" "$t")
    if [ "$rc" != 0 ] || grep -q -E 'aborted|ERROR' "$err"; then
        echo "   $variant: pgbench exit $rc:"; head -n 5 "$err"
    fi
    local tps p99 fpib=-
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | tail -n 1)
    p99=$(cat "$tmp"/pgl/log.* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ {print $3}' | sort -n |
          awk '{v[NR] = $1} END {if (NR == 0) {print "-"; exit}
               i = int(NR * 0.99); if (i < NR * 0.99) i++; printf "%.2f\n", v[i] / 1000}')
    local lsn0 lsn1
    lsn0=$(echo "$before" | awk '{print $7}')
    lsn1=$(echo "$after" | awk '{print $7}')
    if [ "$SCALE_WALDUMP" = 1 ]; then
        # "Total  N  rec_bytes [r%]  fpi_bytes [f%]  total [100%]": f
        fpib=$("$bindir/pg_waldump" -p "$tmp/data/pg_wal" -s "$lsn0" -e "$lsn1" --stats 2>/dev/null |
               awk '$1 == "Total" {gsub(/[\[\]%]/, "", $6); print $6}')
        fpib=${fpib:--}
    fi
    local walb
    walb=$(q -d "$db" -At -c "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$shape" "$variant" "$before" "$after" "${tps:--}" \
        "$walb" "$fpib" "${p99:--}" "$(sizes "$db" "$t")" >>"$results"
    awk -F'\t' 'END {split($3, b, " "); split($4, a, " ")
        printf "   %-9s %9d votes  %8.0f votes/s  %6.0f WAL B/vote\n", $2, a[1], $5, $6 / (a[1] - b[1])}' "$results"
}

# the end of a shape: read and close timings, in ms
timings() {
    local db=$1 shape=$2 variant=$3 contest=$4 r v c
    if [ "$variant" = floor ]; then
        r=$(qv "SELECT bench.best_ns(\$\$SELECT count(*) FROM (SELECT entry_id, votes FROM bench_floor.entries WHERE contest_id = $contest ORDER BY votes DESC, entry_id) s\$\$) / 1e6" -d "$db")
        v=$(qv "SELECT bench.best_ns(\$\$SELECT count(*) FROM bench_floor.entries e LEFT JOIN (SELECT entry_id, count(*) AS n FROM bench_floor.votes WHERE contest_id = $contest GROUP BY entry_id) a USING (entry_id) WHERE e.contest_id = $contest AND e.votes <> coalesce(a.n, 0)\$\$, 1) / 1e6" -d "$db")
        c=-
    else
        r=$(qv "SELECT bench.best_ns(\$\$SELECT count(*) FROM vote_guard.results($contest)\$\$) / 1e6" -d "$db")
        v=$(qv "SELECT bench.best_ns(\$\$SELECT count(*) FROM vote_guard.verify($contest) WHERE drift <> 0\$\$, 1) / 1e6" -d "$db")
        c=$(qv "SELECT bench.best_ns(\$\$SELECT vote_guard.close_contest($contest)\$\$, 1) / 1e6" -d "$db")
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$shape" "$variant" "$r" "$v" "$c" >>"$tmp/timings.tsv"
}
: >"$tmp/timings.tsv"

for shape in $SCALE_SHAPES; do
    read -r ncontests nentries < <(shape_size "$shape")
    db=scale_$shape
    echo
    echo "== shape $shape: $ncontests contest(s) of $nentries entries ($(( $(date +%s) - started )) s so far)"
    cbase=$(qv 'SELECT low_base FROM bench.config' -d "$db")
    total=0
    seed=1
    while [ "$total" -lt "$SCALE_VOTES" ]; do
        # the first block, then up to the next multiple of SCALE_BLOCK: the
        # last blocks are whole (a short block pays the same full-page
        # images for fewer votes)
        if [ "$total" = 0 ]; then n=$SCALE_FIRST; else n=$(( (total / SCALE_BLOCK + 1) * SCALE_BLOCK - total )); fi
        [ $(( total + n )) -gt "$SCALE_VOTES" ] && n=$(( SCALE_VOTES - total ))
        echo " block $seed: $total -> $(( total + n )) votes ($(( $(date +%s) - started )) s so far)"
        for variant in $SCALE_VARIANTS; do
            block "$db" "$shape" "$variant" "$n" "$seed" "$cbase" "$ncontests" "$nentries"
        done
        total=$(( total + n ))
        seed=$(( seed + 1 ))
    done
    for variant in $SCALE_VARIANTS; do
        timings "$db" "$shape" "$variant" "$cbase"
    done
    rows=$(qv "SELECT count(*) FROM vote_guard.votes" -d "$db")
    drift=$(qv "SELECT coalesce(sum(abs(v.drift)), 0) FROM vote_guard.contests c, LATERAL vote_guard.verify(c.id) v" -d "$db")
    echo " cast_vote: $rows rows, verify() drift $drift"
    q -d postgres -c "DROP DATABASE $db"
done

# ---------------------------------------------------------------- tables
echo
echo "== per block (bytes per vote: size / votes so far; WAL per vote: this block's WAL / its votes)"
awk -F'\t' '
    function lbl(x) { return x == "contest_id" ? "pkey" : x }
    {
        split($3, b, " "); split($4, a, " ")
        n = a[1] - b[1]; hits = a[2] - b[2]; reads = a[3] - b[3]
        recs = a[4] - b[4]; fpi = a[5] - b[5]
        delete sz; m = split($9, kv, " ")
        for (i = 1; i <= m; i++) { split(kv[i], p, "="); sz[p[1]] = p[2] }
        if ($1 != shape) {
            shape = $1
            printf "\n-- shape %s\n%-9s %9s %8s %6s %6s %6s %6s %6s %6s %6s %7s %7s %6s %6s %6s %7s\n", shape,
                   "variant", "votes", "votes/s", "heap", "pkey", "ip", "user", "email", "req", "entry",
                   "total", "WAL B/v", "fpiB%", "fpiN%", "hit%", "p99 ms"
        }
        f = "%6s"
        printf "%-9s %9d %8.0f %6.1f %6s %6s %6s %6s %6s %6s %7.1f %7.0f %6s %6.1f %6.1f %7s\n", $2, a[1], $5,
               sz["heap"] / a[1],
               ("vote_id" in sz ? sprintf("%.1f", sz["vote_id"] / a[1]) : "-"),
               ("ip_key" in sz ? sprintf("%.1f", sz["ip_key"] / a[1]) : "-"),
               ("user_id" in sz ? sprintf("%.1f", sz["user_id"] / a[1]) : "-"),
               ("email_key" in sz ? sprintf("%.1f", sz["email_key"] / a[1]) : "-"),
               ("request_id" in sz ? sprintf("%.1f", sz["request_id"] / a[1]) : "-"),
               ("entry_id" in sz ? sprintf("%.1f", sz["entry_id"] / a[1]) : "-"),
               sz["total"] / a[1], (n > 0 ? $6 / n : 0), $7,
               (recs > 0 ? 100 * fpi / recs : 0), (hits + reads > 0 ? 100 * hits / (hits + reads) : 0), $8
    }' "$results"

echo
echo "== side by side: cast_vote / floor (same block), and each variant's last block / its first"
awk -F'\t' '
    {
        split($3, b, " "); split($4, a, " ")
        m = split($9, kv, " "); for (i = 1; i <= m; i++) { split(kv[i], p, "="); if (p[1] == "total") tot = p[2] }
        k = $1 SUBSEP $2
        if (!(k in first)) first[k] = $5
        last[k] = $5; lastn[k] = a[1]; bpv[k] = tot / a[1]; wpv[k] = $6 / (a[1] - b[1])
        if (!($1 in seen)) { seen[$1] = 1; order[++ns] = $1 }
    }
    END {
        printf "%-6s %12s %12s %12s %18s %18s\n", "shape", "votes", "bytes x", "WAL x", "floor last/first", "cast last/first"
        for (i = 1; i <= ns; i++) {
            s = order[i]; f = s SUBSEP "floor"; c = s SUBSEP "cast_vote"
            if (!(f in last) || !(c in last)) continue
            printf "%-6s %12d %12.2f %12.2f %18.2f %18.2f\n", s, lastn[c], bpv[c] / bpv[f], wpv[c] / wpv[f],
                   last[f] / first[f], last[c] / first[c]
        }
    }' "$results"

echo
echo "== at the end, on the first contest (ms; verify and close_contest: one run, results: best of 3)"
printf '%-6s %-9s %10s %10s %14s\n' shape variant "results()" "verify()" "close_contest"
awk -F'\t' '{printf "%-6s %-9s %10.1f %10.1f %14s\n", $1, $2, $3, $4, ($5 == "-" ? "-" : sprintf("%.1f", $5))}' "$tmp/timings.tsv"
echo
echo "votes/s: pgbench tps; heap .. entry: pg_relation_size of the heap and of each index (named by its"
echo "column after contest_id; pkey = (contest_id, vote_id)) per vote stored so far; total: pg_total_relation_size"
echo "per vote; WAL B/v: pg_current_wal_lsn difference over the block per vote; fpiB%: full-page images'"
echo "share of those bytes (pg_waldump --stats); fpiN%: their share of the WAL records (pg_stat_wal);"
echo "hit%: shared-buffer hits of the votes table and its indexes; p99: a vote's latency (pgbench log,"
echo "sampled $SCALE_SAMPLING). floor's results/verify are the equivalent plain queries; it has no close."
echo "total time: $(( $(date +%s) - started )) s, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
