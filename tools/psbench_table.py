#!/usr/bin/python3
"""Tables of psbench results files: pivot tables (markdown, LaTeX, CSV), a run summary, and one self-contained
HTML page with the summary, the tables and the figures.

Usage (a stable interface: `psbench report FILE... --rows ... --format ...` forwards to it unchanged):
  /usr/bin/python3 tools/psbench_table.py FILE.h5 [FILE2.h5 ...] [--rows task] [--cols sampler]
          [--metrics psnr,ssim,fd_fmnist_cnn] [--nfe] [--time] [--format markdown|latex|csv] [--out FILE]
          [--allow-mixed]
  /usr/bin/python3 tools/psbench_table.py FILE.h5 [...] --summary [--out FILE]
  /usr/bin/python3 tools/psbench_table.py FILE.h5 [...] --html OUT.html [--figures-dir DIR]

  --rows F[,F...]    what tells the table's rows apart (default task); several fields give several label columns
  --cols F[,F...]    what tells its columns apart (default sampler)
                     A field is a component, task, dataset, prior or sampler: its name followed by the options
                     whose values differ between cells of that name ("noise_langevin step_size=0.003"); or any
                     option column of psbench_results.load: "sampler.step_size", "task.sigma_y", "prior.steps",
                     samples_per_measurement, nfe_budget, seed, ... (as a column: "sampler.step_size=0.003").
  --metrics L[,L...] metric labels the files hold, in this order (default: every one, sorted)
  --nfe              also network evaluations per measurement (mean over measurements): warm-up and sampling
                     (chain) apart, each "forward-only / forward+backward"
  --time             also wall-clock seconds per measurement (mean over measurements): warm-up, sampling, total
  --format           markdown (default), latex (booktabs tabular) or csv
  --out FILE         write the table (or the summary) there instead of stdout
  --allow-mixed      combine files of different experiments (different experiment_hash); refused otherwise
  --summary          experiment(s), cells by status with each diverged or failed cell's message, provenance
                     (versions, git revision(s), device, threads, build type, model files with sha256) and time
  --html OUT.html    one page, no external files: the summary, a table per metric (default rows and columns),
                     the NFE and time table, and the figures of tools/psbench_figures.py as embedded PNG
  --figures-dir DIR  keep those figures (PNG, PDF, CSV) in DIR; default a temporary directory, removed

Layout: metrics are a second row level. Each row of the table is one (row label, metric): the row label
columns (blank where they repeat the line above), a "metric" column with the metric's direction (↓ lower is
better, ↑ higher is better, →v closest to v), then one column per column label. With --nfe and --time their
quantities are further rows of each row label. This keeps tables with many samplers and metrics narrow, and
puts the entries compared for "best" side by side on one line.

Entries: mean ± standard error over the entry's measurements (psbench_results.aggregate: sample standard
deviation / sqrt(n) over finite values), the standard error to two significant digits and the mean to the
same decimal place; one value (no ±) for per-set metrics (Fréchet distance, KID) and for n = 1. The best
mean of each line (one row label, one metric) is bold in markdown and LaTeX and marked best=1 in CSV; ties
are all marked. A cell that diverged or failed shows "diverged" or "failed", never a number; an entry whose
cells are partly so shows its ok cells' value and "(1 of 2 cells diverged)". "—": the metric was not
computed for that cell (see --summary). Options that vary between cells but are in neither --rows nor --cols
are added to the rows (a note on stderr), so an entry never mixes configurations; the one exception is seed:
cells that differ only in seed are pooled (their measurements together; per-set metrics give the mean ± standard
error over the cells). A cell present in several files (same key: the same configuration) counts once, from
the first file that has it (a note on stderr): combining a file with itself or with a merged copy changes
nothing.

CSV: one line per table entry, plain numbers: the row label fields, the column label, metric, direction,
mean, se, n, best (1, 0; empty on NFE and time lines), status (ok, diverged, failed, or several joined by
"+"), diverged_chains (of its ok cells, all measurements: their metrics are over the other chains; † in the
other formats), cells (the keys of the entry's cells). NFE lines are nfe_warmup_forward, nfe_warmup_forward_backward,
nfe_chain_forward, nfe_chain_forward_backward; time lines warmup_seconds, sampling_seconds, total_seconds.

Exit status 0 on success; 2 for bad input, with a one-line message on stderr: a file that is not a psbench
results file or cannot be read (truncated), files of different experiments without --allow-mixed, an unknown
metric or field, no complete cells; 1 when the figures of --html could not be made (the page is written
without them).

Needs Debian's python3-h5py, -numpy, -pandas, -yaml (and -matplotlib for --html); run with /usr/bin/python3.
"""
import argparse
import base64
import csv
import html
import io
import math
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psbench_results as R  # noqa: E402  (the reader: load, aggregate, attributes)
import psbench_schema as S  # noqa: E402  (mirror of src/store/schema.h)

COMPONENTS = ("task", "dataset", "prior", "sampler")
SEED = "seed"
# Options that never make rows: bookkeeping or execution-only (as psbench_figures.IGNORED), and seed, whose
# cells are pooled as replicates.
NOT_SPLIT = {S.EXPERIMENT, "store_samples", "metrics_explicit", "sampler.batch_size", "prior.device", SEED}
ENTRY = "_entry"
TOTAL_SECONDS = "total_seconds"
FIGURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "psbench_figures.py")

# Cost lines: (label in markdown/LaTeX, [reader columns], shown as "a / b" when two).
NFE_LINES = [("NFE warm-up (fwd / fwd+bwd)", ["nfe_warmup_forward", "nfe_warmup_forward_backward"]),
             ("NFE sampling (fwd / fwd+bwd)", ["nfe_chain_forward", "nfe_chain_forward_backward"])]
TIME_LINES = [("s warm-up", ["warmup_seconds"]), ("s sampling", ["sampling_seconds"]),
              ("s total", [TOTAL_SECONDS])]


class BadInput(Exception):
    """Bad input: the message is one line; exit status 2."""


# ------------------------------------------------------------------------------------------- reading --

def read(files, allow_mixed):
    """(rows of every file, one per cell and measurement, each cell once; {path: file attributes};
    {key: cell attributes}). Refuses files of different experiments unless allow_mixed."""
    file_attrs, cell_attrs = {}, {}
    for path in files:
        fa, ca = R.attributes(path)
        file_attrs.setdefault(path, fa)
        for key, a in ca.items():
            cell_attrs.setdefault(key, a)
    # An experiment is its experiment_hash (equal for all its shards); files written before the hash existed
    # are told apart by name.
    identity = {p: a.get(S.EXPERIMENT_HASH) or "name " + a.get(S.EXPERIMENT, "?") for p, a in file_attrs.items()}
    if len(set(identity.values())) > 1 and not allow_mixed:
        first = files[0]
        other = next(p for p in files if identity[p] != identity[first])
        raise BadInput(f"{first} ({describe_experiment(file_attrs[first])}) and {other} "
                       f"({describe_experiment(file_attrs[other])}) are results of different experiments; "
                       "--allow-mixed combines them anyway")
    df = R.load(files)
    if df.empty:
        raise BadInput(f"{', '.join(files)}: no complete cells")
    attrs = dict(df.attrs)
    # The same key in two files is the same configuration (and, by merge's rule, the same results): count it
    # once, from the first file, so that a file combined with itself or its merged copy gives the same table.
    first_file = df.groupby(R.KEY, sort=False)[R.FILE].transform("first")
    repeated = df[R.KEY][df[R.FILE] != first_file].nunique()
    df = df[df[R.FILE] == first_file].drop_duplicates([R.KEY, R.MEASUREMENT])
    if repeated or len(files) != len(set(files)):
        note("cells present in more than one input are counted once (from the first file that has them)")
    if len(set(identity.values())) == 1:
        # Shards of one experiment: its cell order, whatever the order of the files.
        df = df.sort_values(S.CELL_INDEX, kind="stable")
    df = df.reset_index(drop=True)
    df.attrs = attrs
    return df, file_attrs, cell_attrs


def describe_experiment(fa):
    return f"experiment {fa.get(S.EXPERIMENT, '?')}, experiment_hash {fa.get(S.EXPERIMENT_HASH, 'none')}"


_noted = set()


def note(msg):
    # Once each: the HTML page builds a table per metric from the same cells.
    if msg not in _noted:
        _noted.add(msg)
        print(f"psbench_table: {msg}", file=sys.stderr)


# -------------------------------------------------------------------------------------------- labels --

def value_text(v):
    """An option value as the experiment file would write it (0.003, 100, 1e-05); None when the cell has no
    such option (NaN: another component's option)."""
    if v is None:
        return None
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return None
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    if isinstance(v, np.integer):
        return str(int(v))
    return str(v)


def known_fields(df):
    return [c for c in COMPONENTS if c + ".name" in df] + list(df.attrs["options"])


def parse_fields(text, df, flag):
    fields = [f.strip() for f in text.split(",") if f.strip()]
    known = known_fields(df)
    for f in fields:
        if f not in known:
            raise BadInput(f"{flag} {text}: unknown field '{f}' (known: {', '.join(known)})")
    if not fields:
        raise BadInput(f"{flag}: no field given")
    return fields


def covered(field, df):
    """The option columns a field tells apart: a component covers its name and all its options."""
    if field in COMPONENTS:
        return {o for o in df.attrs["options"] if o.startswith(field + ".")}
    return {field}


def field_labels(cells, field, vary, as_column):
    """{cell key: label} of one field. A component: its name and the options that vary between cells of that
    name; an option: its value (in a column label: "option=value", so that the header reads alone)."""
    out = {}
    if field in COMPONENTS:
        name = field + ".name"
        opts = [o for o in vary if o.startswith(field + ".") and o != name]
        for _, c in cells.iterrows():
            parts = [value_text(c[name]) or "—"]
            parts += [f"{o.split('.', 1)[1]}={t}" for o in opts if (t := value_text(c[o])) is not None]
            out[c[R.KEY]] = " ".join(parts)
    else:
        for _, c in cells.iterrows():
            t = value_text(c[field]) or "—"
            out[c[R.KEY]] = f"{field}={t}" if as_column else t
    return out


# ------------------------------------------------------------------------------------------- entries --

class Entry:
    """One table entry: the cells it pools, their statuses and the aggregated values (a list: one per reader
    column of the line; NFE lines have two)."""

    def __init__(self, keys, statuses):
        self.keys = keys
        self.statuses = statuses
        self.means, self.ses, self.ns = [], [], []
        self.best = False
        self.diverged_chains = 0  # in its ok cells: their metrics come from the other chains

    @property
    def ok(self):
        return sum(s == S.STATUS_OK for s in self.statuses)

    def status_text(self):
        """"diverged", "failed", "diverged+failed" when no cell is ok; "" when all are."""
        bad = [s for s in S.STATUSES if s != S.STATUS_OK and s in self.statuses]
        return "+".join(bad)

    def partial_note(self):
        bad = [s for s in self.statuses if s != S.STATUS_OK]
        if not bad or not self.ok:
            return ""
        return f"({len(bad)} of {len(self.statuses)} cells {'+'.join(dict.fromkeys(bad))})"

    def csv_status(self):
        return "+".join(s for s in S.STATUSES if s in self.statuses)


class Line:
    """One line of the table: a row label and a quantity (a metric, or an NFE or time line)."""

    def __init__(self, row, kind, label, columns, direction=""):
        self.row, self.kind, self.label, self.columns, self.direction = row, kind, label, columns, direction
        self.entries = {}  # column label -> Entry


class Table:
    def __init__(self, row_fields, col_fields, rows, cols, lines, n_range, per_set):
        self.row_fields, self.col_fields = row_fields, col_fields
        self.rows, self.cols, self.lines = rows, cols, lines
        self.n_range, self.per_set = n_range, per_set


def direction_of(df, metric):
    return df.attrs["directions"].get(metric, "")


def build(df, row_fields, col_fields, metrics, nfe=False, time=False):
    """The pivot table: lines (row label, quantity) x columns, each entry aggregated over its cells."""
    cells = df.drop_duplicates(R.KEY)
    vary = R.varying_options(df)
    done = set().union(*(covered(f, df) for f in row_fields + col_fields))
    extra = [o for o in vary if o not in done and o not in NOT_SPLIT]
    if extra:
        note(f"rows also split by {', '.join(extra)} (they vary between cells and are in neither --rows nor --cols)")
        row_fields = row_fields + extra
    row_lab = [field_labels(cells, f, vary, as_column=False) for f in row_fields]
    col_lab = [field_labels(cells, f, vary, as_column=True) for f in col_fields]
    row_of = {k: tuple(lab[k] for lab in row_lab) for k in cells[R.KEY]}
    col_of = {k: ", ".join(lab[k] for lab in col_lab) for k in cells[R.KEY]}
    rows = list(dict.fromkeys(row_of[k] for k in cells[R.KEY]))
    cols = list(dict.fromkeys(col_of[k] for k in cells[R.KEY]))
    groups = {}
    for k, st in zip(cells[R.KEY], cells[S.STATUS]):
        groups.setdefault((row_of[k], col_of[k]), []).append((k, st))
    ids = {rc: i for i, rc in enumerate(groups)}
    df = df.copy()
    df[ENTRY] = [ids[(row_of[k], col_of[k])] for k in df[R.KEY]]
    if time:
        df[TOTAL_SECONDS] = df.get("warmup_seconds", np.nan) + df.get("sampling_seconds", np.nan)
    ok = df[df[S.STATUS] == S.STATUS_OK]
    ok.attrs = df.attrs

    def stats(column, per_set):
        """{entry id: (mean, se, n)} over the ok cells, by the reader's aggregate."""
        if column not in ok or ok.empty:
            return {}
        sub = ok
        if per_set:
            # One value per cell; pooled cells (seeds) give mean and standard error over cells, which
            # aggregate computes when the column is not marked per-set.
            sub = ok.drop_duplicates(R.KEY)
            sub.attrs = {}
        agg = R.aggregate(sub, column, by=ENTRY)
        return {i: (r["mean"], r["se"], int(r["n"])) for i, r in agg.iterrows()}

    quantities = [("metric", m, [m], direction_of(df, m)) for m in metrics]
    if nfe:
        quantities += [("nfe", lab, cols_, "") for lab, cols_ in NFE_LINES]
    if time:
        quantities += [("time", lab, cols_, "") for lab, cols_ in TIME_LINES]
    per_set = set(df.attrs.get("per_set_metrics", []))
    computed = {c: stats(c, c in per_set) for q in quantities for c in q[2]}
    chains_lost = ok.groupby(ENTRY)[R.DIVERGED_CHAINS].sum().to_dict() if R.DIVERGED_CHAINS in ok else {}
    lines, ns = [], []
    for row in rows:
        for kind, label, columns, direction in quantities:
            line = Line(row, kind, label, columns, direction)
            for col in cols:
                members = groups.get((row, col))
                if not members:
                    continue
                e = Entry([k for k, _ in members], [s for _, s in members])
                e.diverged_chains = chains_lost.get(ids[(row, col)], 0)
                for c in columns:
                    mean, se, n = computed[c].get(ids[(row, col)], (np.nan, np.nan, 0))
                    e.means.append(mean)
                    e.ses.append(se)
                    e.ns.append(n)
                if kind == "metric" and e.ns[0] and label not in per_set:
                    ns.append(e.ns[0])
                line.entries[col] = e
            mark_best(line)
            lines.append(line)
    n_range = (min(ns), max(ns)) if ns else None
    return Table(row_fields, col_fields, rows, cols, lines, n_range, per_set)


def mark_best(line):
    """Marks the best mean of a metric line by the metric's direction; target v: the smallest |mean - v|."""
    if line.kind != "metric":
        return
    d = line.direction
    score = None
    if d == S.LOWER_IS_BETTER:
        score = lambda m: m  # noqa: E731
    elif d == S.HIGHER_IS_BETTER:
        score = lambda m: -m  # noqa: E731
    elif d.startswith(S.TARGET_PREFIX):
        try:
            target = float(d[len(S.TARGET_PREFIX):])
        except ValueError:
            return
        score = lambda m: abs(m - target)  # noqa: E731
    if score is None:
        return
    scored = {c: score(e.means[0]) for c, e in line.entries.items() if e.ok and np.isfinite(e.means[0])}
    if len(scored) < 2:  # nothing to compare against
        return
    best = min(scored.values())
    for c, s in scored.items():
        line.entries[c].best = s == best


# -------------------------------------------------------------------------------------------- format --

def decimals(mean, se):
    """Decimal places: the standard error to two significant digits, the mean to the same place; at most six
    significant digits of the mean (a standard error far below it is rounding noise). None: no usable se."""
    if not np.isfinite(se) or se <= 0:
        return None
    d = 1 - math.floor(math.log10(se))
    if np.isfinite(mean) and mean != 0:
        d = min(d, 5 - math.floor(math.log10(abs(mean))))
    return d


def rounded(x, d):
    return f"{x:.{d}f}" if d >= 0 else f"{round(x, d):.0f}"


def number_parts(mean, se, n):
    """(mean text, se text or None) of an entry value."""
    if not np.isfinite(mean):
        return ("inf" if mean > 0 else "-inf" if mean < 0 else "nan"), None
    d = decimals(mean, se) if n > 1 else None
    if d is None:
        return f"{mean:.4g}", None
    return rounded(mean, d), rounded(se, d)


def count_text(x):
    return f"{x:.0f}" if np.isfinite(x) and abs(x - round(x)) < 1e-9 else f"{x:.4g}"


def entry_parts(line, e):
    """(text of the value, or None; status text; note): the renderers add their own markup."""
    if not e.ok:
        return None, e.status_text(), ""
    if line.kind == "metric":
        if e.ns[0] == 0:
            return "—", "", e.partial_note()
        # † : the cell finished, but some chains diverged and its metrics are over the others.
        extra = " ".join(x for x in ("†" if e.diverged_chains else "", e.partial_note()) if x)
        return number_parts(e.means[0], e.ses[0], e.ns[0]), "", extra
    if line.kind == "nfe":
        return " / ".join(count_text(m) if n else "—" for m, n in zip(e.means, e.ns)), "", e.partial_note()
    return (f"{e.means[0]:.3g}" if e.ns[0] else "—"), "", e.partial_note()


def direction_mark(direction):
    if direction == S.LOWER_IS_BETTER:
        return "↓"
    if direction == S.HIGHER_IS_BETTER:
        return "↑"
    if direction.startswith(S.TARGET_PREFIX):
        return "→" + direction[len(S.TARGET_PREFIX):]
    return ""


def line_label(line):
    mark = direction_mark(line.direction) if line.kind == "metric" else ""
    return f"{line.label} {mark}" if mark else line.label


def caption(table, nfe, time):
    """The sentence under a table: what an entry is."""
    parts = []
    metric_lines = any(line.kind == "metric" for line in table.lines)
    if not metric_lines:
        pass
    elif table.n_range:
        lo, hi = table.n_range
        over = f"{lo} measurement{'s' if lo > 1 else ''}" if lo == hi else f"{lo} to {hi} measurements (n per entry in the CSV)"
        parts.append(f"Entries: mean ± standard error over {over}")
    else:
        parts.append("Entries: mean ± standard error over measurements")
    if metric_lines and table.per_set:
        parts[-1] += "; per-set metrics: the single value"
    if metric_lines:
        parts.append("Bold: the best mean of its line (↓ lower is better, ↑ higher is better, →v closest to v)")
    parts.append("Diverged / failed: the cell did not finish (its message in --summary)"
                 + ("; —: not computed" if metric_lines else ""))
    if any(e.diverged_chains for line in table.lines if line.kind == "metric" for e in line.entries.values()):
        parts.append("†: some chains of the cell diverged; its metrics are over the others (--summary counts them)")
    if nfe:
        parts.append("NFE: network evaluations per measurement (mean), forward-only / forward+backward")
    if time:
        parts.append("s: wall-clock seconds per measurement (mean over measurements)")
    return ". ".join(parts) + "."


def cell_value_md(line, e):
    value, status, extra = entry_parts(line, e)
    if value is None:
        return status
    text = value if isinstance(value, str) else (value[0] if value[1] is None else f"{value[0]} ± {value[1]}")
    if e.best:
        text = f"**{text}**"
    return f"{text} {extra}" if extra else text


def md_escape(text):
    return str(text).replace("|", "\\|")


def markdown(table, nfe=False, time=False, with_caption=True):
    header = list(table.row_fields) + ["metric"] + table.cols
    out = ["| " + " | ".join(md_escape(h) for h in header) + " |", "|" + "---|" * len(header)]
    previous = None
    for line in table.lines:
        # Row labels only where they change: the lines of one row label read as a block.
        labels = [""] * len(line.row) if line.row == previous else list(line.row)
        previous = line.row
        values = [cell_value_md(line, line.entries[c]) if c in line.entries else "" for c in table.cols]
        out.append("| " + " | ".join(md_escape(v) for v in labels + [line_label(line)] + values) + " |")
    if with_caption:
        out += ["", caption(table, nfe, time)]
    return "\n".join(out) + "\n"


LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                 "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "—": "---",
                 "±": r"$\pm$", "†": r"$^\dagger$", "↓": r"$\downarrow$", "↑": r"$\uparrow$", "→": r"$\rightarrow$"}


def tex(text):
    return "".join(LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def cell_value_tex(line, e):
    value, status, extra = entry_parts(line, e)
    if value is None:
        return r"\textit{" + tex(status) + "}"
    if isinstance(value, str):
        text = tex(value)
    else:
        text = value[0] if value[1] is None else f"{value[0]} $\\pm$ {value[1]}"
    if e.best:
        text = r"\textbf{" + text + "}"
    return f"{text} {tex(extra)}" if extra else text


def latex(table, nfe=False, time=False):
    """A booktabs tabular (needs \\usepackage{booktabs}); the caption as a comment above it."""
    n_labels = len(table.row_fields) + 1
    out = ["% " + caption(table, nfe, time),
           r"\begin{tabular}{" + "l" * n_labels + "r" * len(table.cols) + "}", r"\toprule",
           " & ".join(tex(h) for h in list(table.row_fields) + ["metric"] + table.cols) + r" \\", r"\midrule"]
    previous = None
    for line in table.lines:
        if previous is not None and line.row != previous:
            out.append(r"\midrule")
        labels = [""] * len(line.row) if line.row == previous else [tex(x) for x in line.row]
        previous = line.row
        values = [cell_value_tex(line, line.entries[c]) if c in line.entries else "" for c in table.cols]
        out.append(" & ".join(labels + [tex(line_label(line))] + values) + r" \\")
    out += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(out) + "\n"


def csv_number(x):
    return repr(float(x)) if np.isfinite(x) else ""


def csv_text(table):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(table.row_fields) + [",".join(table.col_fields), "metric", "direction", "mean", "se", "n",
                                         "best", S.STATUS, R.DIVERGED_CHAINS, "cells"])
    for line in table.lines:
        for col in table.cols:
            e = line.entries.get(col)
            if e is None:
                continue
            for i, column in enumerate(line.columns):
                if e.ok:
                    mean, se, n = csv_number(e.means[i]), csv_number(e.ses[i]), e.ns[i]
                else:
                    mean, se, n = "", "", 0
                best = ("1" if e.best else "0") if line.kind == "metric" else ""
                w.writerow(list(line.row) + [col, column, line.direction, mean, se, n, best, e.csv_status(),
                                             e.diverged_chains, " ".join(e.keys)])
    return buf.getvalue()


def render(table, fmt, nfe, time):
    if fmt == "latex":
        return latex(table, nfe, time)
    if fmt == "csv":
        return csv_text(table)
    return markdown(table, nfe, time)


# ------------------------------------------------------------------------------------------- summary --

def summary_sections(df, file_attrs, cell_attrs):
    """[(heading, [line, ...])]: the run summary, rendered as text or HTML."""
    cells = df.drop_duplicates(R.KEY)
    vary = R.varying_options(df)
    # Where a cell sits, for its messages: "gmm_lowrank d_y=1 | noise_langevin step_size=100".
    problem = {}
    if "task.name" in cells and "sampler.name" in cells:
        tasks, samplers = field_labels(cells, "task", vary, False), field_labels(cells, "sampler", vary, False)
        problem = {k: f"{tasks[k]} | {samplers[k]}" for k in cells[R.KEY]}
    sections = []

    exp = []
    for path, fa in file_attrs.items():
        n_file = int((cells[R.FILE] == path).sum())
        planned = fa.get(S.EXPERIMENT_CELLS)
        exp.append(f"{fa.get(S.EXPERIMENT, '?')} (experiment_hash {fa.get(S.EXPERIMENT_HASH, 'none')}"
                   + (f", {planned} cells planned" if planned else "") + f"): {path}, {n_file} cells read"
                   + (f", shard {fa[S.SHARD]}" if S.SHARD in fa else "")
                   + (f", merged from {fa[S.MERGED_FROM]}" if S.MERGED_FROM in fa else ""))
    sections.append(("Experiment", exp))

    counts = ", ".join(f"{s} {int((cells[S.STATUS] == s).sum())}" for s in S.STATUSES)
    status = [f"{len(cells)} cells: {counts}"]
    for _, c in cells.iterrows():
        if c[S.STATUS] != S.STATUS_OK:
            where = problem.get(c[R.KEY], "")
            status.append(f"{c[S.STATUS]} {c[R.KEY][:8]}" + (f" ({where})" if where else "")
                          + (f": {c[S.MESSAGE]}" if c[S.MESSAGE] else ""))
    if R.DIVERGED_CHAINS in df:
        dc = df[df[S.STATUS] == S.STATUS_OK].groupby(R.KEY, sort=False)[R.DIVERGED_CHAINS].sum()
        for key, n in dc.items():
            if n > 0:
                c = cells[cells[R.KEY] == key].iloc[0]
                total = c[S.CHAINS] * c["measurements"] if np.isfinite(c[S.CHAINS]) else float("nan")
                status.append(f"ok with diverged chains {key[:8]} ({problem.get(key, '')}): {int(n)} of "
                              f"{count_text(total)} chains over its measurements; metrics from the others")
    # Metrics not computed, one line per reason (the same reason recurs in every cell of a sampler family):
    # the metrics, how many cells, and where.
    reasons = {}
    in_table = set(cells[R.KEY])
    for key, a in cell_attrs.items():
        if key in in_table and a.get(S.METRICS_SKIPPED):
            for item in a[S.METRICS_SKIPPED].splitlines():
                metric, _, why = item.partition(": ")
                r = reasons.setdefault(why, ({}, {}))
                r[0][metric] = None
                r[1][key] = None
    samplers = field_labels(cells, "sampler", vary, False) if "sampler.name" in cells else {}
    for why, (metrics, keys) in reasons.items():
        where = list(dict.fromkeys(samplers.get(k, k[:8]) for k in keys))
        status.append(f"not computed: {', '.join(metrics)} in {len(keys)} cell{'s' if len(keys) > 1 else ''} "
                      f"({', '.join(where)})" + (f": {why}" if why else ""))
    sections.append(("Cells", status))

    prov = []
    used = {k: a for k, a in cell_attrs.items() if k in set(cells[R.KEY])}

    def distinct(name):
        values = {}
        for a in used.values():
            v = a.get(name)
            if v is not None:
                values[v] = values.get(v, 0) + 1
        if not values:
            return "not recorded"
        if len(values) == 1:
            return next(iter(values))
        return ", ".join(f"{v} ({n} cells)" for v, n in values.items())

    prov.append(f"psbench {distinct(S.PSBENCH_VERSION)}; git revision {distinct(S.GIT_REVISION)}; "
                f"LibTorch {distinct(S.LIBTORCH_VERSION)}; build type {distinct(S.BUILD_TYPE)}")
    prov.append(f"device {distinct(S.DEVICE)}; threads {distinct(S.THREADS)} (inter-op {distinct(S.INTEROP_THREADS)}); "
                f"malloc {distinct(S.MALLOC)}; BLAS {distinct(S.BLAS)}")
    models = {}
    for a in used.values():
        for name, v in a.items():
            if name.startswith(S.PRIOR_PREFIX) and name.endswith("_file"):
                role = name[len(S.PRIOR_PREFIX):-len("_file")]
                sha = a.get(S.PRIOR_PREFIX + role + "_sha256", "no sha256 recorded")
                models[(role, v, sha)] = None
        for name, v in a.items():
            if name.startswith(S.METRIC_WEIGHTS_SHA256_PREFIX):
                label = name[len(S.METRIC_WEIGHTS_SHA256_PREFIX):]
                net = a.get(S.METRIC_NETWORK_PREFIX + label, label)
                models[(f"metric network {net}", a.get(S.METRIC_WEIGHTS_PREFIX + label, "?"), v)] = None
    for role, path, sha in models:
        prov.append(f"model file ({role}): {path}, sha256 {sha}")
    if not models:
        prov.append("model files: none (analytic priors, no metric networks)")
    other = sorted({n[len(S.PRIOR_PREFIX):] for a in used.values() for n in a
                    if n.startswith(S.PRIOR_PREFIX) and not n.endswith(("_file", "_sha256"))})
    if other:
        prov.append("other prior attributes (in each cell): " + ", ".join(other))
    sections.append(("Provenance", prov))

    per_cell = cells.set_index(R.KEY)
    t = []
    if "cell_seconds" in per_cell:
        total = float(np.nansum(per_cell["cell_seconds"]))
        parts = []
        g = df.groupby(R.KEY, sort=False)
        for col, what in (("warmup_seconds", "warm-up"), ("sampling_seconds", "sampling")):
            if col in df:
                parts.append(f"{float(np.nansum(g[col].sum())):.3g} s {what}")
        if "scoring_seconds" in per_cell:
            parts.append(f"{float(np.nansum(per_cell['scoring_seconds'])):.3g} s scoring")
        t.append(f"{total:.4g} s in cells (sum of the cells' wall time" + (f"; {', '.join(parts)}" if parts else "")
                 + ")")
    else:
        t.append("cell times not recorded")
    # The files keep durations, not dates: a wall-clock span cannot be read from them.
    t.append("wall-time span: not available (results files record durations, not start or end times)")
    sections.append(("Time", t))
    return sections


def summary_text(sections):
    out = []
    for heading, lines in sections:
        out.append(f"{heading}:")
        out += [f"  {x}" for x in lines]
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------------------------- html --

CSS = """
body { font-family: system-ui, -apple-system, 'Segoe UI', sans-serif; margin: 24px 32px; color: #1a1a1a;
       font-size: 15px; line-height: 1.4; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 20px; margin-top: 32px; border-bottom: 1px solid #ccc; }
h3 { font-size: 16px; margin: 20px 0 6px; }
ul.summary { margin: 4px 0; padding-left: 20px; } ul.summary li { margin: 2px 0; word-break: break-word; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 6px 0; font-size: 13px; }
th, td { border: 1px solid #d0d0d0; padding: 3px 7px; text-align: right; white-space: nowrap; }
/* Column labels (sampler settings) wrap at their spaces so that ten samplers fit a screen's width. */
th { background: #f0f3f7; white-space: normal; vertical-align: bottom; min-width: 4em; } td.label, th.label { text-align: left; } td.label { vertical-align: top; }
td.best { font-weight: bold; background: #e7f4e4; } td.bad { color: #a33; font-style: italic; }
td.missing { color: #888; }
p.caption { color: #444; font-size: 13px; margin: 2px 0 12px; max-width: 1100px; }
figure { margin: 18px 0; } figure img { max-width: 100%; border: 1px solid #e3e3e3; }
figcaption { font-size: 13px; color: #444; }
"""


def html_table(table, show_metric):
    h = html.escape
    head = [f'<th class="label">{h(f)}</th>' for f in table.row_fields]
    if show_metric:
        head.append('<th class="label">metric</th>')
    # Break opportunities after "_" and "=" too: "x0_estimate=consistency" is one word to the browser.
    head += ["<th>" + h(c).replace("_", "_<wbr>").replace("=", "=<wbr>") + "</th>" for c in table.cols]
    out = ['<div class="scroll"><table>', "<tr>" + "".join(head) + "</tr>"]
    # A row label spans the lines of its quantities (rowspan), as the blank cells do in markdown.
    span = {}
    for line in table.lines:
        span[line.row] = span.get(line.row, 0) + 1
    previous = None
    for line in table.lines:
        tds = [] if line.row == previous else \
            [f'<td class="label" rowspan="{span[line.row]}">{h(x)}</td>' for x in line.row]
        previous = line.row
        if show_metric:
            tds.append(f'<td class="label">{h(line_label(line))}</td>')
        for c in table.cols:
            e = line.entries.get(c)
            if e is None:
                tds.append('<td class="missing"></td>')
                continue
            value, status, extra = entry_parts(line, e)
            if value is None:
                tds.append(f'<td class="bad">{h(status)}</td>')
                continue
            text = value if isinstance(value, str) else (value[0] if value[1] is None else f"{value[0]} ± {value[1]}")
            text = f"{text} {extra}" if extra else text
            cls = "best" if e.best else ("missing" if text == "—" else "")
            tds.append(f'<td class="{cls}">{h(text)}</td>' if cls else f"<td>{h(text)}</td>")
        out.append("<tr>" + "".join(tds) + "</tr>")
    out.append("</table></div>")
    return "\n".join(out)


def make_figures(files, out_dir):
    """Runs tools/psbench_figures.py into out_dir; (PNG paths, its output, exit status)."""
    p = subprocess.run([sys.executable, FIGURES, *files, "--out", out_dir], capture_output=True, text=True)
    pngs = sorted(os.path.join(out_dir, f) for f in os.listdir(out_dir) if f.endswith(".png")) \
        if os.path.isdir(out_dir) else []
    return pngs, (p.stdout + p.stderr).strip(), p.returncode


def html_page(df, files, file_attrs, cell_attrs, row_fields, col_fields, metrics, figures_dir):
    h = html.escape
    names = list(dict.fromkeys(fa.get(S.EXPERIMENT, "?") for fa in file_attrs.values()))
    body = [f"<h1>psbench results: {h(', '.join(names))}</h1>",
            f'<p class="caption">{h(", ".join(files))}</p>', "<h2>Summary</h2>"]
    for heading, lines in summary_sections(df, file_attrs, cell_attrs):
        body.append(f"<h3>{h(heading)}</h3><ul class=\"summary\">"
                    + "".join(f"<li>{h(x)}</li>" for x in lines) + "</ul>")
    body.append("<h2>Tables</h2>")
    if metrics:
        body.append(f'<p class="caption">{h(caption(build(df, row_fields, col_fields, metrics), False, False))}</p>')
    for m in metrics:
        t = build(df, row_fields, col_fields, [m])
        body.append(f"<h3>{h(line_label(t.lines[0]))}</h3>")
        body.append(html_table(t, show_metric=False))
    cost = build(df, row_fields, col_fields, [], nfe=True, time=True)
    body.append("<h3>Cost: NFE and wall-clock time per measurement</h3>")
    body.append(html_table(cost, show_metric=True))
    body.append(f'<p class="caption">{h(caption(cost, True, True))}</p>')

    body.append("<h2>Figures</h2>")
    tmp = None
    if figures_dir is None:
        tmp = tempfile.mkdtemp(prefix="psbench_table_")
        figures_dir = tmp
    try:
        pngs, log, status = make_figures(files, figures_dir)
        if status != 0:
            body.append(f'<p class="caption">The figures could not be made (psbench_figures.py exited {status}): '
                        f"{h(log)}</p>")
        elif not pngs:
            body.append(f'<p class="caption">No figures for these files: {h(log)}</p>')
        for png in pngs:
            with open(png, "rb") as f:
                data = base64.b64encode(f.read()).decode("ascii")
            name = os.path.splitext(os.path.basename(png))[0]
            body.append(f'<figure><img alt="{h(name)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{h(name)} (numbers in {h(name)}.csv of psbench_figures.py)</figcaption></figure>")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>psbench: {h(', '.join(names))}</title><style>{CSS}</style></head>\n<body>\n"
            + "\n".join(body) + "\n</body></html>\n")
    return page, status, log


# ---------------------------------------------------------------------------------------------- main --

def parse_metrics(text, df):
    held = df.attrs["metrics"]
    if text is None:
        return list(held)
    metrics = [m.strip() for m in text.split(",") if m.strip()]
    for m in metrics:
        if m not in held:
            raise BadInput(f"--metrics {text}: unknown metric '{m}' (the files hold: {', '.join(held) or 'none'})")
    if not metrics:
        raise BadInput("--metrics: no metric given")
    return metrics


def write(text, out):
    if out:
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
    else:
        sys.stdout.write(text)


def run(args):
    df, file_attrs, cell_attrs = read(args.files, args.allow_mixed)
    if args.summary:
        write(summary_text(summary_sections(df, file_attrs, cell_attrs)), args.out)
        return 0
    rows = parse_fields(args.rows, df, "--rows")
    cols = parse_fields(args.cols, df, "--cols")
    # A component covers its options: --rows task with --cols task.d_y would split the same thing twice.
    clash = [(r, c) for r in rows for c in cols if r == c or covered(r, df) & covered(c, df)]
    if clash:
        raise BadInput(f"--rows {args.rows} and --cols {args.cols} overlap ({clash[0][0]} and {clash[0][1]})")
    metrics = parse_metrics(args.metrics, df)
    if args.html:
        page, status, log = html_page(df, args.files, file_attrs, cell_attrs, rows, cols, metrics, args.figures_dir)
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(page)
        if status != 0:
            note(f"{args.html} written without figures: psbench_figures.py exited {status}: "
                 + " ".join(log.split())[:300])
            return 1
        print(f"{args.html}: {len(page) // 1024} KiB")
        return 0
    table = build(df, rows, cols, metrics, nfe=args.nfe, time=args.time)
    write(render(table, args.format, args.nfe, args.time), args.out)
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Pivot tables (markdown, LaTeX, CSV), a summary or an HTML page of "
                                             "psbench results files.")
    ap.add_argument("files", nargs="+", metavar="FILE.h5")
    ap.add_argument("--rows", default="task", metavar="F[,F...]")
    ap.add_argument("--cols", default="sampler", metavar="F[,F...]")
    ap.add_argument("--metrics", default=None, metavar="L[,L...]")
    ap.add_argument("--nfe", action="store_true")
    ap.add_argument("--time", action="store_true")
    ap.add_argument("--format", choices=("markdown", "latex", "csv"), default="markdown")
    ap.add_argument("--out", metavar="FILE")
    ap.add_argument("--allow-mixed", action="store_true")
    ap.add_argument("--summary", action="store_true")
    ap.add_argument("--html", metavar="OUT.html")
    ap.add_argument("--figures-dir", metavar="DIR")
    args = ap.parse_args(argv)
    if args.summary and args.html:
        print("psbench_table: --summary and --html are separate outputs; give one", file=sys.stderr)
        return 2
    try:
        return run(args)
    except (R.ResultsError, BadInput) as e:
        print(f"psbench_table: {' '.join(str(e).split())}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
