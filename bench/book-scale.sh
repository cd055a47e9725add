#!/bin/sh
# Generates a book of 1,000 pages holding 5,000 recipes (both languages) and
# prints the median time of `recipes list` and `recipes check` over several
# runs.
#
# Usage: [BASE=path/to/other/recipes] [KEEP=dir] bench/book-scale.sh [RUNS]
#   RUNS  runs per command (default 7)
#   BASE  another build of `recipes` (an older commit, say) timed on the
#         same book in the same run, each run alternating which goes
#         first; both medians are printed, and this build's time as a
#         ratio of BASE's.
#   KEEP  generate the book in this folder and keep it (for profiling).
set -eu
runs=${1:-7}
top=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$top/Cargo.toml"
bin="${CARGO_TARGET_DIR:-$top/target}/release/recipes"
base=${BASE:-}
if [ -n "$base" ] && [ ! -x "$base" ]; then
    echo "BASE=$base is not an executable" >&2
    exit 2
fi
if [ -n "${KEEP:-}" ]; then
    work=$KEEP
    rm -rf "$work/book"
    mkdir -p "$work"
else
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
fi
python3 - "$work" <<'PY'
import os, sys
root = sys.argv[1]
for lang in ("fr", "en"):
    src = os.path.join(root, "book", lang, "src")
    os.makedirs(src)
    open(os.path.join(root, "book", lang, "book.toml"), "w").write(f'[book]\ntitle = "Bench"\nlanguage = "{lang}"\n')
    summary = ["# Summary\n"]
    for p in range(1000):
        name = f"part{p // 100}/page{p}.md"
        os.makedirs(os.path.join(src, f"part{p // 100}"), exist_ok=True)
        summary.append(f"- [Page {p}]({name})")
        body = [f"# Page {p}\n", "Some prose with accents: été, chaîne.\n"]
        for r in range(5):
            rid = f"r{p}-{r}"
            body.append(f"```sh recipe={rid} timeout=5s\necho {rid}\n```\n")
            body.append(f"```text recipe={rid} expect\n{rid}\n```\n")
            body.append(f"```console recipe={rid}\n$ echo [..]\n[..]\n```\n")
        open(os.path.join(src, name), "w").write("\n".join(body))
    open(os.path.join(src, "SUMMARY.md"), "w").write("\n".join(summary) + "\n")
PY
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
time_ms() { # command...
    s=$(date +%s%N); "$@" >/dev/null 2>&1 || true; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
}
cd "$work"
what="1000 pages, 5000 recipes, 15000 steps per language"
for cmd in "list --format json" "check"; do
    times=""
    base_times=""
    for run in $(seq "$runs"); do
        # shellcheck disable=SC2086
        if [ -z "$base" ]; then
            times="$times $(time_ms "$bin" $cmd)"
        elif [ $((run % 2)) -eq 1 ]; then
            times="$times $(time_ms "$bin" $cmd)"
            base_times="$base_times $(time_ms "$base" $cmd)"
        else
            base_times="$base_times $(time_ms "$base" $cmd)"
            times="$times $(time_ms "$bin" $cmd)"
        fi
    done
    m=$(echo "$times" | tr ' ' '\n' | grep . | median)
    if [ -z "$base" ]; then
        echo "recipes $cmd: median ${m} ms over $runs runs ($what)"
        continue
    fi
    b=$(echo "$base_times" | tr ' ' '\n' | grep . | median)
    ratio=$(awk -v m="$m" -v b="$b" 'BEGIN { if (b > 0) printf "%.2f", m / b; else print "n/a" }')
    echo "recipes $cmd: median ${m} ms, BASE ${b} ms, ratio ${ratio} over $runs runs each ($what)"
done
