#!/bin/sh
# The whole book N times (default 20) under load: both processors saturated
# by busy loops and the disk writing (dd with direct I/O, in a loop), then
# the failures per recipe. Prints figures and asserts nothing, but exits 1
# when any run had a failure, after the figures, so a flaky book never
# passes for a steady one.
#
# Usage: bench/flake.sh [RUNS] [--jobs N]   (run as root, like the book)
#   RECIPES=path/to/recipes   the binary (default: a release build)
#   LOAD=0                    run without the load (a baseline)
#   FLAKE_OUT=DIR             keep every run's JSON events in DIR (kept
#                             afterwards, so an interrupted bench can be read)
set -eu
runs=20
jobs=""
while [ $# -gt 0 ]; do
    case $1 in
        --jobs) jobs=$2; shift ;;
        [0-9]*) runs=$1 ;;
        *) echo "usage: $0 [RUNS] [--jobs N]" >&2; exit 2 ;;
    esac
    shift
done
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${RECIPES:-}" ]; then
    cargo build --release --quiet --manifest-path "$top/Cargo.toml"
    RECIPES="$top/target/release/recipes"
fi
work=${FLAKE_OUT:-$(mktemp -d)}
mkdir -p "$work"
load_pids=""
stop_load() {
    # shellcheck disable=SC2086
    [ -n "$load_pids" ] && kill $load_pids 2>/dev/null
    wait 2>/dev/null || true
    rm -f "$work/disk-load"
    [ -n "${FLAKE_OUT:-}" ] || rm -rf "$work"
}
trap stop_load EXIT
trap 'exit 130' INT TERM

if [ "${LOAD:-1}" = 1 ]; then
    cpus=$(nproc)
    i=0
    while [ "$i" -lt "$cpus" ]; do
        sh -c 'while :; do :; done' &
        load_pids="$load_pids $!"
        i=$((i + 1))
    done
    (while :; do
        dd if=/dev/zero of="$work/disk-load" bs=1M count=512 oflag=direct status=none
        rm -f "$work/disk-load"
    done) &
    load_pids="$load_pids $!"
    echo "load: $cpus busy loops and a writing disk" >&2
fi

cd "$top"
echo "warm-up: recipes test ${jobs:+--jobs $jobs}" >&2
# shellcheck disable=SC2086
"$RECIPES" test ${jobs:+--jobs $jobs} --format json >"$work/warm.json" 2>"$work/warm.err" || true
n=1
while [ "$n" -le "$runs" ]; do
    # shellcheck disable=SC2086
    "$RECIPES" test ${jobs:+--jobs $jobs} --format json >"$work/run-$n.json" 2>"$work/run-$n.err" || true
    echo "run $n of $runs: $(tail -n 1 "$work/run-$n.json")" >&2
    n=$((n + 1))
done

python3 - "$work" "$runs" <<'PY'
import glob, json, sys
work, runs = sys.argv[1], int(sys.argv[2])
fails, seen, messages, summaries = {}, set(), {}, 0
for path in sorted(glob.glob(f"{work}/run-*.json")):
    for line in open(path):
        try:
            e = json.loads(line)
        except ValueError:
            continue
        if e.get("event") == "summary":
            summaries += 1
        if e.get("event") != "finished":
            continue
        seen.add(e["id"])
        if e["status"] not in ("passed", "skipped"):
            fails[e["id"]] = fails.get(e["id"], 0) + 1
            f = e.get("failure") or {}
            messages.setdefault(e["id"], []).append(
                f"{e['status']}: {f.get('path', '')}:{f.get('line', '')}: "
                f"{f.get('message', e.get('reason', ''))}".strip())
total = sum(fails.values())
print(f"runs: {runs} ({summaries} completed), recipes: {len(seen)}, failures: {total}")
for rid, count in sorted(fails.items(), key=lambda kv: -kv[1]):
    print(f"  {rid}: failed {count} of {runs}")
    for m in messages[rid][:3]:
        print(f"    {m.splitlines()[0] if m else ''}")
sys.exit(1 if total or summaries != runs else 0)
PY
