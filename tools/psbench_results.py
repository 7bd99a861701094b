#!/usr/bin/python3
"""psbench results files as a pandas DataFrame, and accessors for the arrays a table cannot hold.

    import sys; sys.path.insert(0, "tools")
    from psbench_results import load, samples, trace, images
    df = load("results/quick.h5")            # or load(["a.h5", "b.h5"]): the rows of all files
    df.groupby("sampler.step_size")["sliced_wasserstein"].mean()

load() gives one row per (cell, measurement):
  key, cell_index, status, message, experiment, file, measurement (0-based index of the row's measurement),
  every resolved option of the cell's configuration flattened as "task.sigma_y", "sampler.step_size",
  "prior.steps", ... next to the top-level ones (seed, measurements, samples_per_measurement, nfe_budget,
  store_samples, ...), as `psbench report` flattens them;
  chains, planned_nfe and metrics_skipped (cell attributes; NaN or "" where the file has none);
  every metric under its label ("psnr", "psnr@posterior_mean", ...): its value for the row's measurement;
  per-set metrics (one value per cell, e.g. the Fréchet distance) are repeated on each row of their cell
  and listed in df.attrs["per_set_metrics"]; a KID-like spread over subsets is "<label>_spread";
  nfe_warmup_forward, nfe_warmup_forward_backward, nfe_chain_forward, nfe_chain_forward_backward,
  warmup_seconds, sampling_seconds, diverged_chains (per measurement);
  scoring_seconds, cell_seconds, peak_rss_bytes, and on CUDA peak_device_bytes (per cell, repeated).
Cells that diverged or failed keep their rows, with their status; a failed cell has NaN metric values, a
diverged one NaN on the measurements whose chains all diverged and its values on the others
(scored_measurements).
df.attrs also holds "metrics" (every metric label), "options" (the flattened option columns),
"directions" ({label: lower_is_better, higher_is_better or the target value}) and "files".

aggregate(df, column) is the per-cell summary the figures plot: mean, standard error and count over the
cell's measurements of the finite values.

attributes(path) gives the file's and each cell's attributes as text (provenance: versions, device, threads,
the prior's model files and sha256, experiment_hash), which load() leaves out.

Command line:
  /usr/bin/python3 tools/psbench_results.py FILE.h5 [FILE2.h5 ...] [--csv OUT.csv]
prints a summary (cells by status, the options that vary, each metric's mean per cell) and with --csv
writes every row. A file that is not a psbench results file, or that cannot be read, is a one-line error
on stderr and exit status 2.

Reads with h5py, numpy, pandas and yaml (Debian's python3-h5py, -numpy, -pandas, -yaml; run it with
/usr/bin/python3). Every HDF5 name comes from psbench_schema.py (the mirror of src/store/schema.h).
"""
import argparse
import os
import re
import sys

import h5py
import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psbench_schema as S  # noqa: E402  (mirror of src/store/schema.h)

# Column names that are not schema names (those come from psbench_schema).
KEY = "key"
FILE = "file"
MEASUREMENT = "measurement"
DIVERGED_CHAINS = "diverged_chains"
SPREAD_SUFFIX = "_spread"

# A number as yaml-cpp writes it. PyYAML reads YAML 1.1, where "1e-05" (no dot) is a string; the runner's
# canonical formatting writes small step sizes that way, so they are converted here.
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class ResultsError(Exception):
    """The input is not a readable psbench results file; the message is one line naming the file."""


def _text(value):
    return value.decode() if isinstance(value, bytes) else str(value)


def _scalar(value):
    if isinstance(value, str) and _NUMBER.match(value):
        return float(value) if any(c in value for c in ".eE") else int(value)
    return value


def flatten_config(text):
    """The resolved configuration of a cell as {column: value}: top-level scalars under their own name,
    each component's options as "<component>.<option>"; lists (the metrics) are left out. Same keys as
    flatten_config in src/runner/experiment.cpp, which `psbench report` uses for its columns."""
    root = yaml.safe_load(text) or {}
    if not isinstance(root, dict):
        raise ValueError("the configuration attribute is not a YAML mapping")
    flat = {}
    for k, v in root.items():
        if isinstance(v, dict):
            for inner, w in v.items():
                flat[f"{k}.{inner}"] = _scalar(w)
        elif not isinstance(v, list):
            flat[str(k)] = _scalar(v)
    return flat


def _open(path):
    """The results file opened for reading; ResultsError when it is not one."""
    try:
        f = h5py.File(path, "r")
    except (OSError, ValueError) as e:
        raise ResultsError(f"{path}: cannot be read as HDF5 ({_one_line(e)})") from None
    if S.CELLS_GROUP not in f:
        f.close()
        raise ResultsError(f"{path}: not a psbench results file (no {S.CELLS_GROUP} group)")
    mismatch = S.schema_mismatch(path, f.attrs)
    if mismatch:
        f.close()
        raise ResultsError(mismatch)
    return f


def _one_line(e):
    return " ".join(str(e).split())


def _complete_cells(f):
    # A cell still being written lives under its partial name; it is not a result.
    return [(k, c) for k, c in S.cells_in_order(f) if not k.startswith(S.PARTIAL_PREFIX)]


def _per_row(values, m, what):
    """A cell's array as one value per measurement row: [M] as is, [1] repeated (per-cell values)."""
    v = np.asarray(values)
    if v.ndim != 1:
        raise ValueError(f"{what} has shape {v.shape}, expected one value per measurement or per cell")
    if len(v) == m:
        return v
    if len(v) == 1:
        return np.repeat(v, m)
    raise ValueError(f"{what} has {len(v)} values for {m} measurements")


def _cell_frame(path, key, cell, per_set, directions):
    attrs = {k: _text(v) for k, v in cell.attrs.items()}
    flat = flatten_config(attrs[S.CONFIG])
    status = attrs.get(S.STATUS, "")
    if status not in S.STATUSES:
        raise ValueError(f"cell {key} has status '{status}' (known: {', '.join(S.STATUSES)})")
    m = int(flat.get("measurements", 0))
    if S.X_TRUE in cell:
        m = int(cell[S.X_TRUE].shape[0])
    cols = {KEY: [key] * m, S.CELL_INDEX: int(attrs.get(S.CELL_INDEX, -1)), S.STATUS: status,
            S.MESSAGE: attrs.get(S.MESSAGE, ""), S.EXPERIMENT: flat.get(S.EXPERIMENT, ""), FILE: path,
            MEASUREMENT: np.arange(m)}
    for k, v in flat.items():
        cols.setdefault(k, v)
    for name in (S.CHAINS, S.PLANNED_NFE):
        cols[name] = _scalar(attrs[name]) if name in attrs else np.nan
    cols[S.METRICS_SKIPPED] = attrs.get(S.METRICS_SKIPPED, "")

    metrics_group = S.group(S.METRICS_GROUP)
    # A diverged cell scores only the measurements that kept samples: its per-measurement metrics follow
    # scored_measurements, and the lost measurements' rows get NaN.
    scored = np.asarray(cell[S.SCORED_MEASUREMENTS][()], dtype=np.int64) if S.SCORED_MEASUREMENTS in cell else None
    if scored is not None and (len(scored) and (scored.min() < 0 or scored.max() >= m)):
        raise ValueError(f"cell {key}: {S.SCORED_MEASUREMENTS} names measurements outside 0..{m - 1}")
    if metrics_group in cell:
        for label, ds in cell[metrics_group].items():
            level = attrs.get(S.METRIC_LEVEL_PREFIX + label, "")
            values = np.asarray(ds[()], dtype=float)
            if level == S.LEVEL_PER_SET or (len(values) == 1 and m != 1 and level == ""):
                per_set.add(label)
            elif scored is not None:
                if len(values) != len(scored):
                    raise ValueError(f"cell {key}: {S.METRICS_GROUP}{label} has {len(values)} values for "
                                     f"{len(scored)} scored measurements")
                full = np.full(m, np.nan)
                full[scored] = values
                values = full
            cols[label] = _per_row(values, m, f"cell {key}: {S.METRICS_GROUP}{label}")
            if S.METRIC_DIRECTION_PREFIX + label in attrs:
                directions[label] = attrs[S.METRIC_DIRECTION_PREFIX + label]
    spread_group = S.group(S.METRIC_SPREAD_GROUP)
    if spread_group in cell:
        for label, ds in cell[spread_group].items():
            cols[label + SPREAD_SUFFIX] = _per_row(np.asarray(ds[()], dtype=float), m, f"cell {key}: {label}")
    # nfe/<name> -> nfe_<name>; time/ and resources/ keep their dataset names.
    for prefix, group_prefix in ((S.NFE_GROUP, S.group(S.NFE_GROUP) + "_"), (S.TIME_GROUP, ""),
                                 (S.RESOURCES_GROUP, "")):
        g = S.group(prefix)
        if g in cell:
            for name, ds in cell[g].items():
                cols[group_prefix + name] = _per_row(ds[()], m, f"cell {key}: {prefix}{name}")
    if S.CHAINS_DIVERGED in cell:
        cols[DIVERGED_CHAINS] = _per_row(cell[S.CHAINS_DIVERGED][()], m, f"cell {key}: {S.CHAINS_DIVERGED}")
    return pd.DataFrame(cols, index=range(m)), list(flat)


def load(paths):
    """One row per (cell, measurement) of one results file or of several (a list), in file order and each
    file's experiment order. Raises ResultsError (one line, naming the file) for anything unreadable."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    frames, per_set, directions, options, metric_labels = [], set(), {}, [], []
    for path in map(str, paths):
        f = _open(path)
        try:
            for key, cell in _complete_cells(f):
                frame, flat_keys = _cell_frame(path, key, cell, per_set, directions)
                frames.append(frame)
                options.extend(k for k in flat_keys if k not in options)
                metric_group = S.group(S.METRICS_GROUP)
                if metric_group in cell:
                    metric_labels.extend(k for k in cell[metric_group] if k not in metric_labels)
        except (OSError, KeyError, ValueError, RuntimeError, yaml.YAMLError) as e:
            raise ResultsError(f"{path}: {_one_line(e)}") from None
        finally:
            f.close()
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({KEY: [], S.STATUS: []})
    # A metric present in some cells only is NaN in the others (diverged, failed or not computed).
    for label in metric_labels:
        df[label] = df[label].astype(float)
    # Columns in reading order: identity, options (top-level, then task, dataset, prior, sampler), cell
    # attributes, metrics, then cost.
    components = {name: i for i, name in enumerate(("task", "dataset", "prior", "sampler"))}
    options = sorted(options, key=lambda k: components.get(k.split(".")[0], -1) if "." in k else -1)
    front = [KEY, S.CELL_INDEX, S.STATUS, S.MESSAGE, FILE, MEASUREMENT]
    metric_cols = sorted(metric_labels) + sorted(c for c in df.columns if c.endswith(SPREAD_SUFFIX))
    ordered = [c for c in front + options + [S.CHAINS, S.PLANNED_NFE, S.METRICS_SKIPPED] + metric_cols if c in df]
    df = df[ordered + [c for c in df.columns if c not in ordered]]
    df.attrs["per_set_metrics"] = sorted(per_set)
    df.attrs["metrics"] = sorted(metric_labels)
    df.attrs["options"] = options
    df.attrs["directions"] = directions
    df.attrs["files"] = [str(p) for p in paths]
    return df


def aggregate(df, column, by=KEY):
    """Per cell (or per `by` group): mean, standard error (sample standard deviation / sqrt(n)) and n over the
    finite values of `column`; a per-set metric counts once per cell. NaN mean where no value is finite."""
    per_set = column in df.attrs.get("per_set_metrics", [])
    rows = []
    for k, g in df.groupby(by, sort=False):
        v = np.asarray(g[column], dtype=float)[:1] if per_set else np.asarray(g[column], dtype=float)
        v = v[np.isfinite(v)]
        n = len(v)
        mean = v.mean() if n else np.nan
        se = v.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
        rows.append({by: k, "mean": mean, "se": se, "n": n})
    return pd.DataFrame(rows).set_index(by)


def _cell(f, path, key):
    """The cell group of `key`, or of the one cell whose key starts with it (report shows 8 digits)."""
    cells = f[S.CELLS_GROUP]
    if key in cells:
        return cells[key]
    matches = [k for k in cells if k.startswith(key) and not k.startswith(S.PARTIAL_PREFIX)]
    if len(matches) != 1:
        raise ResultsError(f"{path}: {'no' if not matches else 'more than one'} cell with key '{key}'")
    return cells[matches[0]]


def _array(path, key, name, missing):
    f = _open(path)
    try:
        c = _cell(f, path, key)
        if name not in c:
            raise ResultsError(f"{path}: cell {key}: {missing}")
        return np.asarray(c[name][()])
    finally:
        f.close()


def samples(path, key, m):
    """The K posterior samples of measurement m, [K, ...] (cells run with store_samples: true)."""
    return _array(path, key, S.SAMPLES_GROUP + S.measurement_name(m),
                  f"no stored samples for measurement {m} (run with store_samples: true)")


def trace(path, key, name, m):
    """The per-step diagnostic `name` (e.g. warmup_loss, chain_loss) of measurement m, [steps]."""
    return _array(path, key, S.TRACE_GROUP + name + "/" + S.measurement_name(m),
                  f"no trace '{name}' for measurement {m}")


def trace_names(path, key):
    """The names of the per-step diagnostics a cell stores."""
    f = _open(path)
    try:
        c = _cell(f, path, key)
        g = S.group(S.TRACE_GROUP)
        return sorted(c[g]) if g in c else []
    finally:
        f.close()


def images(path, key):
    """(x_true, y) of a cell: ground truth and measurements, [M, ...] each."""
    f = _open(path)
    try:
        c = _cell(f, path, key)
        if S.X_TRUE not in c or S.Y not in c:
            raise ResultsError(f"{path}: cell {key} stores no ground truth and measurements (failed cell?)")
        return np.asarray(c[S.X_TRUE][()]), np.asarray(c[S.Y][()])
    finally:
        f.close()


def attributes(path):
    """({file attribute: text}, {cell key: {cell attribute: text}}) of one results file, complete cells in
    experiment order: the provenance load() leaves out (versions, device, threads, the prior's model files and
    their sha256, experiment_hash). Raises ResultsError (one line, naming the file) when unreadable."""
    f = _open(path)
    try:
        file_attrs = {k: _text(v) for k, v in f.attrs.items()}
        cells = {key: {k: _text(v) for k, v in c.attrs.items()} for key, c in _complete_cells(f)}
    except (OSError, KeyError, ValueError, RuntimeError) as e:
        raise ResultsError(f"{path}: {_one_line(e)}") from None
    finally:
        f.close()
    return file_attrs, cells


def varying_options(df):
    """The option columns that tell cells apart: a top-level option with more than one value, a component's
    name with more than one value, and a component option with more than one value among the cells of one
    component name (so that sampler.step_size counts when two noise_langevin cells differ in it, not because
    the exact sampler has no step size)."""
    cells = df.drop_duplicates(KEY)
    out = []
    for k in df.attrs.get("options", []):
        if k not in cells:
            continue
        component, _, option = k.partition(".")
        if not option or option == "name":
            if cells[k].astype(str).nunique() > 1:
                out.append(k)
            continue
        name_col = component + ".name"
        groups = cells.groupby(name_col, sort=False)[k] if name_col in cells else [(None, cells[k])]
        if any(g.dropna().astype(str).nunique() > 1 for _, g in groups):
            out.append(k)
    return out


def summary(df):
    """Text summary: cells by status, the options that vary, each metric's mean per cell."""
    cells = df.drop_duplicates(KEY)
    lines = [f"{len(cells)} cells, {len(df)} rows (cell x measurement) from {', '.join(df.attrs['files'])}"]
    lines.append("status: " + ", ".join(f"{s} {int((cells[S.STATUS] == s).sum())}" for s in S.STATUSES))
    vary = varying_options(df)
    lines.append("options that vary: " + (", ".join(vary) if vary else "none"))
    metrics = df.attrs["metrics"]
    per_set = df.attrs["per_set_metrics"]
    lines.append("metrics: " + (", ".join(m + (" (per set)" if m in per_set else "") for m in metrics) or "none"))
    shown = [k for k in ["sampler.name"] + vary if k in df]
    shown = list(dict.fromkeys(shown))
    table = cells.set_index(KEY)[[S.STATUS] + shown].copy()
    for m in metrics:
        table[m] = aggregate(df, m)["mean"]
    nfe = [c for c in df.columns if c.startswith(S.group(S.NFE_GROUP) + "_")]
    if nfe:
        table["nfe per measurement"] = df.groupby(KEY, sort=False)[nfe].mean().sum(axis=1)
    table.index = [k[:8] for k in table.index]
    with pd.option_context("display.width", 200, "display.max_columns", 50, "display.float_format", "{:.4g}".format):
        lines.append("")
        lines.append("per cell (metrics: mean over measurements):")
        lines.append(table.to_string())
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description="Summary or CSV of psbench results files (one row per cell and "
                                             "measurement).")
    ap.add_argument("files", nargs="+", metavar="FILE.h5")
    ap.add_argument("--csv", metavar="OUT.csv", help="write every row to this CSV file")
    args = ap.parse_args(argv)
    try:
        df = load(args.files)
    except ResultsError as e:
        print(f"psbench_results: {e}", file=sys.stderr)
        return 2
    print(summary(df))
    if args.csv:
        df.to_csv(args.csv, index=False)
        print(f"\n{len(df)} rows written to {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
