#!/usr/bin/python3
"""What psbench's loops add to their network calls, from one Google Benchmark JSON of psbench_bench
(benchmarks/overhead_bench.cpp): per batch size B and intra-op threads T, the wall time of one raw
forward+backward of Phi and of the denoiser, and the ratio to it of a noise-space Langevin step and of a
DPS step — the kernel alone and the whole Sampler::run per batched step (one thread). Issue 13's targets
are ratios <= 1.05. Also the time of two threads over one for the raw calls (< 1: two threads help), and
the paired benchmarks' ratios (raw calls and sampler steps alternating within each iteration).

usage: bench_ratios.py RESULTS.json    (prints a markdown table; medians where the JSON has repetitions)
"""
import json
import re
import sys

NAME = re.compile(r"^(BM_\w+)/batch:(\d+)(?:/threads:(\d+))?(?:/real_time)?$")
PAIRED = re.compile(r"^BM_Paired(\w+)/batch:(\d+)(?:/min_time:[\d.]+)?(?:/real_time)?$")


def per_call_ms(bench):
    """Milliseconds of wall time per batched call: the benchmarks count one item per call."""
    return 1000.0 / bench["items_per_second"]


def main():
    args = sys.argv[1:]
    if len(args) != 1:
        sys.exit(__doc__)
    try:
        with open(args[0]) as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        sys.exit(f"bench_ratios: {args[0]}: {e}")
    # With --benchmark_repetitions the median of the repetitions is used; otherwise the single run.
    runs, medians = {}, {}
    for b in data.get("benchmarks", []):
        m = NAME.match(b.get("run_name", b.get("name", "")))
        if not m or "items_per_second" not in b:
            continue
        key = (m.group(1), int(m.group(2)), int(m.group(3) or 1))
        if b.get("run_type", "iteration") == "iteration":
            runs.setdefault(key, per_call_ms(b))
        elif b.get("aggregate_name") == "median":
            medians[key] = per_call_ms(b)
    ms = {**runs, **medians}
    if not ms and not any(PAIRED.match(bm.get("run_name", bm.get("name", ""))) for bm in data.get("benchmarks", [])):
        sys.exit(f"bench_ratios: {args[0]}: no overhead benchmarks (BM_PhiForwardBackward ..., BM_Paired...) in it")

    if ms:
        print_table(ms)
    print_paired(data)
    return 0


def print_table(ms):
    def cell(name, b, t, raw):
        v = ms.get((name, b, t))
        if v is None:
            return "—"
        return f"{v:.2f} ({v / raw:.2f}x)" if raw else f"{v:.2f}"

    header = ("| B | T | Phi fwd+bwd ms | NL kernel step | NL run, per step | D fwd+bwd ms | DPS kernel step | "
              "DPS run, per step | Phi 2T/1T | D 2T/1T |")
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    for b in sorted({k[1] for k in ms}):
        for t in sorted({k[2] for k in ms if k[1] == b}):
            phi, den = ms.get(("BM_PhiForwardBackward", b, t)), ms.get(("BM_DenoiserForwardBackward", b, t))
            row = [str(b), str(t), f"{phi:.2f}" if phi else "—", cell("BM_NoiseLangevinKernelStep", b, t, phi),
                   cell("BM_NoiseLangevinRun", b, t, phi) if t == 1 else "—", f"{den:.2f}" if den else "—",
                   cell("BM_DpsKernelStep", b, t, den), cell("BM_DpsRun", b, t, den) if t == 1 else "—"]
            for name in ("BM_PhiForwardBackward", "BM_DenoiserForwardBackward"):
                one, two = ms.get((name, b, 1)), ms.get((name, b, 2))
                row.append(f"{two / one:.2f}" if (t == 1 and one and two) else "—")
            print("| " + " | ".join(row) + " |")


def print_paired(data):
    # Paired benchmarks: raw calls, kernel steps and whole runs alternate inside each iteration (drift cancels).
    paired = {}
    for bm in data.get("benchmarks", []):
        m = PAIRED.match(bm.get("run_name", bm.get("name", "")))
        if not m or "run_ratio" not in bm:
            continue
        if bm.get("run_type", "iteration") == "iteration" or bm.get("aggregate_name") == "median":
            key = (m.group(1), int(m.group(2)))
            if bm.get("run_type", "iteration") != "iteration" or key not in paired:
                paired[key] = bm
    if paired:
        print()
        print("| paired (one thread) | B | raw fwd+bwd ms | kernel step ms (ratio) | run per step ms (ratio) |")
        print("|---|---|---|---|---|")
        for (name, b), bm in sorted(paired.items()):
            print(f"| {name} | {b} | {bm['raw_ms']:.2f} | {bm['kernel_ms']:.2f} ({bm['kernel_ratio']:.2f}x) | "
                  f"{bm['run_ms']:.2f} ({bm['run_ratio']:.2f}x) |")


if __name__ == "__main__":
    sys.exit(main())
