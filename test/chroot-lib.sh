# shellcheck shell=bash
# vote_guard: Debian chroots for the tests.  Sourced (not run) by
# test/other-majors.sh and test/package.sh, as root.
#
#   vg_mirror                      the Debian mirror: VG_MIRROR, or the first
#                                  one the host's apt sources name
#   vg_suite_for MAJOR             the Debian suite that ships a PostgreSQL major
#   vg_make_chroot SUITE DIR       debootstrap a minbase chroot of SUITE into DIR,
#                                  unless DIR already holds a finished one
#   vg_cached_chroot SUITE DIR     DIR gets a fresh minbase chroot of SUITE,
#                                  unpacked from a tarball in the cache, which is
#                                  made once and made again when it is stale
#   vg_prepare_chroot SUITE DIR    what apt and the server need in a chroot,
#                                  /proc mounted
#   vg_apt_updates SUITE DIR       apt sources with SUITE-updates and
#                                  SUITE-security too, as an installed system has
#   vg_apt_cache SUITE DIR         the chroot's apt lists and downloaded packages
#                                  kept in the cache across runs (bind mounts)
#   vg_chroot_run DIR CMD...       a command in the chroot, clean environment
#   vg_unmount_all                 unmount every mount made here, last first;
#                                  call it from the caller's EXIT trap
#   vg_remove DIR                  remove a chroot (or the folder holding one)
#                                  made by the caller, unless VG_KEEP_CHROOT=1
#                                  or something is still mounted below it
#
# Environment:
#   VG_MIRROR          Debian mirror (default: the host's)
#   VG_SUITE_<major>   another suite for a major (VG_SUITE_18=sid)
#   VG_CACHE_DIR       the cache (default /var/cache/vote_guard)
#   VG_CACHE_DAYS      a cached chroot tarball older than this many days is
#                      made again (default 30)
#   VG_KEEP_CHROOT=1   vg_remove keeps what it is given
#
# Messages start with "$vg_me: " (set vg_me before sourcing).

vg_me=${vg_me:-chroot}
vg_cache_dir=${VG_CACHE_DIR:-/var/cache/vote_guard}
vg_mounts=()      # the mounts made here, unmounted by vg_unmount_all

# The host's Debian mirror, as its apt sources name it (deb822 or one-line).
vg_host_mirror() {
    local uri
    uri=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && $0 !~ /-security/ { print u; exit }' \
              /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && $0 !~ /-security/ {
                                    for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
                               /etc/apt/sources.list 2>/dev/null || true)
    echo "$uri"
}
vg_mirror=${VG_MIRROR:-$(vg_host_mirror)}

# The security archive, as the host's apt sources name it.
vg_security_mirror() {
    local uri
    uri=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && /-security/ { print u; exit }' \
              /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    [ -n "$uri" ] || uri=$(awk '$1 == "deb" && /-security/ {
                                    for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
                               /etc/apt/sources.list 2>/dev/null || true)
    echo "${uri:-http://deb.debian.org/debian-security}"
}

# Root, debootstrap and a mirror, or a message and a failure.
vg_check_host() {
    if [ "$(id -u)" != 0 ]; then
        echo "$vg_me: run this script as root (debootstrap, chroot)" >&2
        return 1
    fi
    if [ -z "$vg_mirror" ]; then
        echo "$vg_me: no Debian mirror found in the host's apt sources; set VG_MIRROR" >&2
        return 1
    fi
    command -v debootstrap >/dev/null || {
        echo "$vg_me: debootstrap missing: apt-get install debootstrap" >&2
        return 1
    }
}

# The Debian suite that ships a major.
vg_suite_for() {
    local major=$1 var="VG_SUITE_$1"
    if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
    case $major in
        15) echo bookworm ;;
        17) echo trixie ;;
        18) echo forky ;;
        *) echo "$vg_me: no suite known for PostgreSQL $major; set VG_SUITE_$major" >&2
           return 1 ;;
    esac
}

# Make a minbase chroot of a suite in a directory, unless one is already
# there (debootstrap removes its /debootstrap folder when it has finished).
vg_make_chroot() {
    local suite=$1 dir=$2 script=
    if [ -x "$dir/usr/bin/apt-get" ] && [ ! -d "$dir/debootstrap" ]; then
        if ! grep -qsw "$suite" "$dir/etc/apt/sources.list"; then
            echo "$vg_me: $dir is not a chroot of $suite (see its etc/apt/sources.list)" >&2
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
    debootstrap --variant=minbase "$suite" "$dir" "$vg_mirror" $script >"$dir.debootstrap.log" 2>&1 \
        || { tail -n 20 "$dir.debootstrap.log"; return 1; }
    rm -f "$dir.debootstrap.log"
}

# A fresh chroot of a suite in DIR (empty or missing), unpacked from
# $vg_cache_dir/SUITE-minbase.tar.gz.  The tarball is made by debootstrap
# when it is missing, when its stamp names another suite, mirror or recipe,
# or when it is older than VG_CACHE_DAYS; runs at the same time wait for the
# one that makes it.
vg_cached_chroot() {
    local suite=$1 dir=$2
    local tarball="$vg_cache_dir/$suite-minbase.tar.gz"
    local want="suite=$suite mirror=$vg_mirror variant=minbase recipe=1"
    mkdir -p "$vg_cache_dir"
    (
        flock 9
        if [ -s "$tarball" ] && [ "$(head -n 1 "$tarball.stamp" 2>/dev/null)" = "$want" ] &&
           [ -z "$(find "$tarball.stamp" -mtime +"${VG_CACHE_DAYS:-30}")" ]; then
            echo "== the $suite chroot from $tarball ($(sed -n 2p "$tarball.stamp"))"
            exit 0
        fi
        local tmp
        tmp=$(mktemp -d "$vg_cache_dir/.make-$suite.XXXXXX")
        trap 'rm -rf --one-file-system "$tmp"' EXIT
        vg_make_chroot "$suite" "$tmp/root"
        tar -C "$tmp/root" --numeric-owner -czf "$tmp/root.tar.gz" .
        mv -f "$tmp/root.tar.gz" "$tarball"
        printf '%s\nmade %s\n' "$want" "$(date -u '+%Y-%m-%d %H:%M UTC')" >"$tarball.stamp"
        echo "== cached the $suite chroot in $tarball"
    ) 9>"$vg_cache_dir/.lock-$suite"
    mkdir -p "$dir"
    chmod 755 "$dir"
    tar -C "$dir" --numeric-owner -xzf "$tarball"
}

# Mount something and remember it for vg_unmount_all.
vg_mount() {
    mount "$@"
    vg_mounts+=("${!#}")
}

# What the chroot needs before apt and the server work in it.
vg_prepare_chroot() {
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
        vg_mount -t proc proc "$dir/proc"
    fi
}

# The suite's updates and security archives too (a stable suite).
vg_apt_updates() {
    local suite=$1 dir=$2
    cat >"$dir/etc/apt/sources.list" <<EOF
deb $vg_mirror $suite main
deb $vg_mirror $suite-updates main
deb $(vg_security_mirror) $suite-security main
EOF
}

# The chroot's apt lists and downloaded packages live in the cache and are
# bind-mounted: a later run downloads only what changed.  Hold
# "$vg_cache_dir/.lock-apt-SUITE" (flock) while apt runs in the chroot.
vg_apt_cache() {
    local suite=$1 dir=$2 what
    for what in lists archives; do
        mkdir -p "$vg_cache_dir/apt-$suite/$what/partial"
        case $what in
            lists)    vg_mount --bind "$vg_cache_dir/apt-$suite/lists" "$dir/var/lib/apt/lists" ;;
            archives) vg_mount --bind "$vg_cache_dir/apt-$suite/archives" "$dir/var/cache/apt/archives" ;;
        esac
    done
}

# Run a command in a chroot with a clean environment; extra variables as
# NAME=value before the command (env's syntax).
vg_chroot_run() {
    local dir=$1; shift
    chroot "$dir" /usr/bin/env -i \
        PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

# Unmount every mount made here, the last first.
vg_unmount_all() {
    local i m
    for ((i = ${#vg_mounts[@]} - 1; i >= 0; i--)); do
        m=${vg_mounts[$i]}
        umount "$m" 2>/dev/null || umount -l "$m" || echo "$vg_me: could not unmount $m" >&2
    done
    vg_mounts=()
}

# Remove a chroot made by the caller (or the folder that holds it).
vg_remove() {
    local dir=$1
    if [ "${VG_KEEP_CHROOT:-0}" = 1 ]; then
        echo "$vg_me: chroot kept in $dir"
    elif grep -qF " $dir/" /proc/mounts; then
        echo "$vg_me: $dir still has mounts, not removed" >&2
    else
        rm -rf --one-file-system "$dir"
    fi
}
