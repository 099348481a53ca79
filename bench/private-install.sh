#!/usr/bin/env bash
# vote_guard benchmarks: install this tree's build into a private copy of
# the PostgreSQL installation that PG_CONFIG names.
#
#   bench/private-install.sh DIR    # then use DIR$($PG_CONFIG --bindir)/pg_config
#
# PostgreSQL finds its share and lib directories relative to its binaries,
# so the copy is an installation of its own: a benchmark that runs from it
# neither changes nor uses the system's installed extension, needs no lock,
# and other builds installed meanwhile do not mix in.  The build must be
# made already (make all).  Used by run.sh, scale.sh and callgrind.sh.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
inst=$1
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/${PG_MAJOR:-15}/bin/pg_config}
for d in "$("$PG_CONFIG" --bindir)/.." "$("$PG_CONFIG" --sharedir)"; do
    d=$(cd "$d" && pwd)
    mkdir -p "$inst$(dirname "$d")"
    cp -a "$d" "$inst$(dirname "$d")/"
done
make -C "$src" -s install DESTDIR="$inst" PG_CONFIG="$PG_CONFIG"
