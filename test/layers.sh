#!/usr/bin/env bash
# vote_guard: the C files form layers, and no file calls up (see vg_types.h).
#
#   test/layers.sh            # after make; reads the object files with nm
#
# Every vg_* function a file calls must be defined in a file of a lower
# layer: that also rules out any circle of files.  A new .c file must be
# given its layer here.  Prints one line per call that goes up or sideways
# and exits 1 if there is any.
set -euo pipefail
cd "$(dirname "$0")/.."

declare -A layer=(
    [vote_guard]=5 [vg_trigger]=5 [vg_drop_guard]=5   # entry points
    [vg_policy]=4                                     # the contest's rules
    [vg_storage]=3                                    # every table access
    [vg_crypto]=2 [vg_normalize]=2                    # keys
    [vg_utils]=1                                      # utilities
)

declare -A definer=()
objs=()
for c in *.c; do
    f=${c%.c}
    if [ -z "${layer[$f]:-}" ]; then
        echo "layers: $c has no layer in test/layers.sh"; exit 1
    fi
    [ -f "$f.o" ] || { echo "layers: $f.o missing (run make first)"; exit 1; }
    objs+=("$f")
    while read -r sym; do definer[$sym]=$f; done < <(nm --defined-only -g "$f.o" | awk '$3 ~ /^vg_/ {print $3}')
done

bad=0
for f in "${objs[@]}"; do
    while read -r sym; do
        d=${definer[$sym]:-}
        [ -n "$d" ] || continue
        if [ "${layer[$d]}" -ge "${layer[$f]}" ]; then
            echo "layers: $f.c (layer ${layer[$f]}) calls $sym of $d.c (layer ${layer[$d]})"
            bad=1
        fi
    done < <(nm -u "$f.o" | awk '$2 ~ /^vg_/ {print $2}')
done
[ "$bad" = 0 ] && echo "layers: ${#objs[@]} files, every call goes down"
exit "$bad"
