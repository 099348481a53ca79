#!/usr/bin/env bash
# vote_guard: build the libFuzzer harness (vg_fuzz.c) for the pure C parts
# with clang, -fsanitize=fuzzer,address,undefined, no server, and run it for a
# bounded time: e-mail normalisation and address canonicalisation
# (vg_normalize.c), and vg_hmac (vg_crypto.c, both the SHA256_* build and the
# -DVG_HMAC_EVP build) against OpenSSL's HMAC().  Prints one "test ... ok" or
# "test ... FAILED" line per build (test/run-all.sh counts them).
#
#   test/fuzz/libfuzzer/run.sh                        # 2 x 10 s
#   VG_LIBFUZZER_SECONDS=600 test/fuzz/libfuzzer/run.sh   # a longer run
#
# Needs clang and its fuzzer runtime (Debian: clang, libclang-rt-dev) and the
# server headers (postgresql-server-dev-15).  Environment:
# VG_LIBFUZZER_SECONDS (per build; 10), VG_LIBFUZZER_SEED (1), PG_CONFIG,
# CLANG (clang).  A crash leaves its input in the work directory it prints.
set -euo pipefail

src=$(cd "$(dirname "$0")/../../.." && pwd)
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/${PG_MAJOR:-15}/bin/pg_config}
CLANG=${CLANG:-clang}
seconds=${VG_LIBFUZZER_SECONDS:-10}
seed=${VG_LIBFUZZER_SEED:-1}
work=$(mktemp -d "${TMPDIR:-/tmp}/vote_guard_libfuzzer.XXXXXX")
status=0

for variant in sha256 evp; do
    defs=()
    [ "$variant" = evp ] && defs=(-DVG_HMAC_EVP)
    bin=$work/vg_fuzz_$variant
    # no server: the harness gives the few functions the fuzzed paths call,
    # and the linker drops the rest of the two files (SQL functions, caches)
    "$CLANG" -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -ffunction-sections -fdata-sections -Wl,--gc-sections \
        -Wno-deprecated-declarations -Wno-ignored-attributes "${defs[@]}" \
        -I"$src" -I"$("$PG_CONFIG" --includedir-server)" \
        "$src/test/fuzz/libfuzzer/vg_fuzz.c" "$src/test/fuzz/libfuzzer/server_stubs.c" \
        "$src/vg_normalize.c" "$src/vg_crypto.c" \
        -lcrypto -o "$bin"
    mkdir -p "$work/corpus_$variant"
    log=$work/$variant.log
    if (cd "$work" && "$bin" -seed="$seed" -max_total_time="$seconds" -max_len=600 \
            "$work/corpus_$variant" >"$log" 2>&1); then
        runs=$(grep -Eo 'Done [0-9]+ runs' "$log" | tail -n 1 | awk '{print $2}')
        echo "test libfuzzer $variant: ${runs:-?} inputs in ${seconds} s ... ok"
    else
        echo "test libfuzzer $variant ... FAILED"
        tail -n 40 "$log" | sed 's/^/# /'
        echo "# inputs and log kept in $work"
        status=1
    fi
done
[ "$status" = 0 ] && rm -rf "$work"
exit $status
