#!/bin/bash
# The README's labeling-speed rows: this tree against the tree before issue 15 (a1f8c0c), same machine,
# same synthetic files; labeling pinned to 2 cores (taskset -c 0,1), the 1-core Pillow draft baseline
# to core 2. Needs python3 with the base dependencies; no project data. Usage: benchmarks/pinned/compare.sh
set -e
cd "$(dirname "$0")/../.."
PY=${PY:-python3}; T=${TMPDIR:-/tmp}/fashion-pinned; OLD=${OLD_TREE:-$T/old}  # OLD_TREE: where there is no .git
mkdir -p "$T/new" "$OLD/fashion_edge"; ln -sfn "$PWD" "$T/new/fashion_edge"
[ -f "$OLD/fashion_edge/runtime/labeling.py" ] || { git archive a1f8c0c runtime benchmarks | tar -x -C "$OLD/fashion_edge"; touch "$OLD/fashion_edge/__init__.py"; }
G=benchmarks/pinned/synthetic_photos.py
[ -f "$T/p12/00199.jpg" ] || { for k in 0 1 2 3 4 5 6 7; do $PY $G "$T/p12" 200 photo $k 8 & done; wait; }
[ -f "$T/thumbs/01999.jpg" ] || { for k in 0 1 2 3; do $PY $G "$T/thumbs" 2000 thumb $k 4 & done; wait; }
M=$PWD/models/articletype8/model_int8.onnx
new() { PYTHONPATH=$T/new taskset -c 0,1 $PY -m fashion_edge.benchmarks.photobench --child-label "$1" "$M" --threads 2; }
old() { PYTHONPATH=$OLD taskset -c 0,1 $PY -m fashion_edge.benchmarks.labelbench "$1" "$M" --threads 2 --workers 2; }
for rep in 1 2 3; do
  echo "base1 $(PYTHONPATH=$T/new taskset -c 2 $PY -m fashion_edge.benchmarks.photobench --child-baseline "$T/p12" --size 80x60)"
  echo "new-photos $(new "$T/p12")"
  echo "new-thumbs $(new "$T/thumbs")"
  echo "old-thumbs $(old "$T/thumbs")"
done
echo "old-photos $(old "$T/p12")"
