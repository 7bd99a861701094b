#!/usr/bin/python3
"""The Fashion-MNIST tables of the noise-space Langevin paper from psbench results files: one markdown
table per task, one row per sampler (its tuned setting in the label), the columns of the paper's tables
plus the cost columns its reviewers asked for.

Usage:
  /usr/bin/python3 tools/fashion_table.py results/fashion_fidelity.h5 [--kind fidelity]
  /usr/bin/python3 tools/fashion_table.py results/fashion_diversity.h5 --kind diversity
Every entry is the mean ± standard error over the cell's measurements (test images) of the per-image value
(per-sample metrics: the mean over that image's K samples; "@mean": the metric of the posterior mean);
set-level metrics (the Fréchet distance of all samples against the test split) are one number. NFE (mean)
and seconds (median over images, robust to a pause of the machine) are per measurement (K samples),
warm-up and sampling apart; seconds are wall time of one single-threaded process sharing the machine with
the sweep's other shards (the timing experiment, experiments/timing_vs_dps.yaml, is the clean one). "n" is the number of test images a
row was scored on; a row on fewer images than the others is marked. A metric the sampler cannot have
(e.g. R-hat of a single chain) shows its reason's first words; a cell that failed shows that. A diverged
cell (some images lost every chain) shows its numbers over the images that kept samples, and "n" says how
many of the cell's images that is ("95/100 †": 5 images have no sample and are in no column).
Reads with h5py (Debian's python3-h5py, python3-yaml).
"""
import argparse
import collections
import os
import sys

import h5py
import numpy as np
import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import psbench_schema as S  # noqa: E402  (mirror of src/store/schema.h)

# (column header, metric label, decimals). "@mean" labels are the posterior mean's.
FIDELITY = [
    ("PSNR", "psnr", 2), ("PSNR @mean", "psnr@posterior_mean", 2),
    ("SSIM", "ssim", 3), ("SSIM @mean", "ssim@posterior_mean", 3),
    ("perc. fmnist_cnn", "perceptual_fmnist_cnn", 3), ("perc. @mean", "perceptual_fmnist_cnn@posterior_mean", 3),
    ("FD fmnist_cnn", "fd_fmnist_cnn", 2), ("data cons.", "data_consistency", 2),
    ("ESS bulk", "ess_bulk", 1), ("R-hat", "rhat", 3),
]
DIVERSITY = [
    ("PSNR", "psnr", 2), ("PSNR @mean", "psnr@posterior_mean", 2), ("data cons.", "data_consistency", 2),
    ("pairwise perc. div.", "diversity_perceptual_fmnist_cnn", 3), ("pixel std", "pixel_std", 4),
    ("Vendi", "vendi_fmnist_cnn", 2), ("Diversity Score", "diversity_score_fmnist_cnn", 3),
    ("FD fmnist_cnn", "fd_fmnist_cnn", 2),
]
TASK_TITLES = {"sr_avgpool": "SR x4 (4x4 average pooling)", "gaussian_blur": "Gaussian deblurring (7x7, std 1)",
               "inpaint_random": "random inpainting (20% observed)", "inpaint_box": "box inpainting (14x14)",
               "phase_retrieval": "phase retrieval (oversampling 2)"}


def row_label(sampler, prior):
    """Sampler family as the paper names it, with the setting that distinguishes the row."""
    name = sampler["name"]
    steps = int(prior.get("steps", 1))
    cm = f", {steps}-step CM" if steps > 1 else ""
    if name in ("dps", "lgd"):
        est = "CM" if sampler.get("x0_estimate") == "consistency" else "DM"
        conv = f", {sampler['convention']}" if sampler.get("convention", "paper") != "paper" else ""
        return f"{name.upper()}-{est} ({sampler.get('steps')} steps, scale {sampler.get('step_scale')}{conv})"
    if name == "noise_langevin":
        warm = sampler.get("warm_start_steps", 400)
        warm = f", {warm}-step warm start" if warm != 400 else ""  # the tables' protocol is 400
        return f"noise-space Langevin{cm} (tau {sampler.get('step_size')}{warm})"
    if name == "noise_mala":
        return f"noise-space MALA{cm} (h {sampler.get('step_size')})"
    if name == "noise_pcn":
        return f"noise-space pCN{cm} (beta {sampler.get('beta')})"
    if name == "almc":
        return f"ALMC (delta {sampler.get('delta')}, kappa {sampler.get('kappa')})"
    if name == "daps":
        return f"DAPS ({sampler.get('levels')} levels, lr {sampler.get('langevin_lr')})"
    if name == "pseudo_inverse":
        return "pseudo-inverse (classical floor)"
    return name


def fmt(values, decimals):
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return "—"
    if len(v) == 1:
        return f"{v[0]:.{decimals}f}"
    return f"{v.mean():.{decimals}f} ± {v.std(ddof=1) / np.sqrt(len(v)):.{decimals}f}"


def cell_row(c, columns):
    status = c.attrs[S.STATUS]
    skipped = {}
    for item in str(c.attrs.get(S.METRICS_SKIPPED, "")).split("\n"):
        if ":" in item:
            k, why = item.split(":", 1)
            skipped[k.strip()] = why.strip()
    out = []
    for _, label, dec in columns:
        name = S.METRICS_GROUP + label
        if name in c:  # a diverged cell's values are over the images that kept samples (scored_measurements)
            out.append(fmt(c[name][()], dec))
        elif status != S.STATUS_OK:
            out.append(status)
        elif label.split("@")[0] in skipped:
            out.append("n/a")
        else:
            out.append("—")

    def mean(n):
        return float(np.asarray(c[n][()]).mean()) if n in c else float("nan")

    def median(n):  # seconds: the median image, so that a pause of the machine does not move the column
        return np.asarray(c[n][()], dtype=float) if n in c else np.array([np.nan])

    warm, samp = median(S.TIME_WARMUP_SECONDS), median(S.TIME_SAMPLING_SECONDS)
    cost = [f"{mean(S.NFE_WARMUP_FORWARD):.0f} / {mean(S.NFE_WARMUP_FORWARD_BACKWARD):.0f}",
            f"{mean(S.NFE_CHAIN_FORWARD):.0f} / {mean(S.NFE_CHAIN_FORWARD_BACKWARD):.0f}",
            f"{np.median(warm):.2f}", f"{np.median(samp):.2f}", f"{np.median(warm + samp):.2f}"]
    return out, cost


def summary(path, metrics, by_budget=False):
    """Sampler families (the row label without its setting) against tasks, for README's overview; with
    by_budget, against the NFE budget of a budget_mode: set sweep (one task)."""
    table = collections.OrderedDict()  # family -> {column: text}
    tasks = []
    with h5py.File(path, "r") as f:
        for _, c in S.cells_in_order(f):
            cfg = yaml.safe_load(c.attrs[S.CONFIG])
            task = int(cfg.get("nfe_budget", 0)) if by_budget else cfg["task"]["name"]
            if task not in tasks:
                tasks.append(task)
            label = row_label(cfg["sampler"], cfg["prior"])
            fam = label.split(" (")[0]
            if task in table.get(fam, {}):  # two settings of one family on a task: keep both, by full label
                fam = label
            parts = []
            for i, label in enumerate(metrics):
                name = S.METRICS_GROUP + label
                if name not in c:
                    parts.append(c.attrs[S.STATUS] if c.attrs[S.STATUS] != S.STATUS_OK else "n/a")
                    continue
                v = np.asarray(c[name][()], dtype=float)
                v = v[np.isfinite(v)]
                parts.append(fmt(v, 2) if i == 0 else f"{v.mean():.2f}" if len(v) else "—")
            text = parts[0] + (f" ({parts[1]})" if len(parts) > 1 else "")
            m = int(cfg.get("measurements", 0))
            scored = len(c[S.SCORED_MEASUREMENTS][()]) if S.SCORED_MEASUREMENTS in c else m
            if scored < m:
                text += f" †{scored}/{m}"
            table.setdefault(fam, {})[task] = text
    if by_budget:
        tasks.sort()
        print("| sampler | " + " | ".join(f"B = {t}" for t in tasks) + " |")
    else:
        print("| sampler | " + " | ".join(TASK_TITLES.get(t, t).split(" (")[0] for t in tasks) + " |")
    print("|---" * (1 + len(tasks)) + "|")
    for fam, row in table.items():
        print(f"| {fam} | " + " | ".join(row.get(t, "not run") for t in tasks) + " |")
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--kind", choices=("fidelity", "diversity"), default="fidelity")
    ap.add_argument("--summary", metavar="METRIC[,METRIC]",
                    help="instead of one table per task, one table of sampler families against tasks: the first "
                         "metric as mean ± standard error, the second (optional) in brackets, e.g. "
                         "psnr@posterior_mean,psnr")
    ap.add_argument("--by-budget", action="store_true",
                    help="with --summary: columns are the NFE budgets of a budget_mode: set sweep "
                         "(experiments/fashion/fidelity_vs_nfe.yaml) instead of tasks")
    args = ap.parse_args()
    if args.summary:
        return summary(args.results, args.summary.split(","), args.by_budget)
    columns = FIDELITY if args.kind == "fidelity" else DIVERSITY
    by_task = collections.OrderedDict()
    with h5py.File(args.results, "r") as f:
        for _, c in S.cells_in_order(f):
            cfg = yaml.safe_load(c.attrs[S.CONFIG])
            task = cfg["task"]["name"]
            m = int(cfg.get("measurements", 0))
            k = int(cfg.get("samples_per_measurement", 0))
            metrics, cost = cell_row(c, columns)
            scored = len(c[S.SCORED_MEASUREMENTS][()]) if S.SCORED_MEASUREMENTS in c else m
            by_task.setdefault(task, []).append((row_label(cfg["sampler"], cfg["prior"]), m, k, metrics, cost, scored))
    for task, rows in by_task.items():
        most = max(r[1] for r in rows)
        partial = False
        print(f"### {TASK_TITLES.get(task, task)}\n")
        print("| sampler | n | " + " | ".join(h for h, _, _ in columns) +
              " | NFE warm-up (fwd / fwd+bwd) | NFE sampling (fwd / fwd+bwd) | s warm-up | s sampling | s total |")
        print("|---" * (2 + len(columns) + 5) + "|")
        for label, m, k, metrics, cost, scored in rows:
            n = f"{scored}/{m} †" if scored < m else f"{m}"
            n += " (fewer)" if m < most else ""
            partial = partial or scored < m
            print(f"| {label} | {n} | " + " | ".join(metrics) + " | " + " | ".join(cost) + " |")
        print(f"\n{rows[0][2]} posterior samples per image; NFE (mean) and seconds (median) per image, all its "
              "samples; mean ± standard error over images.\n")
        if partial:
            print("† diverged: on the other images every chain diverged or got stuck (accepted none of its "
                  "proposals); those images have no sample and are left out of every column.\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
