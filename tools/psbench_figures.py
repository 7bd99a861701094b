#!/usr/bin/python3
"""Figures of psbench results files (PNG and PDF), each with the CSV of the numbers it plots beside it.

Usage (a stable interface: `psbench report --figures DIR` is meant to call it this way):
  /usr/bin/python3 tools/psbench_figures.py FILE.h5 [FILE2.h5 ...] --out DIR
          [--kind all|nfe|step|timing|traces|grids] [--metric LABEL] [--measurements 0,1]

  --out DIR          where the figures go (created); DIR/<name>.png, DIR/<name>.pdf and DIR/<name>.csv per figure
  --kind             one kind of figure, or all (default)
  --metric LABEL     the metric of the nfe and step figures, any label the files hold ("psnr",
                     "psnr@posterior_mean", "sliced_wasserstein", ...); default psnr when present, else the
                     first of sliced_wasserstein, posterior_mean_rmse, mse_to_truth, else the first label
  --measurements L   comma-separated measurement indices for the traces and grids (default 0)

Several files combine (their rows are pooled, as psbench_results.load does). Prints one line per figure
written and a note for each figure kind the files hold no data for. Exit status 0 when the inputs were read
(also when a kind was skipped), 2 for bad input: a file that is not a psbench results file or cannot be
read, a --metric the files do not hold, bad --measurements (a one-line message on stderr).

Figures (names without extension):
  nfe_<metric>        kind nfe: the metric (mean over measurements; error bars: standard error over them)
                      against network evaluations per measurement, counted (warm-up and chain,
                      forward-only and forward+backward together), log x. One line per sampler setting;
                      the points along a line are the cells that differ in what sets their cost (a numeric
                      option that changes the planned NFE, e.g. steps or burn_in, or nfe_budget; K when
                      nothing else does). Samplers without network evaluations (exact, pseudo_inverse) are
                      horizontal dashed lines. One panel per problem (task, dataset, prior) and, when
                      other cost options vary, per K.
  nfe_sliced_wasserstein   kind nfe: the same for the sliced Wasserstein distance to the exact posterior,
                      when the files hold it (and --metric is another one).
  step_<metric>       kind step: the metric against each sampler's swept step-size-like option (step_size,
                      step_scale, beta, delta, ...), log x; one panel per problem and sampler, one line per
                      setting of the other swept options; cells that diverged or failed are marked x.
  timing              kind timing: wall time per measurement (warm-up + sampling, solid; sampling alone,
                      dashed; for samplers whose K samples are K independent runs, dotted: K times the
                      K = 1 cell, the one-sample-at-a-time cost) against the number of posterior samples
                      K, log-log, one line per sampler setting, from cells that differ in
                      samples_per_measurement (the noise-space Langevin paper's Figure 2;
                      experiments/timing_vs_dps.yaml). Cells that did not finish ok are
                      left out (a diverged chain stops early).
  traces_mNNNN        kind traces: the warm-up loss and the chain loss (the data-fit potential
                      ||y - A(Phi(z))||^2 / (2 sigma_y^2), mean over live chains) per step of measurement
                      NNNN, one line per cell, log y.
  grid_<task>_mNNNN   kind grids: for cells run with store_samples: true on image data: per sampler a row
                      with the ground truth, the measurement (in image space when it has x's shape, nearest-
                      upsampled when smaller, else log(1 + |y|)), up to 8 posterior samples, their mean and
                      the per-pixel standard deviation (colour bar).
The CSV beside each figure has one row per plotted point (cell), with the cell key, its status and the
plotted values; for traces one row per step, for grids one row per sampler row.

Needs Debian's python3-matplotlib and python3-pandas (run with /usr/bin/python3).
"""
import argparse
import math
import os
import re
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker as mticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psbench_results as R  # noqa: E402
import psbench_schema as S  # noqa: E402  (mirror of src/store/schema.h)

KINDS = ("nfe", "step", "timing", "traces", "grids")
K_COL = "samples_per_measurement"
BUDGET_COL = "nfe_budget"
NFE_COLS = ["nfe_warmup_forward", "nfe_warmup_forward_backward", "nfe_chain_forward", "nfe_chain_forward_backward"]
DEFAULT_METRICS = ("psnr", "sliced_wasserstein", "posterior_mean_rmse", "mse_to_truth")
SW = "sliced_wasserstein"
# Step-size-like options, in the order one is picked when a sampler sweeps several.
STEP_LIKE = ("step_size", "step_scale", "beta", "delta", "langevin_lr", "kappa", "warm_start_lr", "warm_start_step",
             "prior_scale", "r_scale")
TRACES = ("warmup_loss", "chain_loss")
TRACE_AXES = {"warmup_loss": "Adam warm-up step", "chain_loss": "chain step"}
UNITS = {"psnr": "dB", "sliced_wasserstein": "", "ssim": ""}
# Options that never tell results apart (execution-only or bookkeeping).
IGNORED = {"store_samples", "metrics_explicit", "sampler.batch_size", "prior.device", S.EXPERIMENT}

# Sizes in inches at DPI dots per inch: a figure of panels is (columns x PANEL_W + LEGEND_W, rows x PANEL_H +
# TITLE_H) and LEGEND_W more per extra legend column (more than LEGEND_LINES_PER_ROW entries a panel row), traces (columns x PANEL_W + TRACE_LEGEND_W, the same height), an image grid (GRID_EXTRA_W +
# columns x GRID_CELL, GRID_EXTRA_H + rows x GRID_CELL). Multiples of 1/4 inch: exact in binary, so the
# pixel sizes are whole numbers, which tests/report/figures_check.py checks.
DPI = 100
PANEL_W, PANEL_H, TITLE_H, LEGEND_W, MAX_COLS = 5.0, 3.75, 0.75, 3.5, 3
GRID_CELL, GRID_EXTRA_W, GRID_EXTRA_H = 1.5, 2.0, 1.0
TRACE_LEGEND_W = 3.5
MAX_SAMPLES_SHOWN = 8
MAX_LINES = 10


class BadInput(Exception):
    pass


def fmt(v):
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def slug(text):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(text)).strip("_")


def metric_axis_label(df, metric):
    unit = UNITS.get(metric.split("@")[0], "")
    direction = df.attrs["directions"].get(metric, "")
    words = {S.LOWER_IS_BETTER: "lower is better", S.HIGHER_IS_BETTER: "higher is better"}.get(direction, "")
    if direction.startswith(S.TARGET_PREFIX):
        words = "target " + direction[len(S.TARGET_PREFIX):]
    inside = ", ".join(w for w in (unit, words) if w)
    return metric + (f" ({inside})" if inside else "")


# ---------------------------------------------------------------------------------------------- cells --

def cell_table(df):
    """One row per cell: its options and status, the counted NFE and seconds per measurement (means)."""
    cells = df.drop_duplicates(R.KEY).set_index(R.KEY, drop=False)
    g = df.groupby(R.KEY, sort=False)
    nfe = [c for c in NFE_COLS if c in df]
    # The x axis of the NFE figure needs one number per cell: the planned NFE where the file has it (each
    # sampler's own count, `psbench list`), else this sum; the CSVs carry the four counts apart.
    cells["nfe"] = g[nfe].mean().sum(axis=1) if nfe else np.nan
    for c in nfe:
        cells[c] = g[c].mean()
    for c in ("warmup_seconds", "sampling_seconds"):
        cells[c] = g[c].mean() if c in df else np.nan
    return cells


def roles(cells, vary):
    """Splits the options that vary into cost options (numbers whose different values change the planned NFE
    with all else equal; nfe_budget always), problem options (task, dataset, prior, other top-level ones that are not
    cost) and series options (sampler ones, and prior options that are cost)."""
    vary = [v for v in vary if v not in IGNORED]
    planned = S.PLANNED_NFE if S.PLANNED_NFE in cells and cells[S.PLANNED_NFE].notna().any() else "nfe"
    known = cells[cells[planned].notna()]
    cost = []
    for c in vary:
        # A choice (DPS's x0_estimate) may change the cost too, but is a different method: a series, not a point
        # along one.
        if c == K_COL or c.endswith(".name") or not pd.api.types.is_numeric_dtype(cells[c].dropna()):
            continue
        if c == BUDGET_COL:
            cost.append(c)
            continue
        for g in groups(known, [o for o in vary if o != c]):
            if g[c].dropna().astype(str).nunique() > 1 and g[planned].nunique() > 1:
                cost.append(c)
                break
    problem, series = [], []
    for c in vary:
        if c in cost or c == K_COL:
            continue
        comp = c.split(".")[0] if "." in c else ""
        if comp == "sampler":
            series.append(c)
        else:
            problem.append(c)
    series += [c for c in cost if c.startswith("prior.")]
    cost = [c for c in cost if not c.startswith("prior.")]
    return problem, series, cost


def label_of(row, columns, short=True):
    """"noise_langevin, step_size=0.001, K=16": the values of `columns` that apply to this cell."""
    parts = []
    for c in columns:
        v = row.get(c)
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if c.endswith(".name"):
            parts.append(fmt(v))
        elif c == K_COL:
            parts.append(f"K={fmt(v)}")
        else:
            name = c.split(".", 1)[1] if short and c.startswith("sampler.") else c
            parts.append(f"{name}={fmt(v)}")
    return ", ".join(parts)


def series_columns(series):
    return ["sampler.name"] + [c for c in series if c != "sampler.name"]


def lines(frame, scols, cost):
    """The lines of a cost figure: (cells, label columns) per series; where several cost options vary within a series
    (PnP-DM's num_steps and rho), the line runs along the one with the most values and the others split it."""
    out = []
    for sc in groups(frame, scols):
        varying = [c for c in cost if c in sc and sc[c].dropna().astype(str).nunique() > 1]
        along = max(varying, key=lambda c: sc[c].dropna().astype(str).nunique()) if varying else None
        extra = [c for c in varying if c != along]
        out += [(g, scols + extra) for g in groups(sc, extra)]
    return out


def groups(frame, columns):
    """The sub-frames of rows that agree on `columns` (NaN equal to NaN), in order of first appearance."""
    if not columns or frame.empty:
        return [frame] if not frame.empty else []
    joined = frame[columns].astype(str).agg("\x1f".join, axis=1)
    return [frame[joined == k] for k in dict.fromkeys(joined)]


def grid_shape(n, max_cols=MAX_COLS):
    cols = min(n, max_cols)
    return cols, int(math.ceil(n / cols))


def panel_figure(n, title, subtitle=""):
    """A figure of n panels, MAX_COLS a row, with a column at the right for the one legend of all panels."""
    cols, rows = grid_shape(n)
    width = cols * PANEL_W + LEGEND_W
    fig = plt.figure(figsize=(width, rows * PANEL_H + TITLE_H), dpi=DPI, layout="constrained")
    gs = fig.add_gridspec(rows, cols + 1, width_ratios=[PANEL_W] * cols + [LEGEND_W])
    axes = [fig.add_subplot(gs[i // cols, i % cols]) for i in range(n)]
    legend_ax = fig.add_subplot(gs[:, cols])
    legend_ax.axis("off")
    # About 9 characters of the title per inch of width at this size: wrapped, never cut off.
    chars = int(width * 9)
    fig.suptitle(wrap(title, chars) + (f"\n{wrap(subtitle, chars)}" if subtitle else ""), fontsize=11)
    return fig, axes, legend_ax


MARKERS = "osD^v<>ph*"


class Palette:
    """One style per series label over a whole figure, so that one legend serves every panel: ten colours,
    then the same colours with the next marker."""

    def __init__(self):
        self.styles = {}

    def __call__(self, label):
        i = self.styles.setdefault(label, len(self.styles))
        return {"color": f"C{i % 10}", "marker": MARKERS[(i // 10) % len(MARKERS)]}


# Legend lines that fit in one legend column of a panel row (8 pt lines).
LEGEND_LINES_PER_ROW = 20


def shared_legend(fig, legend_ax, axes):
    """The legend of all panels in the column at the right; when it has more entries than fit, the column
    (and the figure) grows by LEGEND_W per legend column."""
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    if not handles:
        return
    gs = legend_ax.get_subplotspec().get_gridspec()
    rows = gs.get_geometry()[0]
    ncol = max(1, math.ceil(len(handles) / (LEGEND_LINES_PER_ROW * rows)))
    if ncol > 1:
        w, h = fig.get_size_inches()
        fig.set_size_inches(w + (ncol - 1) * LEGEND_W, h)
        gs.set_width_ratios(gs.get_width_ratios()[:-1] + [ncol * LEGEND_W])
    legend_ax.legend(list(handles.values()), [wrap(lab, 44) for lab in handles], loc="center left", fontsize=8,
                     frameon=False, ncol=ncol)


def log_axis(ax, vertical=False):
    """Log scale with plain-number labels: at 1, 2, 5 x 10^k over up to two decades, at 10^k beyond (the
    default minor labels overlap on a short range). Call it after plotting: it reads the data range."""
    (ax.set_yscale if vertical else ax.set_xscale)("log")
    axis = ax.yaxis if vertical else ax.xaxis
    lo, hi = ax.dataLim.intervaly if vertical else ax.dataLim.intervalx
    if lo > 0 and hi >= lo:
        # A margin of 8% of the log range each side (at least a factor 1.1 on x, where single points sit, 1.01
        # on y): no point on the frame.
        pad = max((hi / lo) ** 0.08, 1.01 if vertical else 1.1)
        (ax.set_ylim if vertical else ax.set_xlim)(lo / pad, hi * pad)
    lo, hi = ax.get_ylim() if vertical else ax.get_xlim()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 0
    axis.set_major_locator(mticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0) if decades <= 2 else (1.0,)))
    axis.set_major_formatter(mticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(mticker.NullFormatter())


def save(fig, table, out, name, written):
    png = os.path.join(out, name + ".png")
    fig.savefig(png, dpi=DPI)
    fig.savefig(os.path.join(out, name + ".pdf"))
    plt.close(fig)
    table.to_csv(os.path.join(out, name + ".csv"), index=False)
    written.append(png)
    print(f"wrote {png} (+ .pdf, .csv)")


def wrap(text, width=60):
    return "\n".join(textwrap.wrap(text, width)) if text else ""


def note(msg):
    print(f"note: {msg}")


# ----------------------------------------------------------------------------------- metric vs NFE --

def figure_vs_nfe(df, cells, metric, out, written, name=None):
    problem, series, cost = roles(cells, R.varying_options(df))
    # K travels along x only when nothing else sets the cost; otherwise each K is its own panel.
    k_varies = cells[K_COL].nunique() > 1
    k_in_panel = k_varies and bool(cost)
    panel_cols = problem + ([K_COL] if k_in_panel else [])
    scols = series_columns(series)
    stats = R.aggregate(df, metric)
    cells = cells.join(stats)
    # Panels where no cell has a value (a metric of other tasks, in combined files) are not drawn; their cells
    # are still rows of the CSV.
    all_panels = groups(cells, panel_cols)
    panels = [pc for pc in all_panels if np.isfinite(pc["mean"]).any()]
    if not panels:
        note(f"no figure of {metric} against NFE: no cell has a {metric} value")
        return
    if len(panels) < len(all_panels):
        note(f"{metric} against NFE: {len(all_panels) - len(panels)} panel(s) with no {metric} value not drawn "
             "(their cells are in the CSV)")
    per_set = metric in df.attrs["per_set_metrics"]
    def csv_rows(frame, lab):
        return [{"panel": label_of(r, panel_cols, short=False), "series": lab, R.KEY: r[R.KEY],
                 S.STATUS: r[S.STATUS], "nfe_per_measurement": r["nfe"],
                 **{c: r.get(c) for c in NFE_COLS}, f"{metric}_mean": r["mean"],
                 f"{metric}_se": r["se"], "n_measurements": int(r["n"]),
                 **{c: r.get(c) for c in panel_cols + scols + cost + [K_COL]}} for _, r in frame.iterrows()]

    palette = Palette()
    fig, axes, legend_ax = panel_figure(len(panels), f"{metric} against network evaluations per measurement",
                             "one value per cell (per-set metric)" if per_set
                             else "mean over measurements ± standard error")
    rows = []
    for ax, pc in zip(axes, panels):
        first = pc.iloc[0]
        title = label_of(first, panel_cols, short=False) or "all cells"
        positive = False
        hidden = 0
        for sc, lcols in lines(pc, scols, cost):
            sc = sc.sort_values("nfe")
            lab = label_of(sc.iloc[0], lcols)
            ok = sc[np.isfinite(sc["mean"])]
            hidden += len(sc) - len(ok)
            style = palette(lab)
            zero = ok[ok["nfe"] <= 0]
            pos = ok[ok["nfe"] > 0]
            for j, (_, r) in enumerate(zero.iterrows()):
                ax.axhline(r["mean"], color=style["color"], ls="--", lw=1.2, label=f"{lab} (no network evaluations)"
                           if j == 0 else None)
            if len(pos):
                positive = True
                ax.errorbar(pos["nfe"], pos["mean"], yerr=pos["se"].fillna(0), **style, ms=4,
                            capsize=3, lw=1.2, label=lab)
            rows += csv_rows(sc, lab)
        if positive:
            log_axis(ax)
        if hidden:
            title += f"\n({hidden} cell(s) without a value: diverged, failed or not scored)"
        ax.set_title(wrap(title), fontsize=9)
        ax.set_xlabel("network evaluations per measurement (warm-up + chain, all K samples)", fontsize=8)
        ax.set_ylabel(metric_axis_label(df, metric), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    for pc in all_panels:
        if not any(pc is p for p in panels):
            for sc, lcols in lines(pc, scols, cost):
                rows += csv_rows(sc, label_of(sc.iloc[0], lcols))
    shared_legend(fig, legend_ax, axes)
    save(fig, pd.DataFrame(rows), out, name or f"nfe_{slug(metric)}", written)


# ----------------------------------------------------------------------------- metric vs step size --

def step_option(sub, vary):
    for o in STEP_LIKE:
        c = "sampler." + o
        if c in vary and sub[c].dropna().nunique() > 1:
            return c
    return None


def figure_vs_step(df, cells, metric, out, written):
    vary = R.varying_options(df)
    problem, series, cost = roles(cells, vary)
    stats = R.aggregate(df, metric)
    cells = cells.join(stats)
    panels = []
    for pc in groups(cells, problem):
        for sub in groups(pc, ["sampler.name"]):
            opt = step_option(sub, vary)
            if opt and np.isfinite(sub["mean"]).any():
                panels.append((sub, opt))
    if not panels:
        note(f"no step figure: no sampler sweeps a step-size-like option ({', '.join(STEP_LIKE)})")
        return
    palette = Palette()
    fig, axes, legend_ax = panel_figure(len(panels), f"{metric} against the step-size-like option (ablation)",
                             "mean over measurements ± standard error")
    rows = []
    for ax, (sub, opt) in zip(axes, panels):
        first = sub.iloc[0]
        others = [c for c in series + cost + [K_COL] if c != opt and c != "sampler.name"
                  and sub[c].astype(str).nunique() > 1]
        # An option swept together with the step (one value per step value, e.g. ALMC's kappa with delta) is
        # part of the x value, not a series of its own.
        paired = [c for c in others if sub.groupby(sub[opt].astype(str))[c].nunique(dropna=False).max() == 1]
        others = [c for c in others if c not in paired]
        title = first["sampler.name"] + (": " + label_of(first, problem, short=False) if problem else "")
        ax.set_title(wrap(title), fontsize=10)
        bad_label = "diverged or failed (no value)"
        for i, sc in enumerate(groups(sub, others)):
            sc = sc.sort_values(opt)
            lab = label_of(sc.iloc[0], ["sampler.name"] + others)
            ok = sc[np.isfinite(sc["mean"])]
            style = palette(lab)
            if len(ok):
                ax.errorbar(ok[opt], ok["mean"], yerr=ok["se"].fillna(0), **style, ms=4, capsize=3,
                            lw=1.2, label=lab)
            bad = sc[~np.isfinite(sc["mean"])]
            if len(bad):
                # At the foot of the axes: a diverged setting has no value to place it by.
                ax.plot(bad[opt], np.full(len(bad), 0.03), ls="none", marker="x", ms=8, mew=2, color="red",
                        transform=ax.get_xaxis_transform(), label=bad_label)
                bad_label = None
            for _, r in sc.iterrows():
                rows.append({"panel": title, "series": lab, R.KEY: r[R.KEY], S.STATUS: r[S.STATUS],
                             "option": opt, "option_value": r[opt], **{c: r[c] for c in paired},
                             f"{metric}_mean": r["mean"],
                             f"{metric}_se": r["se"], "n_measurements": int(r["n"]),
                             "nfe_per_measurement": r["nfe"]})
        log_axis(ax)
        ax.set_xlabel(f"{opt} (log scale)" + (f"; swept with it: {', '.join(paired)}" if paired else ""),
                      fontsize=9)
        ax.set_ylabel(metric_axis_label(df, metric), fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    shared_legend(fig, legend_ax, axes)
    save(fig, pd.DataFrame(rows), out, f"step_{slug(metric)}", written)


# --------------------------------------------------------------------------------- time against K --

def independent_runs_cost(line):
    """K x the total time of the K = 1 cell, for a line (one sampler setting, sorted by K) whose K samples are
    K independent runs (chains == K in every cell); None otherwise or without a K = 1 cell."""
    chains = pd.to_numeric(line[S.CHAINS], errors="coerce")
    if not (chains == line[K_COL]).all() or not (line[K_COL] == 1).any():
        return None
    return line[K_COL] * float(line.loc[line[K_COL] == 1, "mean"].iloc[0])


def figure_timing(df, cells, out, written):
    if cells[K_COL].nunique() < 2:
        note("no timing figure: every cell has the same samples_per_measurement")
        return
    problem, series, cost = roles(cells, R.varying_options(df))
    ok = cells[cells[S.STATUS] == S.STATUS_OK].copy()
    left_out = len(cells) - len(ok)
    total = df.assign(total_seconds=df["warmup_seconds"] + df["sampling_seconds"])
    ok = ok.join(R.aggregate(total, "total_seconds")).join(
        R.aggregate(df, "sampling_seconds").add_prefix("sampling_"))
    scols = series_columns(series) + cost
    usable = []
    for pc in groups(ok, problem):
        lines = [sc for sc in groups(pc, scols) if sc[K_COL].nunique() > 1]
        if lines:
            usable.append((pc, lines))
    if not usable:
        note("no timing figure: no sampler setting was run at more than one samples_per_measurement")
        return
    sub = ("mean over measurements ± standard error; solid: warm-up + sampling, dashed: sampling only, "
           "dotted: one sample at a time")
    if left_out:
        sub += f"; {left_out} cell(s) that did not finish ok left out"
    palette = Palette()
    fig, axes, legend_ax = panel_figure(len(usable), "wall time against the number of posterior samples K", sub)
    rows = []
    for ax, (pc, lines) in zip(axes, usable):
        ax.set_title(wrap(label_of(pc.iloc[0], problem, short=False)) or "all cells", fontsize=10)
        for i, sc in enumerate(lines):
            sc = sc.sort_values(K_COL)
            lab = label_of(sc.iloc[0], scols)
            style = palette(lab)
            pos = sc[sc["mean"] > 0]
            ax.errorbar(pos[K_COL], pos["mean"], yerr=pos["se"].fillna(0), **style, ms=4, capsize=3,
                        lw=1.4, label=lab)
            sp = sc[sc["sampling_mean"] > 0]
            ax.plot(sp[K_COL], sp["sampling_mean"], color=style["color"], ls="--", lw=1.0)
            # The paper's Figure 2 draws one sample at a time: where the K samples are K independent runs
            # (chains == K at every K, e.g. DPS batched over K) that costs K times the K = 1 cell; where
            # they are iterates of fewer chains the batched cell already is the one-at-a-time cost.
            one = independent_runs_cost(sc)
            if one is not None:
                ax.plot(sc[K_COL], one, color=style["color"], ls=":", lw=1.2)
            for i_row, (_, r) in enumerate(sc.iterrows()):
                rows.append({"panel": label_of(r, problem, short=False), "series": lab, R.KEY: r[R.KEY],
                             K_COL: r[K_COL], S.CHAINS: r[S.CHAINS], "total_seconds_mean": r["mean"],
                             "total_seconds_se": r["se"], "sampling_seconds_mean": r["sampling_mean"],
                             "warmup_seconds_mean": r["warmup_seconds"],
                             "one_at_a_time_seconds": r["mean"] if one is None else one.iloc[i_row],
                             "n_measurements": int(r["n"]), "nfe_per_measurement": r["nfe"]})
        ax.plot([], [], color="0.3", ls="-", label="warm-up + sampling")
        ax.plot([], [], color="0.3", ls="--", label="sampling only (no warm-up)")
        ax.plot([], [], color="0.3", ls=":", label="one sample at a time: K x (K = 1 cell), independent runs")
        log_axis(ax)
        ax.set_yscale("log")
        ax.set_xlabel("posterior samples per measurement K", fontsize=9)
        ax.set_ylabel("wall time per measurement (s)", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    shared_legend(fig, legend_ax, axes)
    save(fig, pd.DataFrame(rows), out, "timing", written)


# ------------------------------------------------------------------------------------------ traces --

def figure_traces(df, cells, measurements, out, written):
    problem, series, cost = roles(cells, R.varying_options(df))
    # A row per problem and K (a line per cell stays readable), a column per trace, the row's legend at its right.
    panel_cols = problem + ([K_COL] if cells[K_COL].nunique() > 1 else [])
    scols = series_columns(series) + cost
    any_written = False
    for m in measurements:
        fig_rows = []  # (title, {trace: [(cell row, values)]})
        for pc in groups(cells, panel_cols):
            found = {t: [] for t in TRACES}
            for key, c in pc.iterrows():
                try:
                    names = R.trace_names(c[R.FILE], key)
                    for t in TRACES:
                        if t in names:
                            found[t].append((c, R.trace(c[R.FILE], key, t, m)))
                except R.ResultsError:
                    continue  # no such measurement in this cell
            if any(found.values()):
                fig_rows.append((label_of(pc.iloc[0], panel_cols, short=False), found))
        if not fig_rows:
            continue
        shown = [t for t in TRACES if any(f[t] for _, f in fig_rows)]
        nrows, ncols = len(fig_rows), len(shown)
        fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * PANEL_W + TRACE_LEGEND_W, nrows * PANEL_H + TITLE_H),
                                 dpi=DPI, squeeze=False, layout="constrained")
        fig.suptitle(f"per-step loss of measurement {m}\n"
                     "data-fit potential of the current iterate, mean over the live chains", fontsize=11)
        rows = []
        for r, (title, found) in enumerate(fig_rows):
            keys = list(dict.fromkeys(c[R.KEY] for t in shown for c, _ in found[t]))
            color = {k: f"C{i % 10}" for i, k in enumerate(keys)}
            handles = {}
            for j, t in enumerate(shown):
                ax = axes[r][j]
                entries = found[t]
                for c, v in entries:
                    lab = label_of(c, scols) + ("" if c[S.STATUS] == S.STATUS_OK else f" [{c[S.STATUS]}]")
                    v = np.asarray(v, dtype=float)
                    plotted = keys.index(c[R.KEY]) < MAX_LINES
                    if plotted:
                        # A log axis: non-positive values (none expected of a squared norm) are left out.
                        (line,) = ax.plot(np.arange(len(v)), np.where(v > 0, v, np.nan), color=color[c[R.KEY]],
                                          lw=1.2, marker="o" if len(v) < 3 else None, ms=3, label=lab)
                        handles.setdefault(lab, line)
                    rows += [{"panel": title, "trace": t, R.KEY: c[R.KEY], "series": lab, R.MEASUREMENT: m,
                              "step": s, "value": float(x), "plotted": plotted} for s, x in enumerate(v)]
                head = f"{t}: {title}" if title else t
                ax.set_title(wrap(head), fontsize=9)
                if not entries:
                    ax.text(0.5, 0.5, f"no {t}", ha="center", va="center", transform=ax.transAxes)
                    continue
                log_axis(ax, vertical=True)
                ax.xaxis.set_major_locator(mticker.MaxNLocator(integer=True))
                ax.set_xlabel(TRACE_AXES[t], fontsize=9)
                ax.set_ylabel(r"$\Vert y - A(\Phi(z))\Vert^2 / (2\sigma_y^2)$", fontsize=9)
                ax.grid(True, which="both", alpha=0.3)
            if len(keys) > MAX_LINES:
                handles[f"(first {MAX_LINES} of {len(keys)} cells; all in the CSV)"] = \
                    matplotlib.lines.Line2D([], [], color="none")
            axes[r][-1].legend(handles.values(), handles.keys(), fontsize=7, loc="center left",
                               bbox_to_anchor=(1.02, 0.5), frameon=False)
        save(fig, pd.DataFrame(rows), out, f"traces_{S.measurement_name(m)}", written)
        any_written = True
    if not any_written:
        note("no traces figure: no cell stores " + " or ".join(TRACES) + " for the chosen measurements")


# ------------------------------------------------------------------------------------------- grids --

def to_image(a):
    """[C, H, W] or [H, W] in [-1, 1] -> something imshow takes: [H, W] (grey) or [H, W, 3] in [0, 1]."""
    a = np.asarray(a, dtype=float)
    if a.ndim == 3 and a.shape[0] == 3:
        return np.clip((np.transpose(a, (1, 2, 0)) + 1) / 2, 0, 1)
    if a.ndim == 3:
        return a.mean(axis=0)
    return a


def show_measurement(y, x):
    """How y is shown next to x: (array, imshow kwargs, column title, note or '')."""
    grey = dict(cmap="gray", vmin=-1, vmax=1)
    if y.shape == x.shape:
        return to_image(y), grey if not (x.ndim == 3 and x.shape[0] == 3) else {}, "measurement y", ""
    if y.ndim == x.ndim and y.ndim >= 2 and (y.ndim == 2 or y.shape[0] == x.shape[0]) and \
            y.shape[-2] <= x.shape[-2] and y.shape[-1] <= x.shape[-1]:
        # Nearest neighbour: output pixel (i, j) takes input pixel (i h / H, j w / W), rounded down.
        ih = np.arange(x.shape[-2]) * y.shape[-2] // x.shape[-2]
        iw = np.arange(x.shape[-1]) * y.shape[-1] // x.shape[-1]
        up = y[..., ih, :][..., iw]
        return to_image(up), grey if not (x.ndim == 3 and x.shape[0] == 3) else {}, "y (nearest-upsampled)", ""
    if y.ndim >= 2:
        mag = np.log1p(np.abs(np.asarray(y, dtype=float)))
        mag = mag.reshape((-1,) + mag.shape[-2:]).mean(axis=0)
        return mag, dict(cmap="viridis"), "log(1 + |y|)", \
            f"y {tuple(y.shape)} is not an image of x's shape {tuple(x.shape)} (e.g. Fourier magnitudes): shown as log(1 + |y|)"
    return None, {}, "y (not an image)", f"y {tuple(y.shape)} cannot be shown as an image"


def figure_grids(df, cells, measurements, out, written):
    problem, series, cost = roles(cells, R.varying_options(df))
    scols = series_columns(series) + cost + ([K_COL] if cells[K_COL].nunique() > 1 else [])
    stored = cells[cells.get("store_samples", False) == True]  # noqa: E712  (a column of booleans)
    if stored.empty:
        note("no image grids: no cell was run with store_samples: true")
        return
    wrote = False
    reason = "the stored samples are not images (x is a vector)"
    for pc in groups(stored, problem):
        for m in measurements:
            entries = []
            for key, c in pc.iterrows():
                try:
                    xs, ys = R.images(c[R.FILE], key)
                    if m >= len(xs):
                        continue
                    smp = R.samples(c[R.FILE], key, m)
                except R.ResultsError:
                    continue
                entries.append((c, xs[m], ys[m], smp))
            if not entries:
                reason = "no stored samples for the chosen measurements"
                continue
            x0 = entries[0][1]
            if x0.ndim not in (2, 3) or min(x0.shape[-2:]) < 4:
                continue
            n_show = min(MAX_SAMPLES_SHOWN, max(len(e[3]) for e in entries))
            ncols, nrows = 2 + n_show + 2, len(entries)
            fig, axes = plt.subplots(nrows, ncols, figsize=(GRID_EXTRA_W + ncols * GRID_CELL,
                                                            GRID_EXTRA_H + nrows * GRID_CELL),
                                     dpi=DPI, squeeze=False, layout="constrained")
            title = "posterior samples, measurement " + str(m)
            first = entries[0][0]
            title += ": " + label_of(first, ["task.name"] + [c for c in problem if c != "task.name"], short=False)
            fig.suptitle(title, fontsize=12)
            stds = [np.std(np.asarray(e[3], dtype=float), axis=0, ddof=1) if len(e[3]) > 1 else None
                    for e in entries]
            smax = max([float(np.max(to_image(s))) for s in stds if s is not None] + [1e-12])
            rgb = x0.ndim == 3 and x0.shape[0] == 3
            img_kw = {} if rgb else dict(cmap="gray", vmin=-1, vmax=1)
            rows, notes, std_axes, im_std = [], set(), [], None
            for r, (c, x, y, smp) in enumerate(entries):
                ax_row = axes[r]
                ymat, ykw, ytitle, ynote = show_measurement(np.asarray(y), np.asarray(x))
                if ynote:
                    notes.add(ynote)
                panels = [(to_image(x), img_kw, "ground truth x*"), (ymat, ykw, ytitle)]
                for s in range(n_show):
                    panels.append((to_image(smp[s]) if s < len(smp) else None, img_kw, f"sample {s + 1}"))
                mean = np.asarray(smp, dtype=float).mean(axis=0)
                panels.append((to_image(mean), img_kw, "posterior mean"))
                std_img = to_image(stds[r]) if stds[r] is not None else None
                if std_img is not None and std_img.ndim == 3:
                    std_img = std_img.mean(axis=2)
                panels.append((std_img, dict(cmap="magma", vmin=0, vmax=smax), "pixel std"))
                for j, (ax, (img, kw, ttl)) in enumerate(zip(ax_row, panels)):
                    ax.set_xticks([])
                    ax.set_yticks([])
                    for sp in ax.spines.values():
                        sp.set_visible(False)
                    if img is not None:
                        im = ax.imshow(img, interpolation="nearest", **kw)
                        if j == len(panels) - 1:
                            im_std = im
                    else:
                        ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes)
                    if r == 0:
                        ax.set_title(ttl, fontsize=9)
                std_axes.append(ax_row[-1])
                ax_row[0].set_ylabel(wrap(label_of(c, scols), 18), fontsize=9)
                metric_values = {lab: c.get(lab) for lab in df.attrs["metrics"]}
                row_df = df[(df[R.KEY] == c[R.KEY]) & (df[R.MEASUREMENT] == m)]
                for lab in df.attrs["metrics"]:
                    metric_values[lab] = float(row_df[lab].iloc[0]) if len(row_df) else np.nan
                rows.append({R.KEY: c[R.KEY], "series": label_of(c, scols), R.MEASUREMENT: m,
                             "samples_stored": len(smp), "samples_shown": min(n_show, len(smp)),
                             "measurement_shown_as": ytitle,
                             "pixel_std_map_mean": float(np.mean(stds[r])) if stds[r] is not None else np.nan,
                             "posterior_mean_min": float(mean.min()), "posterior_mean_max": float(mean.max()),
                             **metric_values})
            if im_std is not None:
                fig.colorbar(im_std, ax=std_axes, shrink=0.8, label="per-pixel std of the samples")
            if notes:
                fig.supxlabel("\n".join(sorted(notes)), fontsize=8)
            parts = ["task.name"] + [c for c in problem if c != "task.name"]
            name = f"grid_{slug(label_of(first, parts, short=False).replace(', ', '_'))}_{S.measurement_name(m)}"
            save(fig, pd.DataFrame(rows), out, name, written)
            wrote = True
    if not wrote:
        note(f"no image grids: {reason}")


# ---------------------------------------------------------------------------------------------- main --

def pick_metric(df, asked):
    labels = df.attrs["metrics"]
    if asked:
        if asked not in labels:
            raise BadInput(f"--metric {asked}: the files hold no such metric (they hold: {', '.join(labels) or 'none'})")
        return asked
    for m in DEFAULT_METRICS:
        if m in labels:
            return m
    return labels[0] if labels else None


def parse_measurements(text):
    try:
        ms = [int(t) for t in text.split(",") if t.strip() != ""]
    except ValueError:
        raise BadInput(f"--measurements {text}: expected comma-separated measurement indices, e.g. 0,1") from None
    if not ms or any(m < 0 for m in ms):
        raise BadInput(f"--measurements {text}: expected comma-separated measurement indices >= 0")
    return ms


def run(args):
    df = R.load(args.files)
    if df.empty:
        raise BadInput(f"{', '.join(args.files)}: no complete cells")
    measurements = parse_measurements(args.measurements)
    metric = pick_metric(df, args.metric)
    os.makedirs(args.out, exist_ok=True)
    cells = cell_table(df)
    kinds = KINDS if args.kind == "all" else (args.kind,)
    written = []
    plt.rcParams.update({"font.size": 9, "axes.titlesize": 10})
    if "nfe" in kinds:
        if metric is None:
            note("no nfe figure: the files hold no metric values")
        else:
            figure_vs_nfe(df, cells, metric, args.out, written)
            if SW in df.attrs["metrics"] and metric != SW:
                figure_vs_nfe(df, cells, SW, args.out, written, name=f"nfe_{SW}")
            elif SW not in df.attrs["metrics"]:
                note("no sliced_wasserstein figure: the files hold no sliced_wasserstein values")
    if "step" in kinds:
        if metric is None:
            note("no step figure: the files hold no metric values")
        else:
            figure_vs_step(df, cells, metric, args.out, written)
    if "timing" in kinds:
        figure_timing(df, cells, args.out, written)
    if "traces" in kinds:
        figure_traces(df, cells, measurements, args.out, written)
    if "grids" in kinds:
        figure_grids(df, cells, measurements, args.out, written)
    print(f"{len(written)} figure(s) in {args.out}")
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description="Figures (PNG, PDF and the plotted numbers as CSV) of psbench results "
                                             "files.")
    ap.add_argument("files", nargs="+", metavar="FILE.h5")
    ap.add_argument("--out", required=True, metavar="DIR")
    ap.add_argument("--kind", choices=("all",) + KINDS, default="all")
    ap.add_argument("--metric", default=None, metavar="LABEL")
    ap.add_argument("--measurements", default="0", metavar="0,1")
    args = ap.parse_args(argv)
    try:
        return run(args)
    except (R.ResultsError, BadInput) as e:
        print(f"psbench_figures: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
