#!/usr/bin/env bash
# vote_guard: build and test the committed tree against PostgreSQL majors
# other than this machine's, each inside a Debian chroot made by debootstrap.
# A manual check, not part of CI.
#
#   test/other-majors.sh 17 18
#
# Run as root on a Debian host that reaches Debian's archive.  For each major
# on the command line it makes (or reuses) a minbase chroot of the suite that
# ships that major, copies the committed tree (git archive HEAD, so not the
# uncommitted changes) into /root/vote_guard there and runs test/run-all.sh
# inside with PG_MAJOR set; run-all.sh installs what it needs with the
# chroot's apt.  The /proc it mounts in a chroot is unmounted on exit.
#
# Suites: 15 bookworm, 17 trixie, 18 forky (16 is in no current suite).
#
# Environment:
#   VG_CHROOT_DIR          the chroot to use, reused if it already holds one,
#                          made there otherwise, and kept; every major given
#                          must then come from the same suite
#   VG_CHROOT_DIR_<major>  the same for one major (VG_CHROOT_DIR_18=...)
#   VG_SUITE_<major>       another suite for a major (VG_SUITE_18=sid)
#   VG_KEEP_CHROOT=1       keep the chroots made in a temporary directory
#                          (default: removed on exit)
#   VG_MIRROR              Debian mirror (default: the first one the host's
#                          apt sources name)
#   VG_SUITES              suites of run-all.sh (default "regress isolation tap")
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
# The host's Debian mirror, as its apt sources name it (deb822 or one-line).
host_mirror() {
    local uri
    uri=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && $0 !~ /-security/ { print u; exit }' \
              /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /-security/ {
                                    for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
                               /etc/apt/sources.list 2>/dev/null || true)
    echo "$uri"
}
mirror=${VG_MIRROR:-$(host_mirror)}
suites=${VG_SUITES:-regress isolation tap}

if [ $# -eq 0 ]; then
    echo "usage: $0 MAJOR [MAJOR ...]   (e.g. $0 17 18)" >&2
    exit 2
fi
if [ "$(id -u)" != 0 ]; then
    echo "other-majors: run this script as root (debootstrap, chroot)" >&2
    exit 1
fi
if [ -z "$mirror" ]; then
    echo "other-majors: no Debian mirror found in the host's apt sources; set VG_MIRROR" >&2
    exit 1
fi
command -v debootstrap >/dev/null || {
    echo "other-majors: debootstrap missing: apt-get install debootstrap" >&2
    exit 1
}

# The Debian suite that ships a major.
suite_for() {
    local major=$1 var="VG_SUITE_$1"
    if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
    case $major in
        15) echo bookworm ;;
        17) echo trixie ;;
        18) echo forky ;;
        *) echo "other-majors: no suite known for PostgreSQL $major; set VG_SUITE_$major" >&2
           return 1 ;;
    esac
}

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
        suite=$(suite_for "$major")
        if [ -n "$first" ] && [ "$suite" != "$first" ]; then
            echo "other-majors: VG_CHROOT_DIR holds one suite, and $* need $first and $suite;" \
                 "give VG_CHROOT_DIR_<major> instead" >&2
            exit 2
        fi
        first=$suite
    done
fi

mounted=()     # the /proc mounts made here, unmounted on exit
made=()        # the chroots made in a temporary directory, removed on exit
declare -A chroot_of=()    # suite -> chroot made during this run
cleanup() {
    local m d
    for m in ${mounted[@]+"${mounted[@]}"}; do
        umount "$m" 2>/dev/null || umount -l "$m" || echo "other-majors: could not unmount $m" >&2
    done
    for d in ${made[@]+"${made[@]}"}; do
        if [ "${VG_KEEP_CHROOT:-0}" = 1 ]; then
            echo "other-majors: chroot kept in $d"
        elif grep -qF " $d/" /proc/mounts; then
            echo "other-majors: $d still has mounts, not removed" >&2
        else
            rm -rf --one-file-system "$d"
        fi
    done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Make a minbase chroot of a suite in a directory, unless one is already
# there (debootstrap removes its /debootstrap folder when it has finished).
make_chroot() {
    local suite=$1 dir=$2 script=
    if [ -x "$dir/usr/bin/apt-get" ] && [ ! -d "$dir/debootstrap" ]; then
        if ! grep -qsw "$suite" "$dir/etc/apt/sources.list"; then
            echo "other-majors: $dir is not a chroot of $suite (see its etc/apt/sources.list)" >&2
            return 1
        fi
        echo "== reuse the $suite chroot in $dir"
        return 0
    fi
    # an older debootstrap knows no script for a newer testing suite: the
    # one for sid fits it
    [ -e "/usr/share/debootstrap/scripts/$suite" ] || script=/usr/share/debootstrap/scripts/sid
    echo "== debootstrap $suite into $dir"
    mkdir -p "$dir"
    chmod 755 "$dir"    # mktemp makes it 0700: the chroot's / for every user
    debootstrap --variant=minbase "$suite" "$dir" "$mirror" $script >"$dir.debootstrap.log" 2>&1 \
        || { tail -n 20 "$dir.debootstrap.log"; return 1; }
    rm -f "$dir.debootstrap.log"
}

# What the chroot needs before apt and the server work in it.
prepare_chroot() {
    local suite=$1 dir=$2
    cp /etc/resolv.conf "$dir/etc/resolv.conf"
    # the packages must not start the clusters they create
    printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
    chmod 755 "$dir/usr/sbin/policy-rc.d"
    # the server's POSIX shared memory; a plain folder here, as /dev is not mounted
    chmod 1777 "$dir/dev/shm"
    case $suite in
        bookworm|trixie) ;;
        *)  # the Release files of testing and unstable expire within a week,
            # and a mirror that lags behind serves expired ones
            echo 'Acquire::Check-Valid-Until "false";' \
                >"$dir/etc/apt/apt.conf.d/99vote-guard-valid-until" ;;
    esac
    if ! grep -qF " $dir/proc " /proc/mounts; then
        mount -t proc proc "$dir/proc"
        mounted+=("$dir/proc")
    fi
}

results=()
status=0
for major in "$@"; do
    SECONDS=0
    suite=$(suite_for "$major")
    dir=$(dir_for "$major")
    if [ -z "$dir" ]; then
        dir=${chroot_of[$suite]:-}
        if [ -z "$dir" ]; then
            dir=$(mktemp -d "${TMPDIR:-/var/tmp}/vote_guard-$suite.XXXXXX")
            made+=("$dir")
            chroot_of[$suite]=$dir
        fi
    fi
    echo "== PostgreSQL $major: Debian $suite, chroot $dir"
    make_chroot "$suite" "$dir"
    prepare_chroot "$suite" "$dir"

    # the committed tree, as a fresh clone would have it
    rm -rf "$dir/root/vote_guard"
    mkdir -p "$dir/root/vote_guard"
    git -C "$src" archive HEAD | tar -x -C "$dir/root/vote_guard"

    rc=0
    chroot "$dir" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 PG_MAJOR="$major" VG_SUITES="$suites" \
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
