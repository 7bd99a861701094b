#!/usr/bin/python3
"""Pick each sampler's tuned setting from a tuning sweep (experiments/fashion/tune_fidelity.yaml) and,
optionally, write the Fashion-MNIST table experiments that use exactly those settings.

Rule (docs/TUNING.md): per task and sampler family (sampler name, x0 estimate, consistency steps of the
prior), among the swept settings whose cell finished `ok` on every training image, take the one with the
highest mean per-sample PSNR; a family whose settings all diverged or failed has no pick and is reported,
and a pick at either end of its grid is flagged (the best value may lie outside the sweep).

Usage:
  /usr/bin/python3 tools/pick_tuned.py results/fashion_tune_fidelity.h5                 # markdown table
  /usr/bin/python3 tools/pick_tuned.py results/fashion_tune_fidelity.h5 --write experiments/fashion
Reads the file with h5py (Debian's python3-h5py, python3-yaml). --write refuses a task whose sweep is
incomplete (every family of the tuning file must have all its settings stored) and says which.
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

# Options that never distinguish a tuned setting (execution only).
IGNORED = {"batch_size", "divergence_threshold"}
# The swept, step-size-like option of each sampler (ALMC's kappa moves with delta: see the tuning file).
SWEPT = {"noise_langevin": ("step_size",), "noise_mala": ("step_size",), "noise_pcn": ("beta",),
         "dps": ("step_scale",), "lgd": ("step_scale",), "almc": ("delta", "kappa"), "daps": ("langevin_lr",),
         "ddrm": ("eta",), "ddnm": ("eta",), "ddnm_plus": ("eta",), "diffpir": ("lambda",), "pnp_dm": ("rho_min",),
         "reddiff": ("lambda",),
         # no step-size-like option: one setting, the paper's
         "pigdm": (), "unconditional": (), "pseudo_inverse": ()}


def family(sampler, prior):
    """(sampler name, with -dm/-cm for DPS and LGD by their x0 estimate; consistency steps of the prior)"""
    name = sampler["name"]
    if name in ("dps", "lgd"):
        name += "-cm" if sampler.get("x0_estimate") == "consistency" else "-dm"
    return (name, int(prior.get("steps", 1)))


def load(path):
    """{task: {family: [ (setting dict, full sampler config, psnr mean, psnr se, status, extra) ]}}"""
    out = collections.OrderedDict()
    tasks = {}
    with h5py.File(path, "r") as f:
        for _, c in S.cells_in_order(f):
            cfg = yaml.safe_load(c.attrs[S.CONFIG])
            t = cfg["task"]["name"]
            tasks[t] = cfg["task"]
            fam = family(cfg["sampler"], cfg["prior"])
            s = cfg["sampler"]
            setting = {k: s[k] for k in SWEPT[s["name"]]}
            status = c.attrs[S.STATUS]
            row = {"setting": setting, "sampler": {k: v for k, v in s.items() if k not in IGNORED},
                   "prior": cfg["prior"], "outcome": status}
            if status == S.STATUS_OK:
                for m in ("psnr", "psnr@posterior_mean", "data_consistency"):
                    if S.METRICS_GROUP + m in c:
                        v = np.asarray(c[S.METRICS_GROUP + m], dtype=float)
                        row[m] = (v.mean(), v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan"))
                # Forward-only and forward+backward evaluations are different costs: never one sum.
                row["nfe"] = {n: float(np.asarray(c[n]).mean()) for n in
                              (S.NFE_WARMUP_FORWARD, S.NFE_WARMUP_FORWARD_BACKWARD, S.NFE_CHAIN_FORWARD,
                               S.NFE_CHAIN_FORWARD_BACKWARD)}
            else:
                row["why"] = c.attrs.get(S.MESSAGE, "")
            out.setdefault(t, collections.OrderedDict()).setdefault(fam, []).append(row)
    # Each family's settings in increasing order of the swept value (cells added to a grid later carry later
    # cell indices), so that the first and last rows are the grid's edges.
    for fams in out.values():
        for rows in fams.values():
            rows.sort(key=lambda r: float(next(iter(r["setting"].values()), 0.0)))
    return out, tasks


def pick(rows):
    ok = [r for r in rows if r["outcome"] == S.STATUS_OK and "psnr" in r]
    return max(ok, key=lambda r: r["psnr"][0]) if ok else None


def fmt(ms):
    return f"{ms[0]:.2f} ± {ms[1]:.2f}" if ms else "—"


def nfe_pair(row, phase):
    """'fwd / fwd+bwd' network evaluations per image of one phase (warmup or chain), or — without a value."""
    nfe = row.get("nfe")
    if not nfe:
        return "—"
    fwd, both = ((S.NFE_WARMUP_FORWARD, S.NFE_WARMUP_FORWARD_BACKWARD) if phase == "warmup"
                 else (S.NFE_CHAIN_FORWARD, S.NFE_CHAIN_FORWARD_BACKWARD))
    return f"{nfe[fwd]:.0f} / {nfe[both]:.0f}"


def print_tables(data):
    for t, fams in data.items():
        print(f"### {t}\n")
        print("| sampler (consistency steps) | setting | status | PSNR | PSNR of the posterior mean | data consistency "
              "| NFE warm-up (fwd / fwd+bwd) | NFE sampling (fwd / fwd+bwd) |")
        print("|---|---|---|---|---|---|---|---|")
        for fam, rows in fams.items():
            best = pick(rows)
            edge = best is not None and len(rows) > 1 and (best is rows[0] or best is rows[-1])
            for r in rows:
                mark = (" **← (edge of the grid)**" if edge else " **←**") if r is best else ""
                setting = ", ".join(f"{k}={v}" for k, v in r["setting"].items())
                status = r["outcome"] if r["outcome"] == S.STATUS_OK else f"{r['outcome']}: {r.get('why', '')[:80]}"
                print(f"| {fam[0]} ({fam[1]}) | {setting}{mark} | {status} | {fmt(r.get('psnr'))} | "
                      f"{fmt(r.get('psnr@posterior_mean'))} | {fmt(r.get('data_consistency'))} | {nfe_pair(r, 'warmup')} | "
                      f"{nfe_pair(r, 'chain')} |")
        print()


def write_experiments(data, tasks, tune_file, out_dir):
    with open(tune_file) as fh:
        tune = yaml.safe_load(fh)
    # Settings each family must have stored, per task: a grid with its own `tasks:` (e.g. the samplers that need
    # a linear operator's SVD) counts only for those.
    expected = collections.defaultdict(collections.Counter)
    for block in tune["grids"]:
        block_tasks = [bt["name"] for bt in block.get("tasks", tune.get("tasks", []))]
        for p in block["priors"]:
            for s in block["samplers"]:
                s = s if isinstance(s, dict) else {"name": s}
                n = 1
                for v in s.values():
                    if isinstance(v, list):
                        n *= len(v)
                for bt in block_tasks:
                    expected[bt][family(s, p)] += n
    complete, missing = [], []
    for t, fams in data.items():
        have = {fam: len(rows) for fam, rows in fams.items()}
        lacking = [f"{f[0]}({f[1]})" for f, n in expected[t].items() if have.get(f, 0) < n]
        (missing if lacking else complete).append((t, lacking))
    for t in tasks:
        if t not in data:
            missing.append((t, ["all"]))
    grids = []
    picked_by_task = {}
    for t, _ in complete:
        by_steps = collections.defaultdict(list)
        for fam, rows in data[t].items():
            best = pick(rows)
            if best is None:
                print(f"note: {t}: {fam[0]} ({fam[1]}) has no setting that finished ok; left out of the tables",
                      file=sys.stderr)
                continue
            if len(rows) > 1 and (best is rows[0] or best is rows[-1]):
                print(f"edge pick: {t}: {fam[0]} ({fam[1]}) picked {best['setting']} at the edge of its grid: the best "
                      "value may lie outside it; widen the sweep", file=sys.stderr)
            by_steps[fam[1]].append(best["sampler"])
            picked_by_task.setdefault(t, []).append((fam, best["sampler"]))
        for steps, samplers in sorted(by_steps.items()):
            grids.append({"tasks": [dict(tasks[t])], "priors": [{"name": "consistency", "steps": steps}],
                          "samplers": samplers})
        if tasks[t]["name"] != "phase_retrieval":
            grids.append({"tasks": [dict(tasks[t])], "priors": [{"name": "consistency", "steps": 1}],
                          "samplers": ["pseudo_inverse"]})
    if missing:
        print("tuning incomplete for: " + "; ".join(f"{t} ({', '.join(l)})" for t, l in missing), file=sys.stderr)
    if not complete:
        print("no task has a complete sweep: nothing written", file=sys.stderr)
        return 1
    metrics = ["psnr", "ssim", "perceptual_fmnist_cnn", "data_consistency",
               {"name": "fd_fmnist_cnn", "reference": "fashion_mnist_test"}]
    tables = {
        "fidelity": dict(measurements=100, samples=10, metrics=metrics + ["ess_bulk", "ess_tail", "rhat", "iat"]),
        "diversity": dict(measurements=20, samples=25,
                          metrics=metrics + ["diversity_perceptual_fmnist_cnn", "pixel_std", "vendi_fmnist_cnn",
                                             "diversity_score_fmnist_cnn"]),
    }
    picked = {t: dict(picks) for t, picks in picked_by_task.items()}
    for name, t in tables.items():
        ex = {"name": f"fashion_{name}", "seed": 0, "measurements": t["measurements"],
              "samples_per_measurement": t["samples"], "metrics": t["metrics"],
              "datasets": [{"name": "fashion_mnist", "split": "test"}],
              "grids": grids + (paper_diversity_grids(picked, tasks) if name == "diversity" else [])}
        path = os.path.join(out_dir, f"{name}.yaml")
        with open(path, "w") as fh:
            fh.write(f"# GENERATED by tools/pick_tuned.py from {os.path.basename(tune_file)}'s results: the settings\n"
                     "# are the tuned ones (rule in docs/TUNING.md), on the TEST split. Regenerate, do not edit.\n")
            if missing:
                fh.write("# Tasks left out (their tuning sweep was incomplete): " +
                         ", ".join(t for t, _ in missing) + "\n")
            yaml.safe_dump(ex, fh, sort_keys=False, default_flow_style=None, width=110)
        print(f"wrote {path}", file=sys.stderr)
    if "sr_avgpool" in picked:
        write_nfe_table(picked["sr_avgpool"], tasks["sr_avgpool"], tune_file, out_dir)
    return 0


# The paper uses a larger chain step for its diversity table than for its fidelity table (1e-5 and 2e-4 on
# LSUN-Bedroom, experiments/paper/lsun_bedroom_*.yaml). The tuning rule (highest per-sample PSNR) picks steps
# at which the chain barely moves, so the diversity table also shows noise-space Langevin at the paper's
# diversity step: what its diversity costs in fidelity. Labelled by its tau; not a tuned row, and only this
# sampler gets it (it is the method whose diversity claim the table tests).
PAPER_DIVERSITY_STEP = 2e-4


def paper_diversity_grids(picked, tasks):
    grids = []
    for t, picks in picked.items():
        tuned = picks.get(("noise_langevin", 1))
        if tuned is None or tuned.get("step_size") == PAPER_DIVERSITY_STEP:
            continue
        grids.append({"tasks": [dict(tasks[t])], "priors": [{"name": "consistency", "steps": 1}],
                      "samplers": [dict(tuned, step_size=PAPER_DIVERSITY_STEP)]})
    return grids


def write_nfe_table(picks, task, tune_file, out_dir):
    """fidelity_vs_nfe.yaml: the SR x4 picks (one-step consistency model) at equal NFE budgets per sample."""
    samplers = [cfg for (name, steps), cfg in picks.items() if steps == 1]
    ex = {"name": "fashion_fidelity_vs_nfe", "seed": 0, "measurements": 25, "samples_per_measurement": 10,
          "budget_mode": "set", "nfe_budget_per": "sample", "nfe_budget": [25, 50, 100, 200, 500],
          "metrics": ["psnr", "ssim", "data_consistency"], "tasks": [dict(task)],
          "datasets": [{"name": "fashion_mnist", "split": "test"}], "priors": [{"name": "consistency", "steps": 1}],
          "samplers": samplers}
    path = os.path.join(out_dir, "fidelity_vs_nfe.yaml")
    with open(path, "w") as fh:
        fh.write(f"""# GENERATED by tools/pick_tuned.py from {os.path.basename(tune_file)}'s results. Regenerate, do not edit.
# Fidelity against NFE: the paper claims high fidelity "even under a limited number of function
# evaluations". Every sampler keeps its tuned SR x4 setting (docs/TUNING.md) and fits its own schedule to
# the same network-evaluation budget per posterior sample (budget_mode: set; rules in README "NFE budgets"
# and `psbench list`): DPS-DM, LGD: steps = B; DPS-CM: floor(B / 2) steps (one consistency and one
# denoiser call each); DAPS: B levels; ALMC: B annealing steps; noise-space samplers: per measurement 10 B
# evaluations = the chain's, the rest warm start. Counted NFE (forward and forward+backward, warm-up
# included) equal the plan. SR x4 (4x4 average pooling), sigma_y 0.1, 25 test images, K = 10.
#   build/psbench run experiments/fashion/fidelity_vs_nfe.yaml --dry-run   # cells and planned NFE
""")
        yaml.safe_dump(ex, fh, sort_keys=False, default_flow_style=None, width=110)
    print(f"wrote {path}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--write", metavar="DIR", help="write DIR/fidelity.yaml and DIR/diversity.yaml")
    ap.add_argument("--tune-file", default="experiments/fashion/tune_fidelity.yaml")
    args = ap.parse_args()
    data, tasks = load(args.results)
    print_tables(data)
    if args.write:
        return write_experiments(data, tasks, args.tune_file, args.write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
