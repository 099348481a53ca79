#!/usr/bin/env bash
# vote_guard: an older PostgreSQL major beside the packaged one, for the
# pg_upgrade suite (test/upgrade/pg_upgrade.pl), built from the source package
# of the Debian suite that ships it.
#
#   test/old-major.sh 15      prints the installation's directory
#
# Run as root on Debian (in practice inside the trixie chroot of
# test/other-majors.sh, whose PostgreSQL 17 has no 15 beside it).  Debian
# stopped shipping 15 after bookworm, and bookworm's binaries need bookworm's
# libraries: mixing the suites' binary packages is no way.  Bookworm's source
# package is: apt downloads it (checked against the signed Sources index of
# bookworm, kept apart from the system's apt lists, so the system's own
# sources stay one suite), and the upstream sources in it are built with
# this system's compiler into /usr/local/lib/postgresql/MAJOR: the server,
# the client programs, PL/pgSQL and PGXS, without optimisation, no
# documentation, no ICU, readline or zlib (clusters made with the C.UTF-8
# locale of libc, as the tests make them).
#
# An installation already there (its BUILD file names the source package)
# is kept: a cached chroot keeps its build until the chroot is made again
# (VG_CACHE_DAYS in test/other-majors.sh).  VG_OLD_MAJOR_REBUILD=1 builds again.
set -euo pipefail

major=${1:?usage: $0 MAJOR}
prefix=/usr/local/lib/postgresql/$major
case $major in
    15) suite=bookworm ;;
    *) echo "old-major: no Debian suite known for the sources of PostgreSQL $major" >&2; exit 2 ;;
esac

if [ -x "$prefix/bin/postgres" ] && [ -s "$prefix/BUILD" ] && [ "${VG_OLD_MAJOR_REBUILD:-0}" != 1 ]; then
    echo "old-major: PostgreSQL $major in $prefix ($(head -n 1 "$prefix/BUILD"))" >&2
    echo "$prefix"
    exit 0
fi
if [ "$(id -u)" != 0 ]; then
    echo "old-major: PostgreSQL $major is not in $prefix; run this script as root to build it" >&2
    exit 1
fi

SECONDS=0
export DEBIAN_FRONTEND=noninteractive
# the compiler, and dpkg-source to unpack (and check) the source package
need=(gcc make libc6-dev dpkg-dev xz-utils bzip2 perl)
missing=()
for pkg in "${need[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "old-major: installing ${missing[*]}" >&2
    apt-get update -qq
    apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
fi

# the mirror the system's apt uses (deb822 or one-line sources)
mirror=$(awk '/^URIs:/ { u = $2 } /^Suites:/ && u != "" && $0 !~ /-security/ { print u; exit }' \
             /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '$1 == "deb" && $0 !~ /-security/ {
                                      for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/) { print $i; exit } }' \
                                 /etc/apt/sources.list 2>/dev/null || true)
mirror=${VG_MIRROR:-${mirror:-http://deb.debian.org/debian}}

work=$(mktemp -d /var/tmp/vote_guard-pg$major.XXXXXX)
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
mkdir -p "$work/lists/partial" "$work/cache/archives/partial"
echo "deb-src $mirror $suite main" >"$work/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$work/sources.list" -o Dir::Etc::SourceParts=/dev/null
          -o "Dir::State::Lists=$work/lists" -o "Dir::Cache=$work/cache"
          -o APT::Sandbox::User=root)
echo "old-major: the source package postgresql-$major of Debian $suite" >&2
apt-get -qq "${apt_opts[@]}" update
(cd "$work" && apt-get -qq "${apt_opts[@]}" source --download-only "postgresql-$major" >/dev/null)
dsc=$(ls "$work"/postgresql-"$major"_*.dsc)
version=$(sed -n 's/^Version: //p' "$dsc")
# the upstream sources as released (Debian's patches are about packaging)
# (apt checked the .dsc against the signed index: dpkg-source's own signature
# check, which would need Debian's developer keyring, only warns)
dpkg-source --skip-patches -x "$dsc" "$work/src" >"$work/dpkg-source.log" 2>&1 ||
    { cat "$work/dpkg-source.log"; exit 1; }
echo "old-major: building PostgreSQL $major ($version) into $prefix" >&2
cd "$work/src"
# Without optimisation: the old server runs a test's few hundred statements,
# and the build takes about half the time.
flags=(--prefix="$prefix" --without-readline --without-icu --without-zlib --disable-nls CFLAGS=-O0)
./configure "${flags[@]}" >"$work/configure.log" 2>&1 || { tail -n 30 "$work/configure.log"; exit 1; }
# what a server, its client programs, PL/pgSQL and PGXS need (src/Makefile's
# SUBDIRS without ecpg, the walreceiver and output plugins, the test tools)
dirs=(common port timezone backend backend/utils/mb/conversion_procs backend/snowball include
      interfaces/libpq fe_utils bin pl/plpgsql makefiles)
for d in "${dirs[@]}"; do
    make -s -j"$(nproc)" -C "src/$d" >>"$work/make.log" 2>&1 || { tail -n 40 "$work/make.log"; exit 1; }
done
rm -rf "$prefix"
{
    for d in "${dirs[@]}"; do make -s -C "src/$d" install; done
    make -s -C src install-local
    make -s -C config install
} >"$work/install.log" 2>&1 || { tail -n 40 "$work/install.log"; exit 1; }
printf 'postgresql-%s %s (Debian %s source package)\nconfigure %s\nbuilt %s in %ss\n' \
    "$major" "$version" "$suite" "${flags[*]}" "$(date -u '+%Y-%m-%d %H:%M UTC')" "$SECONDS" \
    >"$prefix/BUILD"
echo "old-major: PostgreSQL $major ($version) built in ${SECONDS}s" >&2
echo "$prefix"
