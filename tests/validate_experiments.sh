#!/bin/sh
# Every experiment file under experiments/ must validate: `psbench run --dry-run` builds each cell's
# components (priors and their model files, tasks, samplers with their capability checks, metrics) and
# must leave no results file behind.
set -u
psbench=$1
root=$2
cd "$root" || exit 1
status=0
out=$(mktemp -d)
for f in $(find experiments -name '*.yaml' | sort); do
  case "$f" in
    experiments/paper/*)
      # The real-model protocols need outside files named by variables: without them the dry run must
      # stop with exit 2 and a one-line message naming the first unset variable.
      "$psbench" run "$f" --dry-run --out "$out/x.h5" > "$out/log" 2>&1
      rc=$?
      if [ $rc -ne 2 ] || ! grep -q 'is not set (pass --var PSBENCH_' "$out/log" || [ "$(wc -l < "$out/log")" -ne 1 ]; then
        echo "FAILED: $f: expected exit 2 naming an unset variable, got $rc:"; cat "$out/log"; status=1
      else
        cat "$out/log"
      fi
      continue;;
  esac
  if ! "$psbench" run "$f" --dry-run --out "$out/x.h5" > "$out/log" 2>&1; then
    echo "FAILED: $f"; cat "$out/log"; status=1
  else
    tail -n 1 "$out/log"
  fi
  if [ -e "$out/x.h5" ]; then echo "FAILED: $f: --dry-run wrote $out/x.h5"; status=1; fi
done
rm -rf "$out"
exit $status
