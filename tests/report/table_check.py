#!/usr/bin/python3
"""Checks tools/psbench_table.py on the committed fixture tests/fixtures/report_fixture.h5 (made by
experiments/tests/report_fixture.yaml: exact and noise-space Langevin on a Gaussian mixture, two tasks, three
step sizes, the largest diverging).

usage: table_check.py [WORK_DIR] [--update]

1. The markdown, LaTeX and CSV tables (with --nfe; no time columns, whose values change from run to run)
   equal tests/fixtures/report_fixture.{md,tex,csv} text for text. --update rewrites those files from the
   current script instead (then read the diff before committing it).
2. Every number of the CSV equals psbench_results.aggregate() of the reader for its cell; diverged cells have
   no number and their status; every (cell, quantity) is there once.
3. The fixture combined with itself, or with a copy of itself, gives the same table.
4. A file of another experiment (a copy with another experiment_hash) is refused with one line and exit 2,
   and accepted with --allow-mixed.
5. Bad input exits 2 with one line on stderr and nothing on stdout: a text file, a truncated HDF5 file, an
   unknown metric, an unknown row or column field.
6. --summary lists the cells by status with each diverged cell's message; a copy with one cell made failed
   shows "failed 1", its message, and "failed" in the table.
7. --html writes one page with the tables and at least one embedded PNG, and no external reference.
WORK_DIR (default a temporary directory) receives the copies and outputs.
"""
import base64
import csv
import difflib
import io
import math
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

import h5py

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import psbench_results as R  # noqa: E402
import psbench_schema as S  # noqa: E402

PY = sys.executable
TABLE = str(ROOT / "tools" / "psbench_table.py")
FIXTURES = ROOT / "tests" / "fixtures"
FIXTURE = str(FIXTURES / "report_fixture.h5")
# The committed expected outputs and the options that make them.
EXPECTED = {"md": ["--nfe"], "tex": ["--nfe", "--format", "latex"], "csv": ["--nfe", "--format", "csv"]}
NFE = {"nfe_warmup_forward", "nfe_warmup_forward_backward", "nfe_chain_forward", "nfe_chain_forward_backward"}
FAILED_MESSAGE = "injected by table_check: a runtime failure"
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")
    return cond


def table(*args):
    p = subprocess.run([PY, TABLE, *map(str, args)], capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def check_expected(update):
    for ext, opts in EXPECTED.items():
        path = FIXTURES / f"report_fixture.{ext}"
        rc, out, err = table(FIXTURE, *opts)
        check(rc == 0, f"table {' '.join(opts)} exited {rc}: {err.strip()}")
        if update:
            path.write_text(out, encoding="utf-8")
            print(f"updated {path.relative_to(ROOT)}")
            continue
        want = path.read_text(encoding="utf-8")
        if not check(out == want, f"{path.name} differs from the output of psbench_table.py {' '.join(opts)}"):
            sys.stdout.writelines(difflib.unified_diff(want.splitlines(True), out.splitlines(True),
                                                       str(path.name), "output"))
    if not update:
        print("expected outputs: markdown, LaTeX and CSV equal the committed files")


def same(a, b):
    """a (text from the CSV) equals b (the reader's float): written with repr, so read back exactly."""
    if a == "":
        return isinstance(b, float) and math.isnan(b)
    return float(a) == float(b)


def check_csv_numbers():
    rc, out, err = table(FIXTURE, "--nfe", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    df = R.load(FIXTURE)
    status = dict(zip(df[R.KEY], df[S.STATUS]))
    seen = {}
    for row in rows:
        keys = row["cells"].split()
        check(len(keys) == 1, f"CSV line of {row['task']} / {row['sampler']} pools {len(keys)} cells, expected 1")
        key, q = keys[0], row["metric"]
        seen[(key, q)] = seen.get((key, q), 0) + 1
        check(row[S.STATUS] == status[key], f"CSV status of {key[:8]} is {row[S.STATUS]}, the file has {status[key]}")
        if status[key] != S.STATUS_OK:
            check(row["mean"] == "" and row["se"] == "" and row["n"] == "0",
                  f"CSV {key[:8]} {q}: a {status[key]} cell shows a number ({row['mean']})")
            continue
        agg = R.aggregate(df, q).loc[key]
        check(same(row["mean"], agg["mean"]) and same(row["se"], agg["se"]) and int(row["n"]) == agg["n"],
              f"CSV {key[:8]} {q}: mean {row['mean']} se {row['se']} n {row['n']}, aggregate() gives "
              f"{agg['mean']!r} {agg['se']!r} {agg['n']}")
        if q in df.attrs["metrics"]:
            check(row["direction"] == df.attrs["directions"][q], f"CSV {q}: direction {row['direction']}")
    quantities = set(df.attrs["metrics"]) | NFE
    for key in status:
        for q in quantities:
            check(seen.get((key, q)) == 1, f"CSV: cell {key[:8]} {q} appears {seen.get((key, q), 0)} times")
    best = [r for r in rows if r["best"] == "1"]
    check(len(best) == 2 * len(df.attrs["metrics"]), f"CSV: {len(best)} best entries, expected one per task and metric")
    print(f"CSV: {len(rows)} lines agree with aggregate() and the cells' statuses")


def check_combine(work):
    _, alone, _ = table(FIXTURE)
    rc, twice, err = table(FIXTURE, FIXTURE)
    check(rc == 0 and twice == alone, f"the fixture combined with itself: exit {rc}, same table {twice == alone}")
    copy = work / "copy.h5"
    shutil.copyfile(FIXTURE, copy)
    rc, both, err = table(FIXTURE, copy)
    check(rc == 0 and both == alone, f"the fixture with a copy: exit {rc}, same table {both == alone}")
    check("counted once" in err, f"the fixture with a copy: no note on the repeated cells ({err.strip()})")
    print("combining: the fixture with itself and with a copy gives its table")


def check_mixed(work):
    other = work / "other_experiment.h5"
    shutil.copyfile(FIXTURE, other)
    with h5py.File(other, "r+") as f:
        f.attrs[S.EXPERIMENT_HASH] = "0123456789abcdef"
    rc, out, err = table(FIXTURE, other)
    check(rc == 2 and out == "" and len(err.strip().splitlines()) == 1 and "--allow-mixed" in err,
          f"mixing experiments: exit {rc} (expected 2), stderr {err.strip()!r}")
    rc, out, err = table(FIXTURE, other, "--allow-mixed")
    check(rc == 0 and out.startswith("| task |"), f"--allow-mixed: exit {rc}, stderr {err.strip()!r}")
    print("mixing: refused (exit 2) and accepted with --allow-mixed")


def check_bad_input(work):
    text = work / "not_results.txt"
    text.write_text("not an HDF5 file\n")
    truncated = work / "truncated.h5"
    data = pathlib.Path(FIXTURE).read_bytes()
    truncated.write_bytes(data[:len(data) // 2])
    cases = {"a text file": [text], "a truncated HDF5 file": [truncated],
             "an unknown metric": [FIXTURE, "--metrics", "sliced_wasserstein,no_such_metric"],
             "an unknown row field": [FIXTURE, "--rows", "sampler.no_such_option"],
             "an unknown column field": [FIXTURE, "--cols", "nonsense"]}
    for what, args in cases.items():
        rc, out, err = table(*args)
        lines = err.strip().splitlines()
        check(rc == 2 and out == "" and len(lines) == 1 and lines[0].startswith("psbench_table: "),
              f"{what}: exit {rc} (expected 2), stdout {len(out)} chars, stderr {err.strip()!r}")
    print(f"bad input: {len(cases)} cases exit 2 with one line")


def check_summary(work):
    rc, out, err = table(FIXTURE, "--summary")
    check(rc == 0 and "8 cells: ok 6, diverged 2, failed 0" in out, f"--summary: exit {rc}, status line missing")
    df = R.load(FIXTURE)
    for _, c in df.drop_duplicates(R.KEY).iterrows():
        if c[S.STATUS] != S.STATUS_OK:
            check(f"{c[S.STATUS]} {c[R.KEY][:8]}" in out and c[S.MESSAGE] in out,
                  f"--summary does not list {c[S.STATUS]} cell {c[R.KEY][:8]} with its message")
    for needed in ("psbench 0.1.0", "git revision", "LibTorch", "device cpu", "threads 1", "s in cells"):
        check(needed in out, f"--summary lacks '{needed}'")

    failed = work / "with_failed_cell.h5"
    shutil.copyfile(FIXTURE, failed)
    # A runtime failure as the runner records it: status failed, its message, no metric values.
    with h5py.File(failed, "r+") as f:
        key = sorted(f[S.CELLS_GROUP])[0]
        cell = f[S.CELLS_GROUP][key]
        cell.attrs[S.STATUS] = S.STATUS_FAILED
        cell.attrs[S.MESSAGE] = FAILED_MESSAGE
        del cell[S.group(S.METRICS_GROUP)]
    rc, out, err = table(failed, "--summary")
    check(rc == 0 and "failed 1" in out and f"failed {key[:8]}" in out and FAILED_MESSAGE in out,
          f"--summary of a failed cell: exit {rc}; status or message missing")
    rc, out, err = table(failed, "--format", "csv")
    lines = [r for r in csv.DictReader(io.StringIO(out)) if r["cells"] == key]
    check(lines and all(r[S.STATUS] == S.STATUS_FAILED and r["mean"] == "" for r in lines),
          "the failed cell's CSV lines are not marked failed without numbers")
    rc, out, err = table(failed)
    check(" failed |" in out, "the markdown table does not show the failed cell as failed")
    print("summary: statuses, messages (diverged and failed) and provenance listed")


def check_html(work):
    page = work / "report.html"
    figures = work / "figures"
    rc, out, err = table(FIXTURE, "--html", page, "--figures-dir", figures)
    if not check(rc == 0 and page.exists(), f"--html: exit {rc}: {err.strip()}"):
        return
    text = page.read_text(encoding="utf-8")
    check("<table" in text and "6.50 ± 0.84" in text and S.STATUS_DIVERGED in text,
          "--html: the page lacks the tables (an entry of sliced_wasserstein, a diverged cell)")
    check("8 cells: ok 6, diverged 2, failed 0" in text, "--html: the page lacks the summary")
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    check(len(images) >= 1, "--html: no embedded PNG")
    check(all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images), "--html: an embedded image is not a PNG")
    pngs = sorted(figures.glob("*.png"))
    check(len(pngs) == len(images), f"--html: {len(images)} images embedded, {len(pngs)} figures made")
    external = re.findall(r'(?:src|href)="(?!data:)[^"]*"|<link\b|<script\b', text)
    check(not external, f"--html: external references {external[:3]}")
    print(f"html: {len(text) // 1024} KiB, {len(images)} embedded PNG, no external file")


def main():
    args = [a for a in sys.argv[1:] if a != "--update"]
    update = "--update" in sys.argv[1:]
    work = pathlib.Path(args[0]) if args else pathlib.Path(tempfile.mkdtemp(prefix="table_check_"))
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    check_expected(update)
    if update:
        return 0
    check_csv_numbers()
    check_combine(work)
    check_mixed(work)
    check_bad_input(work)
    check_summary(work)
    check_html(work)
    if failures:
        print(f"table_check: {len(failures)} failure(s)")
        return 1
    print("table_check: all checks passed")
    if not args:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
