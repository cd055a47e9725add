#!/bin/sh
# The whole book's wall time under `recipes test` (its default --jobs unless
# given), warm, and the busy processor time it used (the machine's, from
# /proc/stat: nothing else should run meanwhile), against its
# longest recipe run alone: prints both, their ratio (goal 1.2x, bar 1.3x),
# every recipe's time, slowest first, and those over 5 s. It prints figures and asserts no
# time; it fails loudly (a message, exit 1) when any run fails, after the
# figures, so that a broken book never passes for a fast one.
#
# Usage: bench/book-time.sh [--cold] [--jobs N]   (run as root, like the book)
#   RECIPES=path/to/recipes   the binary (default: a release build)
#   --cold                    skip the warm-up run (bases must exist anyway)
set -eu
jobs=""
warm=1
while [ $# -gt 0 ]; do
    case $1 in
        --cold) warm=0 ;;
        --jobs) jobs=$2; shift ;;
        *) echo "usage: $0 [--cold] [--jobs N]" >&2; exit 2 ;;
    esac
    shift
done
top=$(cd "$(dirname "$0")/.." && pwd)
if [ -z "${RECIPES:-}" ]; then
    cargo build --release --quiet --manifest-path "$top/Cargo.toml"
    RECIPES="$top/target/release/recipes"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$top"
failed=""
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# A JSON event per line; the summary says whether everything passed.
run_book() { # OUT
    # shellcheck disable=SC2086
    "$RECIPES" test ${jobs:+--jobs $jobs} --format json >"$1" 2>"$1.err" || true
}

if [ "$warm" = 1 ]; then
    echo "warm-up: recipes test ${jobs:+--jobs $jobs}" >&2
    run_book "$work/warm.json"
fi
echo "measuring: recipes test ${jobs:+--jobs $jobs}" >&2
# Busy processor time (user, nice, system, irq, softirq) in clock ticks.
busy_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
busy0=$(busy_ticks)
start=$(now_ms)
run_book "$work/book.json"
wall=$(( $(now_ms) - start ))
busy_ms=$(( ($(busy_ticks) - busy0) * 1000 / $(getconf CLK_TCK) ))
jobs_used=$(sed -n 's/.*"event":"run-started".*"jobs":\([0-9]*\).*/\1/p; s/.*"jobs":\([0-9]*\).*"event":"run-started".*/\1/p' "$work/book.json" | head -n 1)
cpus=$(nproc)

# Per-recipe durations, slowest first: "ms id status".
python3 - "$work/book.json" "$work/failures.txt" >"$work/recipes.txt" <<'PY'
import json, sys
rows = []
for line in open(sys.argv[1]):
    try:
        e = json.loads(line)
    except ValueError:
        continue
    if e.get("event") == "finished":
        rows.append((e.get("duration_ms", 0), e["id"], e["status"]))
        if e["status"] not in ("passed", "skipped"):
            # What went wrong, kept for the end: a flake is diagnosed from it.
            failure = e.get("failure") or {}
            with open(sys.argv[2], "a") as out:
                out.write("--- %s (%s): %s\n%s\n" % (e["id"], e["status"],
                          failure.get("message", e.get("reason", "")),
                          failure.get("output", "")))
for ms, rid, status in sorted(rows, reverse=True):
    print(ms, rid, status)
PY
if [ ! -s "$work/recipes.txt" ]; then
    echo "FAILED: the book run reported no recipe:" >&2
    cat "$work/book.json.err" >&2
    exit 1
fi
not_passed=$(awk '$3 != "passed" && $3 != "skipped" {print $2 " (" $3 ")"}' "$work/recipes.txt")
[ -z "$not_passed" ] || failed="the book run: $(echo $not_passed)"

longest=$(head -n 1 "$work/recipes.txt" | cut -d' ' -f2)
in_run=$(head -n 1 "$work/recipes.txt" | cut -d' ' -f1)
echo "measuring: recipes run $longest (alone)" >&2
start=$(now_ms)
if ! "$RECIPES" run "$longest" >"$work/alone.txt" 2>&1; then
    failed="${failed:+$failed; }recipes run $longest"
fi
alone=$(( $(now_ms) - start ))

secs() { awk -v ms="$1" 'BEGIN { printf "%.1f s", ms / 1000 }'; }
echo "book, --jobs ${jobs_used:-?}, warm:    $(secs "$wall")"
echo "longest recipe alone:     $(secs "$alone")  ($longest; $(secs "$in_run") within the book run)"
awk -v w="$wall" -v a="$alone" 'BEGIN { r = w / a; printf "ratio:                    %.2fx  (goal 1.2x, bar 1.3x: %s)\n", r, r <= 1.2 ? "goal met" : r <= 1.3 ? "under the bar" : "over the bar" }'
awk -v ms="$busy_ms" -v cpus="$cpus" 'BEGIN { printf "processor time:           %.1f s  (/ %d processors = %.1f s, a floor for the book)\n", ms / 1000, cpus, ms / 1000 / cpus }'
echo "recipes, slowest first (within the book run):"
while read -r ms id status; do
    printf '  %-22s %8s  %s\n' "$id" "$(secs "$ms")" "$status"
done <"$work/recipes.txt"
over=$(awk '$1 > 5000 {print $2}' "$work/recipes.txt")
echo "recipes over 5 s: ${over:-none}" | tr '\n' ' '
echo
if [ -n "$failed" ]; then
    [ -s "$work/failures.txt" ] && cat "$work/failures.txt" >&2
    echo "FAILED: $failed" >&2
    echo "(the figures above are not a valid measure of a passing book)" >&2
    exit 1
fi
