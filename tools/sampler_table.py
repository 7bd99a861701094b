#!/usr/bin/python3
"""Compact markdown table of a psbench results file: one row per sampler configuration, one column per
(prior.dim, task.d_y) problem, each entry the mean ± standard error over measurements of one metric, plus
the network evaluations per measurement of each row: forward-only / forward+backward (never summed: they
cost different amounts), sampling and warm-up in separate columns.

Usage: /usr/bin/python3 tools/sampler_table.py RESULTS.h5 [--metric sliced_wasserstein] [--spread se|ci95] [--d-y N ...] [--dim D ...]
  --d-y, --dim: only the problems with these measurement dimensions, or these prior dimensions.
  --spread ci95: mean ± 1.96 sd / sqrt(n) over the n measurements, the form of the published Gaussian-mixture
  benchmark (MCGdiff, Cardoso et al. 2024); se (default): mean ± sd / sqrt(n).
Reads the file with h5py (Debian's python3-h5py, python3-yaml).
"""
import argparse
import collections

import h5py
import numpy as np
import yaml

import psbench_schema as S  # the results schema (mirror of src/store/schema.h), next to this script

DEFAULTS_LEFT_OUT = {"name", "batch_size", "divergence_threshold"}


# Options shown only when they differ from this value (added to every reverse diffusion after its rows had run).
SHOWN_UNLESS = {"grid": "karras", "singular_floor": 0}


def sampler_label(s):
    shown = SHOWN.get(s["name"], ()) + tuple(SHOWN_UNLESS)
    extra = ", ".join(f"{k}={v}" for k, v in s.items()
                      if k not in DEFAULTS_LEFT_OUT and k in shown and SHOWN_UNLESS.get(k) != v)
    return s["name"] + (f" ({extra})" if extra else "")


# Options shown in the row label (the swept or distinguishing ones); everything else is in the yaml file.
SHOWN = {
    "dps": ("step_scale", "steps", "x0_estimate", "guidance_frame"),
    "lgd": ("step_scale", "steps", "mc_draws", "guidance_frame"),
    "almc": ("delta", "kappa"),
    "daps": ("levels", "langevin_steps", "langevin_lr", "ode_steps", "sigma_start"),
    "pigdm": ("steps",), "ddrm": ("steps", "eta"), "ddnm": ("steps", "eta"), "ddnm_plus": ("steps", "eta"),
    "diffpir": ("steps", "lambda"), "pnp_dm": ("num_steps", "rho", "rho_min"), "reddiff": ("steps", "lambda", "lr"),
    "noise_mala": ("step_size", "adapt_steps", "chains", "warm_start_steps"),
    "noise_pcn": ("beta", "adapt_steps", "chains", "warm_start_steps"),
    "mcgdiff": ("steps", "particles"), "fps": ("steps", "particles"), "tds": ("steps", "particles", "twist_scale"),
    "noise_langevin": ("step_size", "chains", "warm_start_steps", "burn_in"),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--metric", default="sliced_wasserstein")
    ap.add_argument("--spread", choices=("se", "ci95"), default="se")
    ap.add_argument("--d-y", type=int, nargs="+", dest="d_y")
    ap.add_argument("--dim", type=int, nargs="+")
    args = ap.parse_args()
    table = collections.OrderedDict()
    nfe = {}
    problems = set()
    order = []
    partial = [False]
    with h5py.File(args.results, "r") as f:
        for _, c in S.cells_in_order(f):
            cfg = yaml.safe_load(c.attrs[S.CONFIG])
            label = sampler_label(cfg["sampler"])
            # A problem is (d, d_y), and the prior's sigma_max and weights where a file varies them
            # (experiments/gmm_grid.yaml, gmm_weights.yaml).
            prob = (cfg["prior"].get("dim"), cfg["task"].get("d_y"), cfg["prior"].get("sigma_max", 80.0),
                    cfg["prior"].get("weights", "random"))
            if (args.d_y and prob[1] not in args.d_y) or (args.dim and prob[0] not in args.dim):
                continue
            problems.add(prob)
            if label not in table:
                table[label] = {}
                order.append(label)
            if prob in table[label]:
                raise SystemExit(f"sampler_table.py: two cells of {args.results} are both '{label}' on d={prob[0]}, "
                                 f"d_y={prob[1]}: add the option that tells them apart to SHOWN")
            status = c.attrs[S.STATUS]
            if S.METRICS_GROUP + args.metric not in c:
                table[label][prob] = status
                continue
            # A diverged cell keeps the metrics of the measurements that have samples: shown with their count,
            # never as if they were all of them.
            v = np.asarray(c[S.METRICS_GROUP + args.metric])
            se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
            entry = f"{v.mean():.3g} ± {(1.96 if args.spread == 'ci95' else 1.0) * se:.2g}"
            if status != S.STATUS_OK:
                total = c[S.Y].shape[0] if S.Y in c else "?"
                entry += f" ({status}: {len(v)} of {total} measurements)"
            elif S.CHAINS_DIVERGED in c and np.asarray(c[S.CHAINS_DIVERGED]).sum() > 0:
                entry += " †"  # as psbench report: a finished cell whose chains (or SMC runs) partly diverged
                partial[0] = True
            table[label][prob] = entry
            m = {n: float(np.asarray(c[n]).mean()) for n in
                 (S.NFE_WARMUP_FORWARD, S.NFE_WARMUP_FORWARD_BACKWARD, S.NFE_CHAIN_FORWARD,
                  S.NFE_CHAIN_FORWARD_BACKWARD)}
            nfe.setdefault(label, {})[prob[0]] = (
                f"{m[S.NFE_CHAIN_FORWARD]:.0f} / {m[S.NFE_CHAIN_FORWARD_BACKWARD]:.0f}",
                f"{m[S.NFE_WARMUP_FORWARD]:.0f} / {m[S.NFE_WARMUP_FORWARD_BACKWARD]:.0f}")
    probs = sorted(problems)
    dims = sorted({p[0] for p in probs})
    varied_weights = len({p[3] for p in probs}) > 1
    print("| sampler | " + " | ".join(f"d={d}, d_y={dy}" + (f", sigma_max={sm:g}" if sm != 80 else "") +
                                     (f", weights={w}" if varied_weights else "")
                                     for d, dy, sm, w in probs) + " | " +
          " | ".join(f"NFE d={d} sampling (fwd / fwd+bwd) | warm-up" for d in dims) + " |")
    print("|---" * (1 + len(probs) + 2 * len(dims)) + "|")
    for label in order:
        row = [table[label].get(p, "—") for p in probs]
        nf = [x for d in dims for x in nfe.get(label, {}).get(d, ("—", "—"))]
        print(f"| {label} | " + " | ".join(row) + " | " + " | ".join(nf) + " |")
    if partial[0]:
        print("\n†: some chains (SMC: some runs) of the cell diverged; its metrics are over the samples of the others.")


if __name__ == "__main__":
    main()
