#!/usr/bin/env bash
# vote_guard: build and test the committed tree against PostgreSQL majors
# other than this machine's, each inside a Debian chroot made by debootstrap.
#
#   test/other-majors.sh 17 18
#
# Run as root on a Debian host that reaches Debian's archive.  For each major
# on the command line it makes (or reuses) a minbase chroot of the suite that
# ships that major, copies the committed tree (git archive HEAD, so not the
# uncommitted changes) into /root/vote_guard there and runs test/run-all.sh
# inside with PG_MAJOR set; run-all.sh installs what it needs with the
# chroot's apt.  The /proc it mounts in a chroot is unmounted on exit.
# The chroots come from test/chroot-lib.sh.
#
# Suites: 15 bookworm, 17 trixie, 18 forky (16 is in no current suite).
#
# Environment:
#   VG_CHROOT_DIR          the chroot to use, reused if it already holds one,
#                          made there otherwise, and kept; every major given
#                          must then come from the same suite
#   VG_CHROOT_DIR_<major>  the same for one major (VG_CHROOT_DIR_18=...)
#   VG_CHROOT_CACHE=1      keep each suite's chroot in the cache
#                          (VG_CACHE_DIR/chroot-<suite>, default
#                          /var/cache/vote_guard) and reuse it; one older
#                          than VG_CACHE_DAYS (default 30) is made again
#   VG_SUITE_<major>       another suite for a major (VG_SUITE_18=sid)
#   VG_KEEP_CHROOT=1       keep the chroots made in a temporary directory
#                          (default: removed on exit)
#   VG_MIRROR              Debian mirror (default: the first one the host's
#                          apt sources name)
#   VG_SUITES              suites of run-all.sh (default "regress isolation tap
#                          upgrade citus", and pg_upgrade for the majors of
#                          VG_PG_UPGRADE_MAJORS)
#   VG_SUITES_<major>      the same for one major (VG_SUITES_18=regress)
#   VG_PG_UPGRADE_MAJORS   the majors whose default suites add pg_upgrade:
#                          pg_upgrade from PostgreSQL 15 (built inside the
#                          chroot by test/old-major.sh and kept there) with
#                          votes in place (default "17"; "" for none)
#   VG_CITUS_SRC           the folder of Citus's release archives (default
#                          ../shared/citus beside the checkout): copied into
#                          the chroot for the citus suite, whose build of
#                          Citus (test/citus/build.sh) stays in the chroot's
#                          /root/.cache, so a cached chroot builds it once
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
vg_me=other-majors
# shellcheck source=test/chroot-lib.sh
. "$src/test/chroot-lib.sh"
# The suites of run-all.sh for a major; the package suite builds chroots of
# its own: not inside one.
suites_for() {
    local major=$1 var="VG_SUITES_$1" s
    s=${!var:-${VG_SUITES:-}}
    if [ -z "$s" ]; then
        s="regress isolation tap upgrade citus"
        case " ${VG_PG_UPGRADE_MAJORS-17} " in *" $major "*) s="$s pg_upgrade" ;; esac
    fi
    echo " $s " | sed 's/ package / /g; s/^ *//; s/ *$//'
}

if [ $# -eq 0 ]; then
    echo "usage: $0 MAJOR [MAJOR ...]   (e.g. $0 17 18)" >&2
    exit 2
fi
vg_check_host

# The chroot given for a major, if any.
dir_for() {
    local var="VG_CHROOT_DIR_$1"
    echo "${!var:-${VG_CHROOT_DIR:-}}"
}

# One VG_CHROOT_DIR cannot hold two suites.
if [ -n "${VG_CHROOT_DIR:-}" ]; then
    first=
    for major in "$@"; do
        var="VG_CHROOT_DIR_$major"
        [ -z "${!var:-}" ] || continue
        suite=$(vg_suite_for "$major")
        if [ -n "$first" ] && [ "$suite" != "$first" ]; then
            echo "other-majors: VG_CHROOT_DIR holds one suite, and $* need $first and $suite;" \
                 "give VG_CHROOT_DIR_<major> instead" >&2
            exit 2
        fi
        first=$suite
    done
fi

made=()        # the chroots made in a temporary directory, removed on exit
declare -A chroot_of=()    # suite -> chroot made during this run
cleanup() {
    local d
    vg_unmount_all
    for d in ${made[@]+"${made[@]}"}; do
        vg_remove "$d"
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The cached chroot of a suite; a stale one is removed first, and one that
# debootstrap did not finish is made again by vg_make_chroot.
cached_dir() {
    local suite=$1 dir="$vg_cache_dir/chroot-$1"
    mkdir -p "$vg_cache_dir"
    if [ -d "$dir" ] && [ -n "$(find "$dir.stamp" -mtime +"${VG_CACHE_DAYS:-30}" 2>/dev/null)" ]; then
        if grep -qF " $dir/" /proc/mounts; then
            echo "other-majors: $dir is stale but still has mounts; reused" >&2
        else
            echo "== the cached $suite chroot is older than ${VG_CACHE_DAYS:-30} days: made again" >&2
            rm -rf --one-file-system "$dir" "$dir.stamp"
        fi
    fi
    [ -e "$dir.stamp" ] || date -u '+made %Y-%m-%d %H:%M UTC' >"$dir.stamp"
    echo "$dir"
}

results=()
status=0
for major in "$@"; do
    SECONDS=0
    suite=$(vg_suite_for "$major")
    dir=$(dir_for "$major")
    if [ -z "$dir" ] && [ "${VG_CHROOT_CACHE:-0}" = 1 ]; then
        dir=$(cached_dir "$suite")
        # one run at a time in a cached chroot (held until the next major's
        # lock replaces it, or the exit)
        exec 8>"$dir.lock"
        flock 8
    fi
    if [ -z "$dir" ]; then
        dir=${chroot_of[$suite]:-}
        if [ -z "$dir" ]; then
            dir=$(mktemp -d "${TMPDIR:-/var/tmp}/vote_guard-$suite.XXXXXX")
            made+=("$dir")
            chroot_of[$suite]=$dir
        fi
    fi
    suites=$(suites_for "$major")
    echo "== PostgreSQL $major: Debian $suite, chroot $dir (suites: $suites)"
    vg_make_chroot "$suite" "$dir"
    vg_prepare_chroot "$suite" "$dir"

    # the committed tree, as a fresh clone would have it
    rm -rf "$dir/root/vote_guard"
    mkdir -p "$dir/root/vote_guard"
    git -C "$src" archive HEAD | tar -x -C "$dir/root/vote_guard"
    # Citus's release archives, where test/citus/build.sh looks for them
    case " $suites " in
        *" citus "*)
            rm -rf "$dir/root/shared/citus"
            mkdir -p "$dir/root/shared/citus"
            cp "${VG_CITUS_SRC:-$src/../shared/citus}"/{SHA256SUMS,citus-*.tar.xz} "$dir/root/shared/citus/" ;;
    esac

    rc=0
    vg_chroot_run "$dir" PG_MAJOR="$major" VG_SUITES="$suites" \
        /bin/bash -c 'cd /root/vote_guard && ./test/run-all.sh' || rc=$?
    if [ "$rc" = 0 ]; then
        results+=("PostgreSQL $major ($suite): passed in ${SECONDS}s")
    else
        results+=("PostgreSQL $major ($suite): FAILED (exit $rc) in ${SECONDS}s")
        status=1
    fi
done

echo
printf '%s\n' "${results[@]}"
exit $status
