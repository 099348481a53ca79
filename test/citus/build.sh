#!/usr/bin/env bash
# Build and install Citus for vote_guard's citus test suite, from upstream's
# unmodified release archives in ../shared/citus/ beside the checkout.
#
#   PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config test/citus/build.sh
#
# Picks the release for the server's major (13.2.2 for 15, 14.0.1 for 16-18),
# checks the archive against SHA256SUMS, unpacks, applies the one documented
# fix (below), configures, builds and installs into PG_CONFIG's PostgreSQL.
# The build is cached under VG_CITUS_CACHE (default ~/.cache/vote_guard-citus)
# with a stamp naming the Citus release and the exact PostgreSQL version: a
# later run with both unchanged only checks that the installed library is the
# cached one (and installs it again if not), in a second or two.
#
# make install writes into the shared PostgreSQL installation: run it where no
# other test uses that installation at the same time (test/run-all.sh calls it
# before starting any server).  Run as root; installs its build dependencies
# through test/install-deps.sh.
#
# Environment: PG_CONFIG, VG_CITUS_SRC (the folder of archives, default
# ../shared/citus beside the checkout), VG_CITUS_CACHE, VG_CITUS_VERSION (to
# force a release).
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
PG_CONFIG=${PG_CONFIG:-pg_config}
archives=${VG_CITUS_SRC:-$src/../shared/citus}
cache=${VG_CITUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/vote_guard-citus}

pg_version=$("$PG_CONFIG" --version | awk '{print $2}')   # e.g. 15.20
pg_major=${pg_version%%.*}
if [ -n "${VG_CITUS_VERSION:-}" ]; then
    version=$VG_CITUS_VERSION
else
    case $pg_major in
        15) version=13.2.2 ;;
        16|17|18) version=14.0.1 ;;
        *) echo "citus build: no Citus release here for PostgreSQL $pg_major" >&2; exit 1 ;;
    esac
fi

PG_MAJOR=$pg_major "$src/test/install-deps.sh" \
    xz-utils autoconf flex bison libcurl4-openssl-dev liblz4-dev libzstd-dev libkrb5-dev \
    libselinux1-dev libxslt1-dev libpam0g-dev libreadline-dev libicu-dev \
    python3-psycopg

stamp_text="citus $version postgresql $pg_version $("$PG_CONFIG" --pkglibdir)"
build=$cache/citus-$version-pg$pg_version
stamp=$build/.vote_guard-stamp
installed=$("$PG_CONFIG" --pkglibdir)/citus.so

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_text" ]; then
    if cmp -s "$build/citus-$version/src/backend/distributed/citus.so" "$installed"; then
        echo "citus build: Citus $version for PostgreSQL $pg_version already installed (cached)"
        exit 0
    fi
    echo "citus build: installing the cached build of Citus $version"
    make -C "$build/citus-$version" -s install >"$build/install.log" 2>&1 ||
        { tail -n 40 "$build/install.log"; exit 1; }
    exit 0
fi

archive=$archives/citus-$version.tar.xz
[ -f "$archive" ] || { echo "citus build: $archive not found" >&2; exit 1; }
(cd "$archives" && sha256sum --quiet -c --ignore-missing SHA256SUMS) ||
    { echo "citus build: checksum mismatch in $archives" >&2; exit 1; }
grep -q " citus-$version.tar.xz\$" "$archives/SHA256SUMS" ||
    { echo "citus build: citus-$version.tar.xz is not in SHA256SUMS" >&2; exit 1; }

echo "citus build: Citus $version for PostgreSQL $pg_version (about 70 s on 2 cores)"
rm -rf "$build"
mkdir -p "$build"
tar -C "$build" -xJf "$archive"
cd "$build/citus-$version"

# PostgreSQL 15.18 and later declare have_createdb_privilege() in
# commands/dbcommands.h; Citus 13.2.2's compatibility header (its PG < 16
# branch) defines a static copy that then clashes.  Remove that copy when the
# server declares the function.
compat=src/include/pg_version_compat.h
if grep -q 'have_createdb_privilege' "$("$PG_CONFIG" --includedir-server)/commands/dbcommands.h" &&
   grep -q '^have_createdb_privilege(void)$' "$compat"; then
    perl -0pi -e 's/static inline bool\nhave_createdb_privilege\(void\)\n\{\n.*?\n\}\n//s' "$compat"
    if grep -q '^have_createdb_privilege(void)$' "$compat"; then
        echo "citus build: could not remove have_createdb_privilege() from $compat" >&2
        exit 1
    fi
    echo "citus build: removed the static have_createdb_privilege() of $compat"
fi

log=$build/build.log
{
    ./configure PG_CONFIG="$PG_CONFIG" &&
    make -j2 &&
    make install
} >"$log" 2>&1 || { tail -n 60 "$log"; echo "citus build: failed, see above" >&2; exit 1; }
echo "$stamp_text" >"$stamp"
echo "citus build: installed Citus $version"
