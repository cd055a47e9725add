#!/bin/sh
# Generates a book of 1,000 pages holding 5,000 recipes (both languages) and
# prints the median time of `recipes list` and `recipes check` over several
# runs. Usage: bench/book-scale.sh [RUNS]   (default 7)
set -eu
runs=${1:-7}
top=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --quiet --manifest-path "$top/Cargo.toml"
bin="$top/target/release/recipes"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
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
    s=$(date +%s%N); "$@" >/dev/null; e=$(date +%s%N); echo $(( (e - s) / 1000000 ))
}
cd "$work"
for cmd in "list --format json" "check"; do
    times=""
    for _ in $(seq "$runs"); do
        # shellcheck disable=SC2086
        times="$times $(time_ms "$bin" $cmd)"
    done
    m=$(echo "$times" | tr ' ' '\n' | grep . | median)
    echo "recipes $cmd: median ${m} ms over $runs runs (1000 pages, 5000 recipes, 15000 steps per language)"
done
