#!/usr/bin/env bash
# vote_guard: the Debian package, built from the tree and tried in a clean
# Debian 12 chroot.  test/run-all.sh runs it as its "package" suite.
#
#   test/package.sh
#
# Run as root on Debian 12 (the build needs debhelper, dpkg-dev, libssl-dev
# and postgresql-server-dev-all; test/run-all.sh installs them).  It checks
# META.json and debian/control, builds postgresql-15-vote-guard with
# `dpkg-buildpackage -us -uc -b` in a copy of the tree (nothing is written
# into the tree or installed into the host), unpacks a bookworm minbase chroot
# (test/chroot-lib.sh: made once with debootstrap and kept as a tarball in
# the cache, /var/cache/vote_guard), installs the package there with apt,
# which brings postgresql-15 from the archive, starts a cluster as postgres,
# creates the extension and casts votes, then runs the autopkgtest of
# debian/tests (the regression suite under pg_virtualenv) as autopkgtest
# would: its Depends installed, in the source tree, as root.  The chroot is
# removed and its mounts unmounted on exit.
#
# Prints "ok N - what" or "not ok N - what" per check, then a count.
#
# Environment: VG_TEST_PORT (default 55432), the port of the clusters in the
# chroot (it shares the host's network); VG_CACHE_DIR, VG_CACHE_DAYS,
# VG_MIRROR as in test/chroot-lib.sh; VG_KEEP_CHROOT=1 keeps the chroot.
set -euo pipefail

src=$(cd "$(dirname "$0")/.." && pwd)
vg_me=package
# shellcheck source=test/chroot-lib.sh
. "$src/test/chroot-lib.sh"
port=${VG_TEST_PORT:-55432}
suite=bookworm       # Debian 12, the host's release: the package is built here
vg_check_host

work=$(mktemp -d "${TMPDIR:-/var/tmp}/vote_guard_package.XXXXXX")
root="$work/root"
cleanup() {
    # a cluster left running by an interrupted run
    if [ -f "$root/tmp/vg/data/postmaster.pid" ]; then
        chroot "$root" runuser -u postgres -- \
            /usr/lib/postgresql/15/bin/pg_ctl -D /tmp/vg/data -m immediate stop >/dev/null 2>&1 || true
    fi
    vg_unmount_all
    vg_remove "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

n=0
failed=0
log="$work/check.log"
# check WHAT CMD...: one numbered result line; the command's output is shown
# only when it fails
check() {
    local what=$1 rc=0
    shift
    n=$((n + 1))
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" = 0 ]; then
        echo "ok $n - $what"
    else
        echo "not ok $n - $what"
        tail -n 40 "$log" | sed 's/^/#   /'
        failed=$((failed + 1))
    fi
    return "$rc"
}
finish() {
    echo "# package: $((n - failed)) passed, $failed failed"
    [ "$failed" = 0 ]
    exit
}

# -- the metadata ------------------------------------------------------------
meta_ok() {
    local version
    version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
    /usr/bin/python3 - "$src" "${version%-*}" <<'EOF'
import json, re, sys, os
src, deb_version = sys.argv[1], sys.argv[2]
meta = json.load(open(os.path.join(src, "META.json")))
semver = re.compile(r"^\d+\.\d+\.\d+$")
for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
    assert key in meta, "META.json: no " + key
assert meta["meta-spec"]["version"] == "1.0.0", "meta-spec 1.0.0"
assert semver.match(meta["version"]), "version is not x.y.z"
assert meta["license"] == "postgresql", "license"
assert meta["release_status"] in ("stable", "testing", "unstable"), "release_status"
ext = meta["provides"]["vote_guard"]
assert semver.match(ext["version"]), "provides.vote_guard.version"
assert os.path.isfile(os.path.join(src, ext["file"])), ext["file"] + " missing"
control = open(os.path.join(src, "vote_guard.control")).read()
default = re.search(r"default_version\s*=\s*'([^']+)'", control).group(1)
assert ext["version"].startswith(default + "."), \
    "provides.vote_guard.version %s is not default_version %s" % (ext["version"], default)
assert meta["version"] == deb_version, \
    "META.json version %s, debian/changelog %s" % (meta["version"], deb_version)
assert os.path.isfile(os.path.join(src, "LICENSE")), "LICENSE missing"
print("META.json", meta["version"], "ok")
EOF
}
check "META.json parses, has the fields of meta-spec 1.0.0, versions agree with the control file and debian/changelog" \
    meta_ok || true
check "debian/control is what pg_buildext makes from debian/control.in" \
    bash -c 'cd "$1" && pg_buildext checkcontrol' _ "$src" || true

# -- the build ---------------------------------------------------------------
# a copy of the tree as it is (uncommitted changes too), without build output
copy_tree() {
    mkdir -p "$1"
    tar -C "$src" --exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc' \
        --exclude=./results --exclude=./tmp_check --exclude=./log \
        --exclude=node_modules --exclude=__pycache__ -cf - . |
        tar -C "$1" -xf -
}
copy_tree "$work/build/src"
(cd "$work/build/src" && find . -type f | sort) >"$work/before"
build() {
    cd "$work/build/src" &&
        DEB_BUILD_OPTIONS=nocheck DEB_BUILD_PROFILES=nocheck dpkg-buildpackage -us -uc -b &&
        ls ../postgresql-15-vote-guard_*_*.deb &&
        dpkg-deb -c ../postgresql-15-vote-guard_*_*.deb |
            grep -E 'usr/lib/postgresql/15/lib/vote_guard\.so$' &&
        dpkg-deb -c ../postgresql-15-vote-guard_*_*.deb |
            grep -E 'usr/share/postgresql/15/extension/vote_guard\.control$'
}
SECONDS=0
check "dpkg-buildpackage -us -uc -b builds postgresql-15-vote-guard (vote_guard.so, the control file)" \
    build || finish
echo "# built in ${SECONDS}s"
# what the build leaves in the tree is ignored by git
leftovers() {
    (cd "$work/build/src" && find . -type f | sort) | comm -13 "$work/before" - |
        sed 's|^\./||' >"$work/new"
    git -C "$src" rev-parse --git-dir >/dev/null 2>&1 || { echo "not a git checkout"; return 0; }
    local ignored
    ignored=$(git -C "$src" check-ignore --no-index --stdin <"$work/new" | sort || true)
    if [ "$(sort "$work/new")" != "$ignored" ]; then
        echo "left in the tree and not in .gitignore:"
        comm -23 <(sort "$work/new") <(echo "$ignored")
        return 1
    fi
    echo "$(wc -l <"$work/new") files, all ignored"
}
check "what the build leaves in the tree is in .gitignore" leftovers || true

# -- a clean Debian 12 ---------------------------------------------------------
SECONDS=0
vg_cached_chroot "$suite" "$root"
vg_prepare_chroot "$suite" "$root"
vg_apt_updates "$suite" "$root"
vg_apt_cache "$suite" "$root"
mkdir -p "$root/tmp/deb"
cp "$work"/build/postgresql-15-vote-guard_*_*.deb "$root/tmp/deb/"
# the source tree, as autopkgtest gets it
copy_tree "$root/root/vote_guard"
# apt in the chroot, one run at a time on the cached lists and downloads
apt_in_chroot() {
    (
        flock 9
        vg_chroot_run "$root" /bin/sh -c "$1"
    ) 9>"$vg_cache_dir/.lock-apt-$suite"
}
check "apt installs the package in a clean bookworm chroot, with postgresql-15 from the archive" \
    apt_in_chroot 'apt-get update -qq &&
                   apt-get install -y -qq --no-install-recommends /tmp/deb/postgresql-15-vote-guard_*.deb &&
                   dpkg -s postgresql-15 postgresql-15-vote-guard | grep -E "^(Package|Status|Version):"' \
    || finish
echo "# chroot ready in ${SECONDS}s"

# -- the extension in the chroot's server --------------------------------------
as_postgres() {
    vg_chroot_run "$root" PGHOST=/tmp/vg PGPORT="$port" \
        runuser -u postgres -- /bin/sh -c "$1"
}
bin=/usr/lib/postgresql/15/bin
server_up() {
    as_postgres "rm -rf /tmp/vg && mkdir /tmp/vg &&
                 $bin/initdb -D /tmp/vg/data -A trust -E UTF8 --locale=C.UTF-8 --no-sync >/tmp/vg/initdb.log &&
                 $bin/pg_ctl -D /tmp/vg/data -l /tmp/vg/server.log -w \
                     -o \"-p $port -k /tmp/vg -c listen_addresses=''\" start" ||
        { cat "$root/tmp/vg/initdb.log" "$root/tmp/vg/server.log" 2>/dev/null; return 1; }
}
server_down() {
    as_postgres "$bin/pg_ctl -D /tmp/vg/data -m fast -w stop" >/dev/null 2>&1 || true
}
psql_is() {
    local want=$1 got
    got=$(as_postgres "psql -X -q -At -v ON_ERROR_STOP=1 -d postgres" <<<"$2") || return 1
    echo "$got"
    [ "$got" = "$want" ] || { echo "expected: $want"; return 1; }
}
if check "a cluster of the chroot's PostgreSQL 15 starts as postgres" server_up; then
    check "CREATE EXTENSION vote_guard" \
        psql_is "vote_guard|1.1" "CREATE EXTENSION vote_guard;
            SELECT extname, extversion FROM pg_extension WHERE extname = 'vote_guard'" || true
    check "cast_vote answers ok (200), then duplicate_ip (409) for the same voter" \
        psql_is "$(printf 'ok|200|1\nduplicate_ip|409|1')" \
            "SELECT vote_guard.create_contest('package test') AS c \\gset
             \\o /dev/null
             SELECT vote_guard.add_entry(:c, 1, 'one');
             \\o
             SELECT error_code, http_status, vote_count
               FROM vote_guard.cast_vote(:c, 1, voter_ip => '198.51.100.4');
             SELECT error_code, http_status, vote_count
               FROM vote_guard.cast_vote(:c, 1, voter_ip => '198.51.100.4')" || true
fi
server_down

# -- the autopkgtest -----------------------------------------------------------
# each test of debian/tests/control: its Depends ("@" is the package, already
# installed) with apt, then debian/tests/NAME in the source tree
tests=$(awk -F': *' '$1 == "Tests" { print $2 }' "$src/debian/tests/control")
depends=$(awk -F': *' '$1 == "Depends" { print $2 }' "$src/debian/tests/control" |
              tr ',' '\n' | sed 's/^ *//; s/ *$//' | grep -v '^@$' | sort -u | paste -sd ' ' -)
[ -z "$depends" ] || check "the autopkgtest's Depends install: $depends" \
    apt_in_chroot "apt-get install -y -qq --no-install-recommends $depends" || true
for t in $tests; do
    SECONDS=0
    # the suite must have run: pg_regress' "All N tests passed"
    autopkgtest() {
        vg_chroot_run "$root" PGPORT="$port" \
            /bin/sh -c "cd /root/vote_guard && debian/tests/$t" >"$work/autopkgtest.log" 2>&1 &&
            grep -E 'All [0-9]+ tests passed' "$work/autopkgtest.log"
    }
    check "autopkgtest $t: the regression suite under pg_virtualenv" autopkgtest ||
        tail -n 60 "$work/autopkgtest.log" | sed 's/^/#   /'
    grep -E '^(ok|not ok|test) ' "$work/autopkgtest.log" | sed 's/^/#   /' || true
    echo "# autopkgtest $t in ${SECONDS}s"
done

finish
