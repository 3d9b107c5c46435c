#!/usr/bin/env bash
# Run every example project end to end with the assay command line.
#
#   bash examples/run_all.sh
#
# Each example is copied to a temporary folder first, so the repository stays
# clean. The `assay` used is, in order: $ASSAY if set, the repository's
# .venv/bin/assay if it exists, or the one on PATH. Exits non-zero as soon as
# any command fails, or if a repeated run executes anything instead of using
# the cache.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
if [[ -n "${ASSAY:-}" ]]; then
    assay="$ASSAY"
elif [[ -x "$repo/.venv/bin/assay" ]]; then
    assay="$repo/.venv/bin/assay"
elif command -v assay >/dev/null; then
    assay="$(command -v assay)"
else
    echo "run_all.sh: no 'assay' command found. Install it first:" >&2
    echo "  python3 -m venv .venv && .venv/bin/pip install -e '.[examples]'" >&2
    exit 1
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

step() {
    echo
    echo "==> $*"
    "$@"
}

# Run the same experiment again and check that every stage came from the cache.
rerun_cached() {
    echo
    echo "==> $* (again: everything must be cached)"
    local output
    output="$("$@")"
    echo "$output"
    if grep -q " executed" <<<"$output"; then
        echo "run_all.sh: the repeated run executed stages instead of using the cache" >&2
        exit 1
    fi
}

# -- the project `assay init` creates ----------------------------------------------
step "$assay" init "$tmp/new-project"
cd "$tmp/new-project"
step "$assay" run example -p example
rerun_cached "$assay" run example -p example

# -- examples/iris: scikit-learn on the iris flowers --------------------------------
cp -r "$here/iris" "$tmp/"
cd "$tmp/iris"
step "$assay" run iris -p grid
rerun_cached "$assay" run iris -p grid
step "$assay" run iris -p quick
# The same runs again on 2 worker processes, and on a local Dask cluster if installed.
step "$assay" run iris -p grid --parallel 2 --overwrite
python="$(dirname "$assay")/python"
if [[ -x "$python" ]] && "$python" -c "import distributed" 2>/dev/null; then
    step "$assay" run iris -p grid --executor dask --overwrite
else
    echo "(skipping --executor dask: dask.distributed is not installed; pip install 'assay[dask]')"
fi
# A --parallel run, exported as it ends, re-runs (serially) to the same bytes:
# `assay reproduce` exits non-zero unless every artifact is identical.
step "$assay" run iris -p quick --parallel 2 --overwrite --store-full
step "$assay" reproduce "$(ls -d data/runs/iris-* | sort | tail -n 1)"
step "$assay" ls
step "$assay" show latest
step "$assay" params iris -p grid
step "$assay" cache verify
step "$assay" report --all
test -s reports/index.html

# -- examples/from-curifactory: written for Curifactory, only the imports renamed ----
cp -r "$here/from-curifactory" "$tmp/"
cd "$tmp/from-curifactory"
step "$assay" run wine -p models
rerun_cached "$assay" run wine -p models
step "$assay" run wine -p models --parallel 2 --overwrite

echo
echo "All examples ran."
