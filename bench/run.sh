#!/usr/bin/env bash
# vote_guard benchmark: vote_guard.cast_vote against the same rows written by
# one bare statement (floor), a careful PL/pgSQL function (plpgsql) and the
# client-side check-then-insert sequence (naive), with pgbench -M prepared on
# one throwaway cluster; then the per-call cost of the hashing functions and
# the memory of one backend calling cast_vote many times.  It only reports:
# there are no timed assertions.
#
#   bench/run.sh              # about 12 minutes
#   QUICK=1 bench/run.sh      # smoke run: 3 s per pgbench run, smaller N
#
# As root it first installs missing packages, builds, installs into a
# private copy of the PostgreSQL installation (as bench/scale.sh: it neither
# changes nor depends on the system's installed extension, and needs no
# lock), then runs as the unprivileged user "postgres" on a copy of the
# tree.  As another user the extension must already be installed.
#
# Environment: BENCH_SECONDS (per pgbench run; 10, QUICK 3), BENCH_WARMUP
# (seconds of warm-up before each run; 1), BENCH_ROUNDS (runs of every
# variant, interleaved; the tables show the median and the spread; 1),
# BENCH_MEM_N (cast_vote calls of
# the memory check; 1000000, QUICK 100000), BENCH_MICRO_N (rows of the
# hashing micro-benchmark; 1000000, QUICK 100000), BENCH_MEM_PGOPTIONS
# (PGOPTIONS for the memory check's session, e.g. "-c plan_cache_mode=
# force_generic_plan"; empty), BENCH_FK (whether the votes tables of plpgsql
# and naive have a foreign key to their entries: auto = as vote_guard.votes
# has one or not, 1 or 0), BENCH_PORT (55440), PG_MAJOR (15).  A part of the
# suite: BENCH_SYNC (synchronous_commit settings; "off on"),
# BENCH_WORKLOADS ("low hot claims"; claims: the hot entry with a capacity
# against the seeds' conditional UPDATE, and a sell-out run), BENCH_LOW_CLIENTS (client counts of the low
# contention workload; "1 8 32"), BENCH_EXTRAS (the hashing and memory
# checks; 1, or 0 to skip them), BENCH_CEILING (the ceiling variant: the
# vote's row alone, no counter; 1, or 0 to skip it), BENCH_VARIANTS (the
# variants to run, e.g. "cast_vote ceiling"; all), BENCH_SAMPLE (1: sample
# the backends' wait events every 10 ms during each run; 0), e.g.
#   BENCH_SYNC=off BENCH_WORKLOADS=low BENCH_LOW_CLIENTS=1 BENCH_EXTRAS=0 BENCH_ROUNDS=5 bench/run.sh
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
    defaults=(3 100000 100000)
else
    defaults=(10 1000000 1000000)
fi
BENCH_SECONDS=${BENCH_SECONDS:-${defaults[0]}}
BENCH_MEM_N=${BENCH_MEM_N:-${defaults[1]}}
BENCH_MICRO_N=${BENCH_MICRO_N:-${defaults[2]}}
BENCH_WARMUP=${BENCH_WARMUP:-1}
BENCH_ROUNDS=${BENCH_ROUNDS:-1}
BENCH_PORT=${BENCH_PORT:-55440}
BENCH_FK=${BENCH_FK:-auto}
BENCH_MEM_PGOPTIONS=${BENCH_MEM_PGOPTIONS:-}
BENCH_SYNC=${BENCH_SYNC:-off on}
BENCH_WORKLOADS=${BENCH_WORKLOADS:-low hot claims}
BENCH_LOW_CLIENTS=${BENCH_LOW_CLIENTS:-1 8 32}
BENCH_EXTRAS=${BENCH_EXTRAS:-1}
BENCH_CEILING=${BENCH_CEILING:-1}
BENCH_VARIANTS=${BENCH_VARIANTS:-}
BENCH_SAMPLE=${BENCH_SAMPLE:-0}

if [ "$(id -u)" = 0 ]; then
    "$src/test/install-deps.sh"
    echo "== build and install into a private copy of PostgreSQL $PG_MAJOR"
    make -C "$src" -s all
    BENCH_REVISION=$(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)
    work=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_bench.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    tar -C "$src" --exclude=.git -cf - . | tar -C "$work" -xf -
    # a private copy of the PostgreSQL installation (bench/private-install.sh)
    inst=$work/inst
    "$src/bench/private-install.sh" "$inst"
    chown -R postgres: "$work"
    status=0
    runuser -u postgres -- env PG_CONFIG="$inst$("$PG_CONFIG" --bindir)/pg_config" PATH="$PATH" QUICK="$QUICK" \
        BENCH_SECONDS="$BENCH_SECONDS" BENCH_WARMUP="$BENCH_WARMUP" BENCH_ROUNDS="$BENCH_ROUNDS" \
        BENCH_MEM_N="$BENCH_MEM_N" BENCH_MICRO_N="$BENCH_MICRO_N" \
        BENCH_PORT="$BENCH_PORT" BENCH_FK="$BENCH_FK" BENCH_MEM_PGOPTIONS="$BENCH_MEM_PGOPTIONS" BENCH_REVISION="$BENCH_REVISION" TMPDIR="${TMPDIR:-/tmp}" \
        BENCH_SYNC="$BENCH_SYNC" BENCH_WORKLOADS="$BENCH_WORKLOADS" BENCH_LOW_CLIENTS="$BENCH_LOW_CLIENTS" BENCH_EXTRAS="$BENCH_EXTRAS" \
        BENCH_CEILING="$BENCH_CEILING" BENCH_VARIANTS="$BENCH_VARIANTS" BENCH_SAMPLE="$BENCH_SAMPLE" \
        "$work/bench/run.sh" || status=$?
    exit $status
fi

bench=$src/bench
bindir=$("$PG_CONFIG" --bindir)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_bench_cluster.XXXXXX")
cleanup() {
    "$bindir/pg_ctl" -D "$tmp/data" -m fast stop >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT
started=$(date +%s)

NCONTESTS=100           # low contention: contests ...
NENTRIES=10             # ... of this many entries each
read -r -a LOW_CLIENTS <<<"$BENCH_LOW_CLIENTS"
HOT_CLIENTS=32
VARIANTS=(floor plpgsql naive cast_vote)
[ "$BENCH_CEILING" = 1 ] && VARIANTS+=(ceiling)
[ -n "$BENCH_VARIANTS" ] && read -r -a VARIANTS <<<"$BENCH_VARIANTS"
SETTINGS="shared_buffers=256MB max_connections=100 max_wal_size=4GB fsync=on"

"$bindir/initdb" -D "$tmp/data" -A trust -U "$(id -un)" --no-sync >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log"; exit 1; }
opts="-p $BENCH_PORT -k $tmp -c listen_addresses=''"
for s in $SETTINGS; do opts+=" -c $s"; done
"$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -o "$opts" start >/dev/null \
    || { cat "$tmp/server.log"; exit 1; }
export PGHOST=$tmp PGPORT=$BENCH_PORT PGUSER=$(id -un) PGDATABASE=bench
"$bindir/createdb" bench

q() { "$bindir/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
qv() { q -At -c "$1"; }

# ---------------------------------------------------------------- machine
echo "== vote_guard benchmark$([ "$QUICK" = 1 ] && echo ' (QUICK)')"
echo "machine:    $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)," \
     "$(awk '/^MemTotal/ {printf "%.1f GiB", $2 / 1048576}' /proc/meminfo) RAM," \
     "kernel $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg) at start"
so=$("$PG_CONFIG" --pkglibdir)/vote_guard.so
so_sum=$(md5sum <"$so")
echo "vote_guard: ${BENCH_REVISION:-$(git -C "$src" describe --always --dirty 2>/dev/null || echo unknown)}," \
     "installed $so (md5 ${so_sum%% *})"
echo "postgres:   $(qv 'SELECT version()')"
echo "openssl:    $(openssl version 2>/dev/null || echo unknown)"
echo "cluster:    $SETTINGS (unix socket only, on $BENCH_PORT)"
echo "runs:       pgbench -M prepared, ${BENCH_SECONDS}s each after ${BENCH_WARMUP}s warm-up," \
     "-j min(clients, $(nproc)), pgbench on the same machine, $BENCH_ROUNDS round(s) of every variant"

PGOPTIONS="-c bench.ncontests=$NCONTESTS -c bench.nentries=$NENTRIES" \
    q -o /dev/null -f "$bench/setup.sql"
if [ "$BENCH_FK" = auto ]; then
    BENCH_FK=$(qv "SELECT count(*) FROM pg_constraint WHERE conrelid = 'vote_guard.votes'::regclass AND contype = 'f'")
fi
if [ "$BENCH_FK" != 0 ]; then
    q -c 'ALTER TABLE bench_plpgsql.votes ADD FOREIGN KEY (contest_id, entry_id) REFERENCES bench_plpgsql.entries' \
      -c 'ALTER TABLE bench_naive.votes ADD FOREIGN KEY (contest_id, entry_id) REFERENCES bench_naive.entries'
fi
echo "variants:   floor (one INSERT ... ON CONFLICT DO NOTHING + counter UPDATE, no FK, no hashing)," \
     "plpgsql (SECURITY DEFINER function, pgcrypto hmac, 3 EXISTS, insert, counter update)," \
     "naive (5 client round trips), cast_vote$([ "$BENCH_CEILING" = 1 ] && echo ', ceiling (the INSERT of floor alone: no counter)');" \
     "plpgsql/naive votes->entries FK: $([ "$BENCH_FK" = 0 ] && echo no || echo yes)"
echo
IFS='|' read -r low_base low_count hot_id claim_id < <(qv 'SELECT low_base, low_count, hot_id, claim_id FROM bench.config')

results=$tmp/results.tsv
oddities=$tmp/oddities.txt
: >"$results"
: >"$oddities"
mkdir -p "$tmp/pgl"

# CPU jiffies: the machine's busy and total time, and what this benchmark used
# (the cluster's processes, those reaped by the postmaster, and this
# script's children: pgbench, psql)
cpu_snap() {
    local pm
    pm=$(head -n 1 "$tmp/data/postmaster.pid")
    # processes come and go while cat reads: ignore the ones gone
    { grep '^cpu ' /proc/stat; cat /proc/[0-9]*/stat 2>/dev/null || true; } |
        awk -v pm="$pm" -v me="$$" '
            $1 == "cpu" { busy = $2 + $3 + $4 + $7 + $8 + $9; total = busy + $5 + $6; next }
            { pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, a, " ")
              if (pid == pm) srv += a[12] + a[13] + a[14] + a[15]
              else if (a[2] == pm) srv += a[12] + a[13]
              else if (pid == me) own += a[12] + a[13] + a[14] + a[15] }
            END { print busy, total, srv + own, srv }'
}

# percentage of the machine's CPU time that other processes took between two
# snapshots (the second one: now, if not given)
others_pct() {
    local b0 t0 m0 b1 t1 m1
    read -r b0 t0 m0 _ <<<"$1"
    read -r b1 t1 m1 _ <<<"${2:-$(cpu_snap)}"
    awk -v b="$((b1 - b0))" -v t="$((t1 - t0))" -v m="$((m1 - m0))" \
        'BEGIN { o = (t > 0) ? 100 * (b - m) / t : 0; printf "%.0f\n", (o < 0 ? 0 : o) }'
}

# empty tables with the same statistics before every run (see bench.reset
# in setup.sql): fixed data set, VACUUM ANALYZE, empty again
reset() {
    q -c 'CALL bench.reset()' -c 'CALL bench.prime()'
    q -c 'VACUUM ANALYZE'
    q -c 'CALL bench.reset()'
}

# one pgbench run: pgb SYNC WORKLOAD VARIANT CLIENTS
pgb() {
    local sync=$1 workload=$2 variant=$3 clients=$4
    local script=$variant params jobs name=$3 out=$tmp/pgbench.out err=$tmp/pgbench.err rc=0
    if [ "$workload" = low ]; then
        params=(-D cbase="$low_base" -D ncontests="$low_count" -D nentries="$NENTRIES")
    elif [ "$workload" = claims ]; then
        # the hot entry without a capacity (cast_vote), with one (claim), and
        # the seeds' conditional UPDATE + INSERT on the same contest id
        params=(-D cbase="$claim_id" -D ncontests=1 -D nentries=1)
        [ "$variant" = cast_vote ] && params=(-D cbase="$hot_id" -D ncontests=1 -D nentries=1)
        [ "$variant" = claim ] && script=cast_vote
    else
        params=(-D cbase="$hot_id" -D ncontests=1 -D nentries=1)
        [ "$variant" = floor ] && name=floor_hot
    fi
    jobs=$(( clients < $(nproc) ? clients : $(nproc) ))
    local common=(-n -M prepared -c "$clients" -j "$jobs" "${params[@]}" -f "$bench/scripts/$script.sql")

    local t0=$SECONDS
    PGOPTIONS="-c synchronous_commit=$sync" "$bindir/pgbench" "${common[@]}" \
        -T "$BENCH_WARMUP" --random-seed=1 >/dev/null 2>&1 || true
    reset
    q -c CHECKPOINT
    rm -f "$tmp"/pgl/*
    local snap lsn0 sampler=
    lsn0=$(qv 'SELECT pg_current_wal_lsn()')
    if [ "$BENCH_SAMPLE" = 1 ]; then
        # what the backends wait for, every 10 ms, one short transaction
        # each (a sampler that held a snapshot would keep the counters'
        # dead row versions from being pruned): CPU = running
        echo "SELECT coalesce(wait_event_type || ':' || wait_event, 'CPU') FROM pg_stat_activity" \
             "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \\watch 0.01" |
            "$bindir/psql" -X -A -t -q >"$tmp/waits.raw" 2>/dev/null &
        sampler=$!
    fi
    snap=$(cpu_snap)
    PGOPTIONS="-c synchronous_commit=$sync" "$bindir/pgbench" "${common[@]}" \
        -T "$BENCH_SECONDS" --random-seed=42 -l --log-prefix="$tmp/pgl/log" >"$out" 2>"$err" || rc=$?
    if [ -n "$sampler" ]; then
        kill -TERM "$sampler" 2>/dev/null || true
        wait "$sampler" || true
        grep -v '^$' "$tmp/waits.raw" | sort | uniq -c | sort -rn |
            awk '{n[NR] = $1; w[NR] = $2; t += $1} END {for (i = 1; i <= NR; i++) printf "%s %.1f\n", w[i], 100 * n[i] / t}' \
            >"$tmp/waits.txt"
    fi

    local tps txns failed errors
    tps=$(sed -n 's/^tps = \([0-9.]*\) .*/\1/p' "$out" | tail -n 1)
    txns=$(sed -n 's/^number of transactions actually processed: \([0-9]*\).*/\1/p' "$out")
    failed=$(sed -n 's/^number of failed transactions: \([0-9]*\).*/\1/p' "$out")
    errors=$(( $(grep -c -E 'aborted|ERROR|error' "$err" || true) + ${failed:-0} ))
    if [ "$rc" != 0 ] || [ "$errors" != 0 ]; then
        { echo "sync=$sync $workload $name c=$clients: pgbench exit $rc, $errors error line(s):"
          head -n 5 "$err"; } >>"$oddities"
    fi
    # mean and p99 of the per-transaction latencies (third column, in us)
    local lat mean p99
    lat=$(cat "$tmp"/pgl/log.* 2>/dev/null | awk '$3 ~ /^[0-9]+$/ {print $3}' | sort -n |
          awk '{v[NR] = $1; s += $1}
               END {if (NR == 0) {print "- -"; exit}
                    i = int(NR * 0.99); if (i < NR * 0.99) i++;
                    printf "%.3f %.3f\n", s / NR / 1000, v[i] / 1000}' || echo "- -")
    read -r mean p99 <<<"$lat"
    # the server's CPU time per transaction (its processes, the backends
    # that ended included; not pgbench's), in microseconds
    local after others srvus
    after=$(cpu_snap)
    others=$(others_pct "$snap" "$after")
    srvus=$(awk -v a="$snap" -v b="$after" -v n="${txns:-0}" -v hz="$(getconf CLK_TCK)" \
        'BEGIN { split(a, x, " "); split(b, y, " ")
                 if (n > 0) printf "%.0f\n", (y[4] - x[4]) * 1e6 / hz / n; else print "-" }')
    # WAL bytes per transaction over the run (the checkpoint before it
    # makes every variant pay the same first full-page images)
    local walb
    walb=$(qv "SELECT CASE WHEN ${txns:-0} > 0 THEN round((pg_current_wal_lsn() - '$lsn0')::numeric / ${txns:-0}) END")
    local rows drift dups
    IFS='|' read -r rows drift dups < <(qv "SELECT * FROM bench.check('$variant')") || true
    [ "$variant" = ceiling ] && drift=-
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$sync" "$workload" "$name" "$clients" \
        "${tps:--}" "$mean" "$p99" "${txns:-0}" "$rows" "$drift" "$dups" "$errors" "$others" "$srvus" "${walb:--}" >>"$results"
    printf '   %-9s c=%-2s %10.0f tps  (%d s with warm-up and reset)\n' "$name" "$clients" "${tps:-0}" $((SECONDS - t0))
    if [ -n "$sampler" ]; then
        printf '      waits: %s\n' "$(head -n 6 "$tmp/waits.txt" | awk '{printf "%s%s %s%%", (NR > 1 ? ", " : ""), $1, $2}')"
        printf '%s\t%s\t%s\t%s\t%s\n' "$sync" "$workload" "$name" "$clients" \
            "$(awk '{printf "%s%s %s%%", (NR > 1 ? ", " : ""), $1, $2}' "$tmp/waits.txt")" >>"$tmp/waits.tsv"
    fi
}

print_table() {
    local sync=$1 workload=$2 title
    if [ "$workload" = low ]; then
        title="low contention: $low_count contests x $NENTRIES entries, new voters"
    elif [ "$workload" = claims ]; then
        title="limited claims: the hot entry with a capacity of 10^9 (claim), without (cast_vote), and the seeds' recipe; x floor reads x seeds, x plpgsql reads x cast_vote"
    else
        title="hot entry: one contest, one entry, new voters"
    fi
    echo
    echo "-- synchronous_commit=$sync, $title"
    # one line per variant and client count: the median of its rounds (tps,
    # mean, p99; ratios of the medians), the spread of its tps over the
    # rounds, rows/drift/dups/errors summed, the largest others%
    awk -F'\t' -v sync="$sync" -v wl="$workload" '
        function median(list,   v, k, m, i, j, t) {
            m = split(list, v, " ")
            for (i = 2; i <= m; i++)
                for (j = i; j > 1 && v[j - 1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j - 1]; v[j - 1] = t }
            if (m == 0) return "-"
            return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
        }
        function spread(list,   v, k, m, lo, hi, md) {
            m = split(list, v, " ")
            if (m < 2) return "-"
            lo = hi = v[1] + 0
            for (k = 2; k <= m; k++) { if (v[k] + 0 < lo) lo = v[k] + 0; if (v[k] + 0 > hi) hi = v[k] + 0 }
            md = median(list)
            return (md + 0 > 0) ? sprintf("%.0f", 100 * (hi - lo) / md) : "-"
        }
        function ratio(a, b) { return (b + 0 > 0 && a + 0 > 0) ? sprintf("%.2f", a / b) : "-" }
        function ms(x) { return (x == "-") ? x : sprintf("%.3f", x) }
        $1 == sync && $2 == wl {
            key = $3 "\t" $4
            if (!(key in tps)) { n++; order[n] = key }
            tps[key] = tps[key] " " $5; mean[key] = mean[key] " " $6; p99[key] = p99[key] " " $7
            if ($14 != "-") cpu[key] = cpu[key] " " $14
            if ($15 != "" && $15 != "-") wal[key] = wal[key] " " $15
            txns[key] += $8; rows[key] += $9; if ($10 == "-") nocount[key] = 1; else drift[key] += $10; dups[key] += $11; errs[key] += $12
            if (!(key in others) || $13 + 0 > others[key] + 0) others[key] = $13
            rounds[key]++
        }
        END {
            for (i = 1; i <= n; i++) {
                split(order[i], k, "\t")
                med[order[i]] = median(tps[order[i]])
                if (k[1] ~ /^floor/ && wl != "claims") floor[k[2]] = med[order[i]]
                if (k[1] == "plpgsql" && wl != "claims") plpg[k[2]] = med[order[i]]
                if (k[1] == "ceiling") ceil[k[2]] = med[order[i]]
                # the claims workload: relative to the seeds and to cast_vote
                if (k[1] == "seeds" && wl == "claims") floor[k[2]] = med[order[i]]
                if (k[1] == "cast_vote" && wl == "claims") plpg[k[2]] = med[order[i]]
            }
            printf "%-10s %7s %10s %9s %9s %7s %7s %9s %11s %10s %7s %7s %9s %6s %5s %6s %7s\n", "variant", "clients", "tps",
                   "mean ms", "p99 ms", "cpu us", "WAL B", "x floor", "x plpgsql", "x ceiling", "rounds", "spread%", "rows/tx", "drift", "dups",
                   "errors", "others%"
            for (i = 1; i <= n; i++) {
                key = order[i]; split(key, k, "\t")
                printf "%-10s %7s %10.0f %9s %9s %7s %7s %9s %11s %10s %7s %7s %9s %6s %5s %6s %7s\n", k[1], k[2], med[key],
                       ms(median(mean[key])), ms(median(p99[key])), median(cpu[key]), median(wal[key]), ratio(med[key], floor[k[2]]),
                       ratio(med[key], plpg[k[2]]), ratio(med[key], ceil[k[2]]), rounds[key], spread(tps[key]),
                       (txns[key] > 0 ? sprintf("%.4f", rows[key] / txns[key]) : "-"), (key in nocount ? "-" : drift[key] + 0), dups[key],
                       errs[key], others[key]
            }
        }' "$results"
}

tables=$tmp/tables.txt
: >"$tables"
for sync in $BENCH_SYNC; do
    for workload in $BENCH_WORKLOADS; do
        echo "== synchronous_commit=$sync, workload $workload ($(( $(date +%s) - started )) s so far)"
        if [ "$workload" = low ]; then clients_list=("${LOW_CLIENTS[@]}"); else clients_list=("$HOT_CLIENTS"); fi
        variants=("${VARIANTS[@]}")
        [ "$workload" = claims ] && variants=(claim seeds cast_vote)
        for clients in "${clients_list[@]}"; do
            # rounds interleave the variants, so that a machine that slows
            # down or speeds up meanwhile affects them alike
            for round in $(seq 1 "$BENCH_ROUNDS"); do
                [ "$BENCH_ROUNDS" -gt 1 ] && echo "   round $round of $BENCH_ROUNDS"
                for variant in "${variants[@]}"; do
                    pgb "$sync" "$workload" "$variant" "$clients"
                done
            done
        done
        print_table "$sync" "$workload" | tee -a "$tables"
        echo
    done
done

# ---------------------------------------------------------------- sell-out
# the claim entry with a capacity of about half of what a run of the claim
# variant sold: throughput before the sell-out, its moment, and the answers
# after it (all entry_full)
case " $BENCH_WORKLOADS " in *" claims "*)
    sync=on
    case " $BENCH_SYNC " in *" on "*) ;; *) sync=${BENCH_SYNC%% *} ;; esac
    sold=$(awk -F'\t' -v s="$sync" '$1 == s && $2 == "claims" && $3 == "claim" { n++; t += $8 } END { if (n) printf "%d\n", t / n / 2 }' "$results")
    sold=${sold:-1000}
    [ "$sold" -gt 0 ] || sold=1
    echo "== sell-out: synchronous_commit=$sync, $HOT_CLIENTS clients, capacity $sold (about half of a claim run), ${BENCH_SECONDS}s"
    reset
    qv "SELECT vote_guard.set_entry_capacity($claim_id, 1, $sold)" >/dev/null
    rm -f "$tmp"/pgl/*
    PGOPTIONS="-c synchronous_commit=$sync" "$bindir/pgbench" -n -M prepared -c "$HOT_CLIENTS" \
        -j "$(( HOT_CLIENTS < $(nproc) ? HOT_CLIENTS : $(nproc) ))" \
        -D cbase="$claim_id" -D ncontests=1 -D nentries=1 -f "$bench/scripts/cast_vote.sql" \
        -T "$BENCH_SECONDS" --random-seed=42 -l --log-prefix="$tmp/pgl/log" >"$tmp/pgbench.out" 2>"$tmp/pgbench.err" || true
    IFS='|' read -r kept sellout < <(qv "SELECT count(*), extract(epoch FROM max(created_at)) FROM vote_guard.votes WHERE contest_id = $claim_id")
    # pgbench's log: completion time (epoch s, us) and latency (us) of each transaction
    p99=$(cat "$tmp"/pgl/log.* | awk -v so="$sellout" '$5 + $6 / 1e6 > so { print $3 / 1000 }' | sort -n |
          awk '{ v[NR] = $1 } END { if (NR == 0) print "-"; else { i = int(NR * 0.99); if (i < 1) i = 1; printf "%.3f\n", v[i] } }')
    cat "$tmp"/pgl/log.* | awk -v so="$sellout" -v kept="$kept" -v cap="$sold" -v p99="$p99" '
        { end = $5 + $6 / 1e6; start = end - $3 / 1e6
          if (first == "" || start < first) first = start
          if (end > last) last = end
          if (end <= so) nb++; else { na++; sa += $3 / 1000 } }
        END {
          printf "   sold %d of %d places (%s)\n", kept, cap, (kept == cap ? "exact" : "NOT EXACT")
          printf "   before the sell-out: %.1f s, %d transactions, %.0f tps\n", so - first, nb, nb / (so - first)
          if (na > 0)
            printf "   after it:            %.1f s, %d transactions (entry_full), %.0f tps, mean %.3f ms, p99 %s ms\n",
                   last - so, na, na / (last - so), sa / na, p99
        }' | tee -a "$tables"
    ;;
esac

if [ "$BENCH_EXTRAS" = 1 ]; then
# ---------------------------------------------------------------- hashing
echo "== hashing functions, per call ($BENCH_MICRO_N rows; $(( $(date +%s) - started )) s so far)"
reset
snap=$(cpu_snap)
q -v n="$BENCH_MICRO_N" -v contest="$low_base" -f "$bench/micro.sql" | tee "$tmp/micro.txt"
echo "other processes took $(others_pct "$snap")% of the machine's CPU meanwhile"

# ---------------------------------------------------------------- memory
echo "== memory: one backend, $BENCH_MEM_N cast_vote calls in one statement${BENCH_MEM_PGOPTIONS:+ (PGOPTIONS $BENCH_MEM_PGOPTIONS)} ($(( $(date +%s) - started )) s so far)"
reset
snap=$(cpu_snap)
PGOPTIONS="$BENCH_MEM_PGOPTIONS" q -v n="$BENCH_MEM_N" -f "$bench/memcheck.sql" >"$tmp/mem.txt" 2>&1 &
mempsql=$!
pid=
for _ in $(seq 1 100); do
    pid=$(qv "SELECT pid FROM pg_stat_activity WHERE application_name = 'vg_memcheck'")
    [ -n "$pid" ] && break
    sleep 0.1
done
peak=0
while kill -0 "$mempsql" 2>/dev/null; do
    if [ -n "$pid" ]; then
        kb=$(awk '/^RssAnon:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
        [ -n "$kb" ] && [ "$kb" -gt "$peak" ] && peak=$kb
    fi
    sleep 0.2
done
memrc=0
wait "$mempsql" || memrc=$?
cat "$tmp/mem.txt"
echo "other processes took $(others_pct "$snap")% of the machine's CPU meanwhile"
echo "RssAnon peak while the statements ran (sampled every 0.2 s): $((peak / 1024)) MB"
[ "$memrc" = 0 ] || echo "memory check: psql exit $memrc" >>"$oddities"
# fresh statistics first: verify() plans its lookups once per query
q -c 'ANALYZE'
memdrift=$(qv "SELECT coalesce(sum(abs(v.drift)), 0) FROM vote_guard.contests c, LATERAL vote_guard.verify(c.id) v")
echo "verify() drift after the memory check: $memdrift"
[ "$memdrift" = 0 ] || echo "memory check: verify() drift $memdrift" >>"$oddities"
fi

# ---------------------------------------------------------------- summary
busy=$(awk -F'\t' '$13 >= 10' "$results" | wc -l)
if [ "$busy" -gt 0 ]; then
    echo "$busy of $(wc -l <"$results") pgbench runs shared the machine: other processes took 10% or more of its CPU (others% column)" >>"$oddities"
fi
if [ "$(md5sum <"$so")" != "$so_sum" ]; then
    echo "$so was replaced while the benchmark ran (another make install?): results mix two builds" >>"$oddities"
fi
if grep -E -q 'ERROR|FATAL|PANIC' "$tmp/server.log"; then
    { echo "server log:"; grep -E 'ERROR|FATAL|PANIC' "$tmp/server.log" | sort | uniq -c | sort -rn | head -n 10; } >>"$oddities"
fi
echo
echo "== all tables"
cat "$tables"
if [ -s "$tmp/waits.tsv" ]; then
    echo
    echo "== what the client backends waited for (BENCH_SAMPLE=1: share of 10 ms samples, per run)"
    awk -F'\t' '{printf "%-4s %-4s %-10s c=%-3s %s\n", $1, $2, $3, $4, $5}' "$tmp/waits.tsv"
fi
echo
echo "tps: transactions per second (pgbench, without connection time); mean and p99: latency per"
echo "transaction from pgbench's per-transaction log; cpu us: CPU time of the server's processes per"
echo "transaction (backends, WAL writer and the rest; not pgbench's), user and system; x floor,"
echo "x plpgsql: tps relative to that variant at the same client count (floor_hot in the hot table);"
echo "rows/tx: vote rows written per transaction (1 = every call was a new vote); drift: counters"
echo "minus vote rows (- for ceiling, which keeps no counter); dups: voters stored twice (only naive"
echo "can); errors: failed transactions and client errors; others%: share of the machine's CPU time"
echo "that processes outside this benchmark took during the run."
echo
if [ -s "$oddities" ]; then
    echo "== oddities"
    cat "$oddities"
else
    echo "== oddities: none (no pgbench errors, no drift, no server errors)"
fi
echo "total time: $(( $(date +%s) - started )) s, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end"
