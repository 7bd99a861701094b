#!/usr/bin/python3
"""Checks tools/psbench_results.py (the pandas reader) and tools/psbench_figures.py on fresh results.

usage: figures_check.py PSBENCH_BINARY [WORK_DIR]

1. Runs experiments/tests/figures_gmm.yaml (Gaussian mixture: exact and noise-space Langevin over step size,
   burn-in and K, some cells diverging) and experiments/tests/figures_images.yaml (Fashion-MNIST, shipped
   consistency model, three tasks, samples stored) with the binary.
2. The reader against the HDF5 arrays read here with h5py: one row per (cell, measurement), every cell kept
   (diverged and failed ones with their status and NaN metrics), per-measurement values and their means,
   per-set metrics repeated and listed, options flattened, NFE, seconds and resources; several files combine.
3. The figures: the expected files (PNG, PDF, CSV) for each input, PNG pixel sizes, and every CSV number
   against the HDF5 arrays (and the reader's aggregate).
4. Bad input: a text file, a truncated HDF5 file, an HDF5 file without cells, an unknown --metric; each exits 2
   with a one-line message, for both scripts.
Run from anywhere; the experiments run in the source tree (their model paths are relative to it).
"""
import csv
import math
import os
import pathlib
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools"))
import psbench_results as R  # noqa: E402
import psbench_schema as S  # noqa: E402

PY = sys.executable
READER = str(ROOT / "tools" / "psbench_results.py")
FIGURES = str(ROOT / "tools" / "psbench_figures.py")
failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print(f"FAIL: {what}")


def close(a, b, rtol=1e-9, atol=1e-12):
    a, b = float(a), float(b)
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return math.isclose(a, b, rel_tol=rtol, abs_tol=atol)


def run_psbench(binary, experiment, out):
    cmd = [binary, "run", experiment, "--out", out, "--fresh", "--threads", "1"]
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"figures_check: {' '.join(cmd)} exited {p.returncode}:\n{p.stdout}{p.stderr}")
    print((p.stdout + p.stderr).strip().splitlines()[-1])


def h5_cells(path):
    """{key: {"attrs", "cfg" (the parsed configuration), "arrays": {name: array}}} read with h5py alone (the reader is under test)."""
    out = {}
    with h5py.File(path, "r") as f:
        for key, c in f[S.CELLS_GROUP].items():
            arrays = {}
            c.visititems(lambda name, obj: arrays.__setitem__(name, np.asarray(obj[()]))
                         if isinstance(obj, h5py.Dataset) else None)
            attrs = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in c.attrs.items()}
            out[key] = {"attrs": attrs, "cfg": yaml.safe_load(attrs[S.CONFIG]), "arrays": arrays}
    return out


def expected_stats(values):
    """Mean, standard error and count over the finite values (the figures' aggregation, written again here)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    n = len(v)
    mean = float(np.mean(v)) if n else float("nan")
    se = float(np.std(v, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
    return mean, se, n


def as_number(value):
    """A config value as the reader should give it: PyYAML leaves "1e-05" a string, the reader a number."""
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def nfe_total(arrays):
    return sum(float(np.mean(arrays[n])) for n in (S.NFE_WARMUP_FORWARD, S.NFE_WARMUP_FORWARD_BACKWARD,
                                                  S.NFE_CHAIN_FORWARD, S.NFE_CHAIN_FORWARD_BACKWARD))


# ------------------------------------------------------------------------------------------ reader --

def check_reader(path, h5, metrics):
    df = R.load(path)
    tag = os.path.basename(path)
    total = sum(int(c["cfg"]["measurements"]) for c in h5.values())
    check(len(df) == total, f"{tag}: {len(df)} rows, expected {total} (sum over cells of measurements)")
    check(set(df[R.KEY]) == set(h5), f"{tag}: cells missing from the frame: {set(h5) - set(df[R.KEY])}")
    for key, c in h5.items():
        rows = df[df[R.KEY] == key].sort_values(R.MEASUREMENT)
        cfg = c["cfg"]
        m = int(cfg["measurements"])
        check(len(rows) == m and list(rows[R.MEASUREMENT]) == list(range(m)), f"{tag} {key}: measurement rows")
        check(set(rows[S.STATUS]) == {c["attrs"][S.STATUS]}, f"{tag} {key}: status")
        check(set(rows["samples_per_measurement"]) == {cfg["samples_per_measurement"]}, f"{tag} {key}: K column")
        check(set(rows[S.CELL_INDEX]) == {int(c["attrs"][S.CELL_INDEX])}, f"{tag} {key}: cell_index")
        for comp in ("task", "prior", "sampler"):
            for opt, val in cfg[comp].items():
                col = f"{comp}.{opt}"
                got = rows[col].iloc[0]
                want = as_number(val)
                ok = close(got, want) if isinstance(want, (int, float)) and not isinstance(want, bool) else got == want
                check(ok, f"{tag} {key}: option {col} = {got!r}, config has {val!r}")
        for label in metrics:
            name = S.METRICS_GROUP + label
            if c["attrs"][S.STATUS] != S.STATUS_OK and name not in c["arrays"]:
                check(rows[label].isna().all(), f"{tag} {key}: {c['attrs'][S.STATUS]} cell has {label} values")
                continue
            if name not in c["arrays"]:
                continue
            want = c["arrays"][name]
            if S.SCORED_MEASUREMENTS in c["arrays"]:
                # A diverged cell scored over part of its measurements: NaN on the lost ones.
                check(c["attrs"][S.STATUS] == S.STATUS_DIVERGED, f"{tag} {key}: {S.SCORED_MEASUREMENTS} in an ok cell")
                full = np.full(m, np.nan)
                full[c["arrays"][S.SCORED_MEASUREMENTS]] = want
                want = full
            got = rows[label].to_numpy()
            check(np.array_equal(got, want, equal_nan=True), f"{tag} {key}: {label} per measurement {got} != {want}")
            check(close(np.nanmean(got), np.nanmean(want)), f"{tag} {key}: mean {label}")
            agg = R.aggregate(df, label).loc[key]
            mean, se, n = expected_stats(want)
            check(close(agg["mean"], mean) and close(agg["se"], se) and agg["n"] == n,
                  f"{tag} {key}: aggregate({label}) = {tuple(agg)}, expected {(mean, se, n)}")
        for ds, col in ((S.NFE_WARMUP_FORWARD, "nfe_warmup_forward"), (S.NFE_CHAIN_FORWARD_BACKWARD,
                                                                      "nfe_chain_forward_backward"),
                        (S.TIME_WARMUP_SECONDS, "warmup_seconds"), (S.TIME_SAMPLING_SECONDS, "sampling_seconds")):
            check(np.array_equal(rows[col].to_numpy(), c["arrays"][ds]), f"{tag} {key}: {col}")
        for ds, col in ((S.RESOURCES_CELL_SECONDS, "cell_seconds"), (S.RESOURCES_SCORING_SECONDS, "scoring_seconds")):
            check((rows[col] == c["arrays"][ds][0]).all(), f"{tag} {key}: {col} repeated per row")
        level = {k[len(S.METRIC_LEVEL_PREFIX):]: v for k, v in c["attrs"].items()
                 if k.startswith(S.METRIC_LEVEL_PREFIX)}
        for label, lev in level.items():
            if lev == S.LEVEL_PER_SET and c["attrs"][S.STATUS] == S.STATUS_OK:
                check(label in df.attrs["per_set_metrics"], f"{tag}: per-set {label} not listed")
                check((rows[label] == c["arrays"][S.METRICS_GROUP + label][0]).all(),
                      f"{tag} {key}: per-set {label} not repeated on every row")
    return df


def check_failed_cell(gmm, work):
    """A cell that failed at run time has no arrays but its attributes: it keeps its rows, NaN metrics."""
    path = os.path.join(work, "with_failed.h5")
    shutil.copy(gmm, path)
    with h5py.File(path, "r+") as f:
        cells = f[S.CELLS_GROUP]
        key = next(k for k, c in cells.items() if c.attrs[S.STATUS] == S.STATUS_OK and S.CHAINS in c.attrs
                   and int(c.attrs[S.CHAINS]) < 10)
        c = cells[key]
        c.attrs[S.STATUS] = S.STATUS_FAILED
        c.attrs[S.MESSAGE] = "injected by figures_check"
        for g in list(c.keys()):
            if g != S.group(S.RESOURCES_GROUP):
                del c[g]
    df = R.load(path)
    rows = df[df[R.KEY] == key]
    m = int(rows["measurements"].iloc[0]) if len(rows) else -1
    check(len(rows) == m and m > 0, f"failed cell {key}: {len(rows)} rows, expected {m}")
    check((rows[S.STATUS] == S.STATUS_FAILED).all(), "failed cell: status column")
    check(rows["sliced_wasserstein"].isna().all() and rows["nfe_chain_forward"].isna().all(),
          "failed cell: metrics and NFE must be NaN")
    p = subprocess.run([PY, FIGURES, path, "--out", os.path.join(work, "fig_failed"), "--kind", "nfe"],
                       capture_output=True, text=True)
    check(p.returncode == 0, f"figures on a file with a failed cell: exit {p.returncode}: {p.stderr}")
    rows = read_csv(os.path.join(work, "fig_failed", "nfe_sliced_wasserstein.csv"))
    failed = [r for r in rows if r[R.KEY] == key]
    check(len(failed) == 1 and failed[0][S.STATUS] == S.STATUS_FAILED, "failed cell missing from the nfe CSV")


# ----------------------------------------------------------------------------------------- figures --

def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def num(text):
    return float(text) if text not in ("", None) else float("nan")


def run_figures(files, out, *extra):
    p = subprocess.run([PY, FIGURES, *files, "--out", out, *extra], capture_output=True, text=True)
    print(p.stdout.strip())
    if p.returncode != 0:
        sys.exit(f"figures_check: psbench_figures.py exited {p.returncode}: {p.stderr}")
    return p.stdout


def check_files(out, expected):
    """expected: {basename: (width, height)}; every figure with its PDF and CSV, nothing else."""
    names = sorted(os.listdir(out))
    want = sorted(f"{b}.{ext}" for b in expected for ext in ("png", "pdf", "csv"))
    check(names == want, f"{out}: files {names}, expected {want}")
    for base, size in expected.items():
        png = os.path.join(out, base + ".png")
        if not os.path.exists(png):
            continue
        for ext in ("png", "pdf", "csv"):
            check(os.path.getsize(os.path.join(out, f"{base}.{ext}")) > 0, f"{base}.{ext} is empty")
        got = png_size(png)
        check(got == size, f"{base}.png: {got} pixels, expected {size}")


def check_metric_csv(path, h5, df, metric, x_column):
    rows = read_csv(path)
    keys = [r[R.KEY] for r in rows]
    check(sorted(keys) == sorted(h5), f"{os.path.basename(path)}: cells {len(keys)}, file has {len(h5)}")
    agg = R.aggregate(df, metric)
    for r in rows:
        c = h5[r[R.KEY]]
        arr = c["arrays"].get(S.METRICS_GROUP + metric, [])
        mean, se, n = expected_stats(arr)
        tag = f"{os.path.basename(path)} {r[R.KEY]}"
        check(r[S.STATUS] == c["attrs"][S.STATUS], f"{tag}: status")
        check(close(num(r[f"{metric}_mean"]), mean), f"{tag}: mean {r[f'{metric}_mean']} != {mean}")
        check(close(num(r[f"{metric}_se"]), se), f"{tag}: se {r[f'{metric}_se']} != {se}")
        check(int(r["n_measurements"]) == n, f"{tag}: n")
        check(close(num(r[f"{metric}_mean"]), agg.loc[r[R.KEY], "mean"]), f"{tag}: differs from the reader's aggregate")
        if x_column == "nfe_per_measurement" or "nfe_per_measurement" in r:
            check(close(num(r["nfe_per_measurement"]), nfe_total(c["arrays"])), f"{tag}: NFE")
        if x_column == "option_value":
            opt = r["option"].split(".", 1)[1]
            check(close(num(r["option_value"]), float(c["cfg"]["sampler"][opt])), f"{tag}: {r['option']}")


def check_timing_csv(path, h5):
    rows = read_csv(path)
    ok = {k for k, c in h5.items() if c["attrs"][S.STATUS] == S.STATUS_OK}
    check({r[R.KEY] for r in rows} == ok, f"timing.csv: cells {len(rows)}, expected the {len(ok)} ok cells")
    for r in rows:
        a = h5[r[R.KEY]]["arrays"]
        total = np.asarray(a[S.TIME_WARMUP_SECONDS]) + np.asarray(a[S.TIME_SAMPLING_SECONDS])
        mean, se, _ = expected_stats(total)
        check(close(num(r["total_seconds_mean"]), mean) and close(num(r["total_seconds_se"]), se),
              f"timing.csv {r[R.KEY]}: total seconds")
        check(close(num(r["sampling_seconds_mean"]), np.mean(a[S.TIME_SAMPLING_SECONDS])),
              f"timing.csv {r[R.KEY]}: sampling seconds")
        check(int(r["samples_per_measurement"]) == h5[r[R.KEY]]["cfg"]["samples_per_measurement"],
              f"timing.csv {r[R.KEY]}: K")
        if int(r[S.CHAINS]) < int(r["samples_per_measurement"]):  # chain iterates: batched = one at a time
            check(close(num(r["one_at_a_time_seconds"]), mean), f"timing.csv {r[R.KEY]}: one-at-a-time seconds")


def check_one_at_a_time():
    """The one-sample-at-a-time cost of the timing figure: K x the K = 1 cell for independent runs only."""
    import pandas as pd
    import psbench_figures as F
    line = pd.DataFrame({"samples_per_measurement": [1, 4, 16], S.CHAINS: ["1", "4", "16"], "mean": [2.0, 5.0, 9.0]})
    got = F.independent_runs_cost(line)
    check(got is not None and list(got) == [2.0, 8.0, 32.0], f"one at a time, independent runs: {got}")
    chain = line.assign(**{S.CHAINS: ["1", "1", "1"]})
    check(F.independent_runs_cost(chain) is None, "one at a time: a single chain's iterates are not independent runs")
    check(F.independent_runs_cost(line.iloc[1:]) is None, "one at a time: no K = 1 cell, no estimate")


def check_traces_csv(path, h5, m):
    rows = read_csv(path)
    got = {}
    for r in rows:
        got.setdefault((r[R.KEY], r["trace"]), []).append((int(r["step"]), num(r["value"])))
    want = {}
    for key, c in h5.items():
        for t in ("warmup_loss", "chain_loss"):
            name = S.TRACE_GROUP + t + "/" + S.measurement_name(m)
            if name in c["arrays"]:
                want[(key, t)] = c["arrays"][name]
    check(set(got) == set(want), f"{os.path.basename(path)}: traces {len(got)}, file has {len(want)}")
    for k, v in want.items():
        values = [x for _, x in sorted(got.get(k, []))]
        check(len(values) == len(v) and all(close(a, b) for a, b in zip(values, v)),
              f"{os.path.basename(path)}: {k} values differ")


def check_grid_csv(path, h5, m):
    rows = read_csv(path)
    check(len(rows) > 0, f"{os.path.basename(path)}: no rows")
    for r in rows:
        c = h5[r[R.KEY]]
        tag = f"{os.path.basename(path)} {r[R.KEY]}"
        k = int(c["cfg"]["samples_per_measurement"])
        check(int(r["samples_stored"]) == k and int(r["samples_shown"]) == min(8, k), f"{tag}: samples counted")
        # The displayed standard deviation map is the one pixel_std averages (unbiased, over the K samples).
        want = c["arrays"][S.METRICS_GROUP + "pixel_std"][m]
        check(close(num(r["pixel_std_map_mean"]), want, rtol=1e-5), f"{tag}: std map mean "
              f"{r['pixel_std_map_mean']} != pixel_std {want}")
        check(close(num(r["psnr"]), c["arrays"][S.METRICS_GROUP + "psnr"][m]), f"{tag}: psnr")


# ------------------------------------------------------------------------------------- bad input --

def check_bad_input(work, gmm):
    text = os.path.join(work, "not_results.txt")
    with open(text, "w") as f:
        f.write("this is not an HDF5 file\n")
    truncated = os.path.join(work, "truncated.h5")
    with open(gmm, "rb") as f:
        data = f.read()
    with open(truncated, "wb") as f:
        f.write(data[: len(data) // 2])
    nocells = os.path.join(work, "no_cells.h5")
    with h5py.File(nocells, "w") as f:
        f.create_dataset("something", data=np.arange(3))
    cases = [(text, []), (truncated, []), (nocells, []), (os.path.join(work, "missing.h5"), [])]
    for path, extra in cases:
        for script, args in ((READER, []), (FIGURES, ["--out", os.path.join(work, "bad_out")])):
            p = subprocess.run([PY, script, path, *args, *extra], capture_output=True, text=True)
            lines = p.stderr.strip().splitlines()
            tag = f"{os.path.basename(script)} {os.path.basename(path)}"
            check(p.returncode == 2, f"{tag}: exit {p.returncode}, expected 2")
            check(len(lines) == 1 and os.path.basename(path) in lines[0],
                  f"{tag}: expected a one-line message naming the file, got {p.stderr!r}")
    p = subprocess.run([PY, FIGURES, gmm, "--out", os.path.join(work, "bad_out"), "--metric", "no_such_metric"],
                       capture_output=True, text=True)
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "no_such_metric" in p.stderr,
          f"unknown --metric, exit {p.returncode}, {p.stderr!r}")
    p = subprocess.run([PY, FIGURES, gmm, "--out", os.path.join(work, "bad_out"), "--measurements", "a,b"],
                       capture_output=True, text=True)
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, f"bad --measurements: exit {p.returncode}")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    work = os.path.abspath(sys.argv[2]) if len(sys.argv) > 2 else tempfile.mkdtemp(prefix="figures_check.")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    gmm, img = os.path.join(work, "figures_gmm.h5"), os.path.join(work, "figures_images.h5")
    run_psbench(binary, "experiments/tests/figures_gmm.yaml", gmm)
    run_psbench(binary, "experiments/tests/figures_images.yaml", img)
    h5_gmm, h5_img = h5_cells(gmm), h5_cells(img)
    check(any(c["attrs"][S.STATUS] == S.STATUS_DIVERGED for c in h5_gmm.values()),
          "figures_gmm.yaml should have diverged cells (step_size 100)")

    df_gmm = check_reader(gmm, h5_gmm, ["mse_to_truth", "sliced_wasserstein", "posterior_mean_rmse"])
    df_img = check_reader(img, h5_img, ["psnr", "mse_to_truth", "psnr@posterior_mean", "pixel_std"])
    check(df_img.attrs["per_set_metrics"] == ["fd_fmnist_cnn", "fd_fmnist_cnn@posterior_mean"],
          f"per-set metrics listed: {df_img.attrs['per_set_metrics']}")
    both = R.load([gmm, img])
    check(len(both) == len(df_gmm) + len(df_img), "two files: rows of both")
    check_failed_cell(gmm, work)

    # Sizes (pixels at 100 dpi): panels of 5 x 3.75 in, 3 a row, a 3.5 in legend column, 0.75 in of titles;
    # traces: 2 columns and a 3.5 in legend; grids: 12 image columns of 1.5 in + 2 in, rows of 1.5 in + 1 in.
    out = os.path.join(work, "fig_gmm")
    run_figures([gmm], out, "--measurements", "0,1")
    check_files(out, {"nfe_sliced_wasserstein": (1850, 450),   # 3 panels: K = 4, 16, 64 (burn_in sets the cost)
                      "step_sliced_wasserstein": (850, 450),   # 1 panel: noise_langevin's step_size
                      "timing": (850, 450),
                      "traces_m0000": (1350, 1200),            # 3 rows (K) x 2 traces
                      "traces_m0001": (1350, 1200)})
    check_metric_csv(os.path.join(out, "nfe_sliced_wasserstein.csv"), h5_gmm, df_gmm, "sliced_wasserstein",
                     "nfe_per_measurement")
    lang = {k: c for k, c in h5_gmm.items() if c["cfg"]["sampler"]["name"] == "noise_langevin"}
    check_metric_csv(os.path.join(out, "step_sliced_wasserstein.csv"), lang, df_gmm, "sliced_wasserstein",
                     "option_value")
    check_timing_csv(os.path.join(out, "timing.csv"), h5_gmm)
    check_one_at_a_time()
    check_traces_csv(os.path.join(out, "traces_m0000.csv"), h5_gmm, 0)
    check_traces_csv(os.path.join(out, "traces_m0001.csv"), h5_gmm, 1)

    out = os.path.join(work, "fig_gmm_mse")
    run_figures([gmm], out, "--kind", "nfe", "--metric", "mse_to_truth")
    check_files(out, {"nfe_mse_to_truth": (1850, 450), "nfe_sliced_wasserstein": (1850, 450)})
    check_metric_csv(os.path.join(out, "nfe_mse_to_truth.csv"), h5_gmm, df_gmm, "mse_to_truth", "nfe_per_measurement")

    out = os.path.join(work, "fig_img")
    printed = run_figures([img], out)
    check_files(out, {"nfe_psnr": (1850, 450),                  # 3 panels: the tasks
                      "traces_m0000": (1350, 1200),            # 3 rows (tasks) x 2 traces
                      "grid_sr_avgpool_m0000": (2000, 400),    # 2 samplers x (x*, y, 8 samples, mean, std)
                      "grid_inpaint_random_m0000": (2000, 400),
                      "grid_phase_retrieval_m0000": (2000, 400)})
    for kind in ("step", "timing", "sliced_wasserstein"):
        check(f"no {kind} figure" in printed, f"images: no note for the skipped {kind} figure")
    check_metric_csv(os.path.join(out, "nfe_psnr.csv"), h5_img, df_img, "psnr", "nfe_per_measurement")
    check_traces_csv(os.path.join(out, "traces_m0000.csv"), h5_img, 0)
    for task, shown in (("sr_avgpool", "y (nearest-upsampled)"), ("inpaint_random", "measurement y"),
                        ("phase_retrieval", "log(1 + |y|)")):
        path = os.path.join(out, f"grid_{task}_m0000.csv")
        check_grid_csv(path, h5_img, 0)
        check(all(r["measurement_shown_as"] == shown for r in read_csv(path)), f"{task}: y shown as {shown}")

    out = os.path.join(work, "fig_img_m1")
    run_figures([img], out, "--kind", "grids", "--measurements", "1")
    for task in ("sr_avgpool", "inpaint_random", "phase_retrieval"):
        check_grid_csv(os.path.join(out, f"grid_{task}_m0001.csv"), h5_img, 1)

    check_bad_input(work, gmm)
    if failures:
        sys.exit(f"figures_check: {len(failures)} failure(s)")
    print(f"figures_check: reader and figures agree with the HDF5 arrays ({work})")


if __name__ == "__main__":
    main()
