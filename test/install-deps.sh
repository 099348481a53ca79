#!/usr/bin/env bash
# Install, from Debian's archive, what building and testing vote_guard needs
# and this machine lacks.  Run as root; does nothing when all is there.
#
#   PG_MAJOR=15 test/install-deps.sh [extra-package ...]
set -euo pipefail

PG_MAJOR=${PG_MAJOR:-15}
wanted=(
    make gcc libc6-dev
    "postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR" "postgresql-client-$PG_MAJOR"
    libssl-dev
    libipc-run-perl        # TAP tests (PostgreSQL::Test::Cluster)
    # the client examples and their tests (test/clients/run.sh); psycopg also
    # for the clients of test/t/007_fault_storm.pl
    pgbouncer python3-psycopg python3-psycopg-pool nodejs
    "$@"
)
# npm comes with some builds of nodejs, and as its own package with Debian's
command -v npm >/dev/null || wanted+=(npm)

missing=()
for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed"; then
        missing+=("$pkg")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
    echo "install-deps: missing packages: ${missing[*]}; run this script as root" >&2
    exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
