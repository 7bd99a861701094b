#!/usr/bin/python3
"""A results file of another results schema (written by a psbench whose layout differs) is refused by every
reader and writer with one line and exit 2, and is left byte for byte as it was.

usage: other_schema_check.py PSBENCH_BINARY WORK_DIR

A copy of the committed fixture tests/fixtures/report_fixture.h5 gets results_schema = "psbench-results-99"
and psbench_version = "99.0.0". Then: `report` (the native table, a pivot, --summary, --html, --figures),
`evaluate`, `merge` (as input, with a good file beside it) and `run --out` (resuming into it) each exit 2
with one line naming the file and both schemas; the Python reader raises ResultsError. The untouched fixture
itself (no results_schema attribute: written before the attribute existed) still reads, and a file that
`run` writes now carries this psbench's schema.
"""
import hashlib
import pathlib
import shutil
import subprocess
import sys

import h5py

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import psbench_results as R  # noqa: E402
import psbench_schema as S  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "report_fixture.h5"
OTHER = "psbench-results-99"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")


def digest(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    binary, work = sys.argv[1], pathlib.Path(sys.argv[2])
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    other = work / "other_schema.h5"
    shutil.copy(FIXTURE, other)
    with h5py.File(other, "r+") as f:
        f.attrs[S.RESULTS_SCHEMA] = OTHER
        f.attrs[S.PSBENCH_VERSION] = "99.0.0"
    before = digest(other)

    cases = {
        "report (native table)": ["report", other],
        "report --rows task": ["report", other, "--rows", "task"],
        "report --summary": ["report", other, "--summary"],
        "report --html": ["report", other, "--html", work / "page.html"],
        "report --figures": ["report", other, "--figures", work / "figures"],
        "evaluate": ["evaluate", other, "--out", work / "rescored.h5"],
        "merge": ["merge", work / "merged.h5", FIXTURE, other],
        "run --out (resume)": ["run", ROOT / "experiments" / "tests" / "report_fixture.yaml", "--out", other,
                               "--threads", "1"],
    }
    for what, args in cases.items():
        p = subprocess.run([binary] + [str(a) for a in args], cwd=ROOT, capture_output=True, text=True)
        lines = p.stderr.strip().splitlines()
        one = lines[-1] if lines else ""
        check(p.returncode == 2 and len(lines) == 1 and str(other) in one and OTHER in one
              and S.RESULTS_SCHEMA_VERSION in one and "99.0.0" in one,
              f"{what}: exit {p.returncode} (expected 2), stderr {p.stderr.strip()!r}")
        check(digest(other) == before, f"{what}: the file was modified")
    check(not (work / "merged.h5").exists() and not (work / "rescored.h5").exists(),
          "merge or evaluate left an output file behind")
    print(f"another results schema: {len(cases)} commands exit 2 with one line; the file is untouched")

    try:
        R.load(other)
        check(False, "the Python reader read a file of another schema")
    except R.ResultsError as e:
        check(OTHER in str(e) and "\n" not in str(e), f"the reader's message: {e}")
    check(len(R.load(FIXTURE)) > 0, "the fixture (no results_schema attribute) no longer reads")

    fresh = work / "fresh.h5"
    p = subprocess.run([binary, "run", "experiments/tests/report_fixture.yaml", "--only", "sampler=exact",
                        "--out", str(fresh), "--threads", "1", "--quiet"], cwd=ROOT, capture_output=True, text=True)
    check(p.returncode == 0, f"run of the fixture experiment: exit {p.returncode}: {p.stderr.strip()}")
    if p.returncode == 0:
        with h5py.File(fresh, "r") as f:
            got = f.attrs.get(S.RESULTS_SCHEMA)
        got = got.decode() if isinstance(got, bytes) else got
        check(got == S.RESULTS_SCHEMA_VERSION, f"a new file carries results_schema {got!r}")
    if failures:
        print(f"{len(failures)} failure(s)")
        return 1
    print("other_schema_check: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
