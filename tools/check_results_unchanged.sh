#!/bin/sh
# Checks that a change leaves results unchanged: runs the test experiments (and quick.yaml) with a
# reference psbench binary and with the current one, same seed and one thread, and compares every
# stored array bit for bit (tools/compare_results.py; wall times ignored, trace columns reported).
#
#   tools/check_results_unchanged.sh REF_PSBENCH [NEW_PSBENCH] [EXPERIMENT.yaml ...]
#
# A reference binary comes from a build of the reference revision, e.g.
#   git worktree add /tmp/ref REV && cmake -S /tmp/ref -B /tmp/ref/build && cmake --build /tmp/ref/build -j2
#   tools/check_results_unchanged.sh /tmp/ref/build/psbench build/psbench
set -eu
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 REF_PSBENCH [NEW_PSBENCH] [EXPERIMENT.yaml ...]" >&2; exit 2; }
ref=$1; shift
new=build/psbench
if [ $# -ge 1 ] && [ "${1%.yaml}" = "$1" ]; then new=$1; shift; fi
[ $# -ge 1 ] || set -- experiments/tests/tiny.yaml experiments/tests/neural_tiny.yaml experiments/quick.yaml
out=$(mktemp -d)
status=0
for ex in "$@"; do
  name=$(basename "$ex" .yaml)
  echo "== $ex"
  "$ref" run "$ex" --out "$out/$name.ref.h5" --threads 1 --fresh >/dev/null 2>"$out/$name.ref.log" || true
  "$new" run "$ex" --out "$out/$name.new.h5" --threads 1 --fresh >/dev/null 2>"$out/$name.new.log" || true
  /usr/bin/python3 tools/compare_results.py "$out/$name.ref.h5" "$out/$name.new.h5" || status=1
done
echo "results in $out"
exit $status
