#!/usr/bin/env bash
# vote_guard: the regression and isolation suites (and the fuzz suite when
# there is one) against a build with AddressSanitizer and
# UndefinedBehaviorSanitizer; fails on any sanitizer report.
#
#   test/sanitize.sh          # as root; about a minute
#
# It builds vote_guard with
#     -fsanitize=address,undefined -fno-sanitize-recover=all -fno-wrapv
# and installs it over the shared install, runs test/run-all.sh's suites (as
# the user postgres, on a copy of the tree) against a throwaway cluster whose
# postmaster, and so every backend, has gcc's libasan and libubsan preloaded
# (the server itself is not instrumented: a module built with ASan needs its
# runtime loaded first), and on exit, also on failure, builds and installs
# the normal build again.  The install replaces the one every test run uses:
# on a shared machine run it under the same lock as test/run-all.sh.
#
# PGXS compiles with -fwrapv (PostgreSQL relies on wrapping signed
# arithmetic), which makes signed overflow defined and so invisible to UBSan;
# -fno-wrapv, given after it, puts vote_guard's own signed arithmetic under
# the check (PostgreSQL's inline functions compiled into it too).
#
# The sanitizers halt the process at the first report; ASan writes it into
# the run's temporary directory (log_path), UBSan into the server's log (a
# UBSan linked with ASan ignores log_path).  The script prints every report
# and exits 1 if there is any, or if a suite failed.  Its last line is in
# run-all.sh's form, the absence of reports counted as one more test.
# detect_leaks=0: PostgreSQL does not free its memory at process exit, by
# design.  ASan does not see inside palloc'd chunks (memory contexts carve
# them from large blocks); valgrind is the tool for that
# (bench/memcheck.sql).
#
# Environment: PG_MAJOR (default 15), VG_TEST_PORT (default 55432),
# VG_SUITES (default "regress isolation", and "fuzz" when run-all.sh has it).
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
PG_MAJOR=${PG_MAJOR:-15}
export PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
port=${VG_TEST_PORT:-55432}
suites=${VG_SUITES:-regress isolation}
# the fuzz suite, once test/run-all.sh has one
[ -n "${VG_SUITES:-}" ] || ! grep -q '^ *fuzz)' "$src/test/run-all.sh" || suites="$suites fuzz"

if [ "$(id -u)" != 0 ]; then
    echo "sanitize: run as root (it installs the extension)" >&2
    exit 1
fi
start=$(date +%s)
"$src/test/install-deps.sh" libasan8 libubsan1

san="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer -fno-wrapv"
# gcc 12 sees, through the instrumentation, explicit_bzero() of a whole
# VgHmacCtx (vg_crypto.c) as a write into its first member, a bool
# (-Wstringop-overflow, an error under -Werror); ASan checks those writes
# at run time instead
san+=" -Wno-stringop-overflow"
asan=$(gcc -print-file-name=libasan.so)
ubsan=$(gcc -print-file-name=libubsan.so)
for lib in "$asan" "$ubsan"; do
    [ -e "$lib" ] || { echo "sanitize: $lib not found" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_sanitize.XXXXXX")
restore() {
    echo "== restore the normal build and install"
    make -C "$src" -s clean
    make -C "$src" -s all
    make -C "$src" -s install
    rm -rf "$work"
    echo "sanitize: $(( $(date +%s) - start )) s in all"
}
trap restore EXIT

echo "== build and install with $san"
make -C "$src" -s clean
make -C "$src" -s all COPT="$san"
make -C "$src" -s install COPT="$san"
# the module really is instrumented
nm -D "$src/vote_guard.so" | grep __asan_report >/dev/null || { echo "sanitize: no ASan in vote_guard.so" >&2; exit 1; }

tar -C "$src" --exclude=.git -cf - . | tar -C "$work" -xf -
mkdir "$work/reports"
# A preloaded ASan initialises itself at the first call it intercepts, and
# with PostgreSQL's libraries that call comes from a constructor holding a
# glibc lock (libgpg-error's bindtextdomain(), p11-kit's newlocale()); the
# initialisation looks up swift_demangle, the failed dlsym() formats its
# message with gettext, which takes the same lock, and the server hangs at
# its start.  A swift_demangle of our own (never called: no Swift names
# here) makes the lookup succeed.
printf '%s\n' '#include <stddef.h>' \
    'char *swift_demangle(const char *, size_t, char *, size_t *, unsigned);' \
    'char *swift_demangle(const char *n, size_t l, char *o, size_t *ol, unsigned f) { return NULL; }' \
    >"$work/swift_demangle.c"
gcc -shared -fPIC -o "$work/swift_demangle.so" "$work/swift_demangle.c"
rm "$work/swift_demangle.c"
chown -R postgres: "$work"
opts="detect_leaks=0:halt_on_error=1:abort_on_error=1:disable_coredump=1:print_stacktrace=1"
server_env="LD_PRELOAD=$asan:$ubsan:$work/swift_demangle.so"
server_env+=" ASAN_OPTIONS=$opts:log_path=$work/reports/asan"
server_env+=" UBSAN_OPTIONS=$opts"

echo "== suites: $suites"
rc=0
touch "$work/counts"
chown postgres: "$work/counts"
runuser -u postgres -- env PG_CONFIG="$PG_CONFIG" VG_TEST_PORT="$port" PATH="$PATH" \
    VG_SUITES="$suites" VG_SERVER_ENV="$server_env" VG_COUNTS="$work/counts" \
    VG_SERVER_LOG="$work/server.log" \
    "$work/test/run-all.sh" || rc=$?

reports=$(find "$work/reports" -type f | sort)
n=$(printf '%s' "$reports" | grep -c . || true)
for f in $reports; do
    echo "-- sanitizer report $(basename "$f")"
    cat "$f"
done
# UBSan, linked with ASan, writes to stderr whatever log_path says: the
# server's log
ub=$(grep -c -E 'runtime error:|(Address|UndefinedBehavior|Leak)Sanitizer' "$work/server.log" 2>/dev/null || true)
if [ "${ub:-0}" != 0 ]; then
    echo "-- sanitizer reports in the server's log"
    grep -E -A 20 'runtime error:|(Address|UndefinedBehavior|Leak)Sanitizer' "$work/server.log" | head -n 200
    n=$((n + ub))
fi
echo "sanitizer reports: $n"
# the suites' counts and the reports as one more test, in run-all.sh's form
last=$(tail -n 1 "$work/counts")
read -r p f <<<"${last:-0 1}"
if [ "$n" = 0 ]; then p=$((p + 1)); else f=$((f + 1)); fi
[ "$rc" = 0 ] || [ "$f" != 0 ] || f=1
echo "vote_guard tests: $p passed, $f failed"
[ "$n" = 0 ] && [ "$rc" = 0 ]
