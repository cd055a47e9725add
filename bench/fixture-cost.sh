#!/bin/sh
# The cost of the boundary (issue: sandbox), and of a booted host. Times, pairwise in one run, the
# whole process `recipes run noop` (one no-op step on debian-sysv, warm
# cache: id slot, cgroups with limits, user namespace, locked mounts, the
# mirrored root, overlay on the idmapped base, seccomp, teardown) against
# `bwrap --bind BASE / --proc /proc --dev /dev --unshare-all true` on the
# same base, and prints both medians and the ratio. Then a no-op recipe
# with `host=debian-stock` (the sandbox, systemd booted to `running` in it,
# teardown): its whole time, and the boot alone as the report gives it
# (goal 1.5 s, bar 3 s). Any failed run stops the
# benchmark with its output: a median over fewer runs would lie.
# Usage (as root): bench/fixture-cost.sh [RUNS] [noop]   (default 31; `noop`
# stops after the no-op recipe, without the booted host). RECIPES_BIN=PATH
# times that binary instead of building one with cargo (bench/cgroup-v2-vm.sh
# runs this script inside a guest that has no cargo).
set -eu
runs=${1:-31}
only=${2:-}
top=$(cd "$(dirname "$0")/.." && pwd)
command -v bwrap >/dev/null || { echo "bwrap is missing: apt-get install bubblewrap" >&2; exit 2; }
if [ -n "${RECIPES_BIN:-}" ]; then
    bin=$RECIPES_BIN
else
    cargo build --release --quiet --manifest-path "$top/Cargo.toml"
    bin="${CARGO_TARGET_DIR:-$top/target}/release/recipes"
fi
work=$(mktemp -d /var/tmp/recipes-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/book/fr/src" "$work/book/en/src"
for lang in fr en; do
    printf '[book]\ntitle = "Bench"\n' > "$work/book/$lang/book.toml"
    printf '# Summary\n\n- [Bench](bench.md)\n' > "$work/book/$lang/src/SUMMARY.md"
    printf '# Bench\n\n```sh recipe=noop fixture=debian-sysv\ntrue\n```\n\n```sh recipe=booted host=debian-stock\ntrue\n```\n' > "$work/book/$lang/src/bench.md"
done
ln -s "$top/recipes" "$work/recipes"
base=$(cd "$work" && "$bin" fixture build debian-sysv | sed 's/^[^:]*: //')
now() { date +%s%N; }
# Runs a command, prints its wall time in microseconds; stops everything,
# with the command's output, if it fails.
timed() {
    s=$(now)
    if ! "$@" > "$work/out" 2>&1; then
        echo "failed: $*" >&2
        cat "$work/out" >&2
        exit 1
    fi
    e=$(now)
    echo $(( (e - s) / 1000 ))
}
run_noop() { (cd "$work" && "$bin" run noop -q); }
bwrap_true() { bwrap --bind "$base" / --proc /proc --dev /dev --unshare-all true; }
# The same bwrap, started in cgroups of its own with a process and a memory
# limit, as each sandbox is: moving a process into a cgroup costs the kernel
# an RCU grace period, which bwrap alone never pays.
hierarchies=$(awk '$3 == "cgroup2" || ($3 == "cgroup" && $4 ~ /(^|,)(pids|memory)(,|$)/) { print $2 }' /proc/self/mounts)
bwrap_limited() {
    sh -c '
        for h in $0; do
            mkdir -p "$h/recipes-bench"
            echo $$ > "$h/recipes-bench/cgroup.procs"
        done
        exec bwrap --bind "$1" / --proc /proc --dev /dev --unshare-all true' "$hierarchies" "$base"
    # The last task may linger in the folder for a moment after bwrap ends.
    for h in $hierarchies; do
        n=0
        until rmdir "$h/recipes-bench" 2>/dev/null; do
            n=$((n + 1))
            [ "$n" -lt 200 ] || { rmdir "$h/recipes-bench"; return 1; }
            sleep 0.005
        done
    done
}
run_noop > /dev/null && bwrap_true && bwrap_limited # warm up
: > "$work/times"
i=0
while [ "$i" -lt "$runs" ]; do
    a=$(timed run_noop)
    b=$(timed bwrap_true)
    c=$(timed bwrap_limited)
    echo "$a $b $c" >> "$work/times"
    i=$((i + 1))
done
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
noop=$(cut -d' ' -f1 "$work/times" | median)
bw=$(cut -d' ' -f2 "$work/times" | median)
limited=$(cut -d' ' -f3 "$work/times" | median)
pairwise=$(awk '{print $1 / $2}' "$work/times" | median)
echo "base: $base ($(du -sh "$base" | cut -f1))"
awk -v noop="$noop" -v bw="$bw" -v lim="$limited" -v runs="$runs" -v pairwise="$pairwise" 'BEGIN {
    printf "recipes run noop (whole process, the boundary included): median %6.1f ms\n", noop / 1000
    printf "bwrap --bind BASE / --proc /proc --dev /dev --unshare-all true: median %6.1f ms\n", bw / 1000
    printf "the same bwrap in cgroups of its own (pids, memory):           median %6.1f ms\n", lim / 1000
    printf "%d runs each; recipes / bwrap: ratio of medians %.2f, median of pairwise ratios %.2f (goal 1.5, bar 2)\n", runs, noop / bw, pairwise
    printf "recipes / bwrap in cgroups: %.2f\n", noop / lim
}'

[ "$only" = noop ] && exit 0

# A booted host: the whole recipe, and systemd's own boot as reported.
(cd "$work" && "$bin" fixture build debian-stock > /dev/null)
run_booted() { (cd "$work" && "$bin" run booted --format json > "$work/booted.json"); }
run_booted
: > "$work/boots"
i=0
while [ "$i" -lt "$runs" ]; do
    a=$(timed run_booted)
    b=$(sed -n 's/.*"booted":"[^"]*: [a-z]* in \([0-9.]*\) s.*/\1/p' "$work/booted.json")
    echo "$a $b" >> "$work/boots"
    i=$((i + 1))
done
whole=$(cut -d' ' -f1 "$work/boots" | median)
boot=$(cut -d' ' -f2 "$work/boots" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
awk -v whole="$whole" -v boot="$boot" -v runs="$runs" 'BEGIN {
    printf "recipes run booted (host=debian-stock, whole process): median %6.1f ms over %d runs (goal 1500, bar 3000)\n", whole / 1000, runs
    printf "of which systemd to running (as the report says):    median %6.1f ms\n", boot * 1000
}'
