#!/usr/bin/env bash
# vote_guard: run every test suite (pg_regress, isolation, TAP with the
# concurrency stress) against throwaway clusters that this script creates and
# removes.
#
#   test/run-all.sh
#
# As root it first installs missing packages, builds and installs the
# extension, then runs the suites as the unprivileged user "postgres" (the
# server refuses to run as root) on a copy of the tree.  As another user the
# extension must already be installed (make install).
#
# As root the regression suite then runs a second time against a build with
# the EVP_MAC implementation of HMAC-SHA-256 (-DVG_HMAC_EVP), then the
# "package" suite (test/package.sh, as root: the Debian package built and
# tried in a clean Debian 12 chroot), and the last line sums all runs.
#
# The suite "clients" (test/clients/run.sh) runs the client examples
# (examples/) under concurrent HTTP requests, directly and through PgBouncer.
#
# The suite "layers" (test/layers.sh) checks that no C file calls up.
#
# The suite "upgrade" (test/upgrade/update.pl) checks that the released
# scripts are unchanged, updates a filled database from every released
# version with ALTER EXTENSION UPDATE and compares its catalog with a fresh
# install's.  The suite "pg_upgrade" (test/upgrade/pg_upgrade.pl, not run by
# default) runs pg_upgrade from an older major (VG_OLD_MAJOR, default 15) to
# PG_MAJOR with votes in place; as root this script first builds that major
# (test/old-major.sh, kept once built) and vote_guard for it.
#
# The suite "citus" (test/citus/) runs a Citus cluster of three servers (a
# fourth joins during the suite) on
# ports VG_TEST_PORT+1 to +4; as root this script first builds and installs
# Citus from ../shared/citus/ beside the checkout (test/citus/build.sh,
# cached).  A Citus that cannot be built or started is a failure.
#
# Environment: PG_MAJOR (default 15), VG_TEST_PORT (default 55432; PgBouncer's
# socket takes the next number), VG_SUITES (default "layers regress isolation
# tap upgrade clients fuzz libfuzzer citus", and "package" as root), VG_HTTP_PORT (default 18080: the
# examples listen on 127.0.0.1, on it and the next 7 ports), VG_SERVER_ENV
# (VAR=value words put into the server's environment only: test/sanitize.sh
# preloads the sanitizer runtime with it), VG_SERVER_LOG (a file to copy the
# server's log to at the end).
#
# The fuzz suite takes VG_FUZZ_SEED and VG_FUZZ_CALLS (test/fuzz/fuzz.py), the
# libfuzzer suite VG_LIBFUZZER_SECONDS and VG_LIBFUZZER_SEED
# (test/fuzz/libfuzzer/run.sh).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
default_suites="layers regress isolation tap upgrade clients fuzz libfuzzer citus"
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
port=${VG_TEST_PORT:-55432}

if [ "$(id -u)" = 0 ]; then
    suites=${VG_SUITES:-$default_suites package}
    # the package suite runs here, as root; the others as postgres
    package=0
    case " $suites " in *" package "*) package=1 ;; esac
    export VG_SUITES
    VG_SUITES=$(echo " $suites " | sed 's/ package / /g; s/^ *//; s/ *$//')
    if [ "$package" = 1 ]; then
        # what test/package.sh needs: the build dependencies of debian/control, debootstrap
        "$src/test/install-deps.sh" python3-psycopg clang libclang-rt-dev \
            build-essential debhelper dpkg-dev postgresql-server-dev-all debootstrap python3
    else
        # the fuzz suite (psycopg) and the libfuzzer suite (clang's fuzzer runtime)
        "$src/test/install-deps.sh" python3-psycopg clang libclang-rt-dev
    fi
    build() {
        make -C "$src" -s clean
        make -C "$src" -s all "$@"
        make -C "$src" -s install "$@"
    }
    # the pg_upgrade suite: an older major beside this one
    # (test/old-major.sh), with vote_guard built for it too
    old_build=0
    case " $VG_SUITES " in
        *" pg_upgrade "*)
            old_major=${VG_OLD_MAJOR:-15}
            echo "== PostgreSQL $old_major beside $PG_MAJOR for the pg_upgrade suite (test/old-major.sh)"
            if [ "$old_major" -ge "$PG_MAJOR" ]; then
                echo "run-all: pg_upgrade needs an older major than PG_MAJOR=$PG_MAJOR (VG_OLD_MAJOR=$old_major)" >&2
                old_build=1
            elif VG_OLD_INSTALL=$("$src/test/old-major.sh" "$old_major"); then
                export VG_OLD_INSTALL
                echo "== build and install (PostgreSQL $old_major, $VG_OLD_INSTALL)"
                build PG_CONFIG="$VG_OLD_INSTALL/bin/pg_config" || old_build=1
            else
                old_build=1
            fi ;;
    esac
    echo "== build and install (PostgreSQL $PG_MAJOR)"
    build
    citus_build=0
    case " $VG_SUITES " in
        *" citus "*)
            echo "== Citus (test/citus/build.sh)"
            "$src/test/citus/build.sh" || citus_build=1 ;;
    esac
    work=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_test.XXXXXX")
    trap 'rm -rf "$work"' EXIT
    # a clean copy of the tree the unprivileged user can write into
    tar -C "$src" --exclude=.git -cf - . | tar -C "$work" -xf -
    touch "$work/counts"
    # a Citus that did not build is one failure (its suite then fails too)
    [ "$citus_build" = 0 ] || echo "0 1" >>"$work/counts"
    # and so is an older major that did not build (the suite then fails too)
    [ "$old_build" = 0 ] || echo "0 1" >>"$work/counts"
    chown -R postgres: "$work"
    status=0
    # run the suites as postgres; a run that stops before its summary line
    # counts as one failure
    as_postgres() {
        local before rc=0
        before=$(wc -l <"$work/counts")
        runuser -u postgres -- env PG_CONFIG="$PG_CONFIG" VG_TEST_PORT="$port" \
            VG_OLD_INSTALL="${VG_OLD_INSTALL:-}" \
            PATH="$PATH" VG_COUNTS="$work/counts" "$@" "$work/test/run-all.sh" || rc=$?
        if [ "$rc" != 0 ]; then
            status=$rc
            [ "$(wc -l <"$work/counts")" != "$before" ] || echo "0 1" >>"$work/counts"
        fi
    }
    if [ -n "$VG_SUITES" ]; then
        as_postgres
        # HMAC-SHA-256 has a second implementation, for an OpenSSL without its
        # deprecated SHA-256 functions (vg_crypto.c): the regression suite again
        # with that one, then the default build back in place
        echo "== build and install with -DVG_HMAC_EVP"
        build PG_CPPFLAGS=-DVG_HMAC_EVP
        as_postgres VG_SUITES=regress
        build
    fi
    if [ "$package" = 1 ]; then
        echo "== package"
        rc=0
        VG_TEST_PORT="$port" "$src/test/package.sh" 2>&1 | tee "$work/package.log" || rc=$?
        ok=$(grep -Ec '^ok [0-9]+ ' "$work/package.log" || true)
        bad=$(grep -Ec '^not ok [0-9]+ ' "$work/package.log" || true)
        if [ "$rc" != 0 ]; then
            status=$rc
            [ "$bad" != 0 ] || bad=1
        fi
        echo "$ok $bad" >>"$work/counts"
    fi
    echo
    awk '{ p += $1; f += $2 } END { printf "vote_guard tests: %d passed, %d failed\n", p, f }' \
        "$work/counts"
    exit $status
fi

bindir=$("$PG_CONFIG" --bindir)
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_cluster.XXXXXX")
cleanup() {
    "$bindir/pg_ctl" -D "$tmp/data" -m immediate stop >/dev/null 2>&1 || true
    [ -z "${VG_SERVER_LOG:-}" ] || cp "$tmp/server.log" "$VG_SERVER_LOG" || true
    rm -rf "$tmp"
}
trap cleanup EXIT

echo "== throwaway cluster (PostgreSQL $("$bindir/postgres" -V | awk '{print $3}'))"
"$bindir/initdb" -D "$tmp/data" -A trust -U "$(id -un)" -E UTF8 --locale=C.UTF-8 --no-sync \
    >"$tmp/initdb.log" 2>&1 \
    || { cat "$tmp/initdb.log"; exit 1; }
# shellcheck disable=SC2086 # VG_SERVER_ENV is a list of words
env ${VG_SERVER_ENV:-} "$bindir/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w \
    -o "-p $port -k $tmp -c listen_addresses='' -c max_connections=150 -c fsync=off" \
    start >/dev/null || { cat "$tmp/server.log"; exit 1; }
export PGHOST=$tmp PGPORT=$port PGUSER=$(id -un)

cd "$src"
passed=0
failed=0
suites_failed=()

# Run one suite; count its tests from pg_regress' or prove's output.
run_suite() {
    local name=$1; shift
    local log="$tmp/$name.log" rc=0
    echo "== $name"
    "$@" >"$log" 2>&1 || rc=$?
    grep -E '^(test |ok |not ok |    |t/|test/t/|Files=|Result:|All tests|# |layers: )|tests? (passed|failed)' "$log" || true
    local ok bad
    if [ "$name" = layers ]; then
        ok=$([ "$rc" = 0 ] && echo 1 || echo 0)
        bad=$([ "$rc" = 0 ] && echo 0 || echo 1)
    elif [ "$name" = tap ] || [ "$name" = upgrade ] || [ "$name" = pg_upgrade ]; then
        ok=$(sed -n 's/^Files=[0-9]*, Tests=\([0-9]*\),.*/\1/p' "$log" | tail -n 1)
        ok=${ok:-0}
        bad=$( (grep -Eo 'Failed [0-9]+/[0-9]+ subtests' "$log" || true) |
               awk -F'[ /]' '{s+=$2} END {print s+0}')
        ok=$((ok - bad))
    else
        ok=$(grep -Ec '^(ok [0-9]+ +[-+]|test .*\.\.\. ok)' "$log" || true)
        bad=$(grep -Ec '^(not ok [0-9]+|test .*\.\.\. FAILED)' "$log" || true)
    fi
    if [ "$rc" != 0 ] && [ "$bad" = 0 ]; then
        bad=1
    fi
    passed=$((passed + ok))
    failed=$((failed + bad))
    if [ "$rc" != 0 ]; then
        suites_failed+=("$name")
        for diffs in regression.diffs test/isolation/regression.diffs test/citus/regression.diffs \
                     test/citus/isolation/regression.diffs; do
            if [ -s "$diffs" ]; then echo "-- $diffs"; head -n 200 "$diffs" || true; fi
        done
        [ "$name" = tap ] && tail -n 60 "$log"
        if [ -d tmp_check/log ]; then
            find tmp_check/log -name 'regress_log_*' | while read -r f; do
                echo "-- $f"; tail -n 40 "$f"; done
        fi
    fi
    return 0
}

mk=(make -s installcheck)
for suite in ${VG_SUITES:-$default_suites}; do
    case $suite in
        layers)    run_suite layers    ./test/layers.sh ;;
        regress)   run_suite regress   "${mk[@]}" ISOLATION= TAP_TESTS= ;;
        isolation) run_suite isolation "${mk[@]}" REGRESS= TAP_TESTS= ;;
        tap)       run_suite tap       "${mk[@]}" REGRESS= ISOLATION= ;;
        upgrade)   run_suite upgrade   "${mk[@]}" REGRESS= ISOLATION= PROVE_TESTS=test/upgrade/update.pl ;;
        pg_upgrade) run_suite pg_upgrade "${mk[@]}" REGRESS= ISOLATION= PROVE_TESTS=test/upgrade/pg_upgrade.pl ;;
        clients)   run_suite clients   test/clients/run.sh ;;
        citus)     run_suite citus     test/citus/run.sh "$((port + 1))" ;;
        package)   echo "the package suite runs as root (test/package.sh)" >&2; exit 2 ;;
        fuzz)      run_suite fuzz      /usr/bin/python3 test/fuzz/fuzz.py ;;
        libfuzzer) run_suite libfuzzer test/fuzz/libfuzzer/run.sh ;;
        *) echo "unknown suite: $suite" >&2; exit 2 ;;
    esac
done

echo
if [ ${#suites_failed[@]} -gt 0 ]; then
    echo "failed suites: ${suites_failed[*]}"
fi
echo "vote_guard tests: $passed passed, $failed failed"
[ -n "${VG_COUNTS:-}" ] && echo "$passed $failed" >>"$VG_COUNTS"
[ "$failed" = 0 ]
