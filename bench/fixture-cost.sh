#!/bin/sh
# The cost of a throwaway fixture (issue: sandbox). Prints, in one run, the
# median whole-process time of `recipes run noop` (one no-op step on
# debian-sysv, warm cache) beside a `cp -a` of the same base and a hand-made
# `unshare` plus overlay mount plus chroot, with ratios.
# Usage (as root): bench/fixture-cost.sh [RUNS]   (default 31)
set -eu
runs=${1:-31}
top=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$top/Cargo.toml"
bin="$top/target/release/recipes"
work=$(mktemp -d /var/tmp/recipes-bench.XXXXXX)
trap 'umount -R "$work/merged" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/book/fr/src" "$work/book/en/src"
for lang in fr en; do
    printf '[book]\ntitle = "Bench"\n' > "$work/book/$lang/book.toml"
    printf '# Summary\n\n- [Bench](bench.md)\n' > "$work/book/$lang/src/SUMMARY.md"
    printf '# Bench\n\n```sh recipe=noop fixture=debian-sysv\ntrue\n```\n' > "$work/book/$lang/src/bench.md"
done
ln -s "$top/recipes" "$work/recipes"
base=$(cd "$work" && "$bin" fixture build debian-sysv | sed 's/^[^:]*: //')
now() { date +%s%N; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
measure() { # runs command...
    n=$1; shift
    for _ in $(seq "$n"); do
        s=$(now); "$@" >/dev/null 2>&1; e=$(now)
        echo $(( (e - s) / 1000 ))
    done | median
}
run_noop() { (cd "$work" && "$bin" run noop); }
copy_base() { cp -a "$base" "$work/copy" && rm -rf "$work/copy"; }
hand_made() {
    unshare --mount --pid --net --uts --ipc --fork sh -c "
        mount --make-rprivate /
        mkdir -p '$work/upper' '$work/work' '$work/merged'
        mount -t overlay overlay -o lowerdir='$base',upperdir='$work/upper',workdir='$work/work' '$work/merged'
        chroot '$work/merged' true
        umount '$work/merged'"
    rm -rf "$work/upper" "$work/work"
}
run_noop >/dev/null # warm up
noop=$(measure "$runs" run_noop)
hand=$(measure "$runs" hand_made)
copy=$(measure 3 copy_base)
size=$(du -sh "$base" | cut -f1)
echo "base: $base ($size)"
awk -v noop="$noop" -v hand="$hand" -v copy="$copy" -v runs="$runs" 'BEGIN {
    printf "recipes run noop (whole process, sandbox + overlay): median %6.1f ms over %d runs\n", noop / 1000, runs
    printf "hand-made unshare + overlay + chroot true:            median %6.1f ms over %d runs\n", hand / 1000, runs
    printf "cp -a of the base (and rm -rf):                       median %6.1f ms over 3 runs\n", copy / 1000
    printf "ratio recipes / hand-made: %.2f   cp -a / recipes: %.0f\n", noop / hand, copy / noop
}'
