#!/usr/bin/env python3
"""Compare two psbench results files cell by cell, bit for bit.

Usage: compare_results.py A.h5 B.h5 [--ignore PREFIX ...]

Every complete cell of A must be in B and vice versa, with the same status and bit-identical arrays
(metrics, NFE counts, diverged chains, ground truth, measurements, stored samples, metric arrays).
Wall times (time/) and peak memory (resources/) are measurements and are ignored; trace/ columns are compared where both files have
them and listed otherwise. Exit 0 when identical, 1 with one line per difference, 2 on bad input.
Run with /usr/bin/python3 (Debian's h5py and numpy).
"""
import argparse
import sys

try:
    import h5py
    import numpy as np
except ImportError as e:  # pragma: no cover
    print(f"compare_results.py: {e} (run with /usr/bin/python3)", file=sys.stderr)
    sys.exit(2)


def arrays(group):
    out = {}
    group.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def attr(group, key):
    v = group.attrs.get(key, "")
    return v.decode() if isinstance(v, bytes) else str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ignore", action="append", default=["time/", "resources/"], help="array name prefix to skip")
    args = ap.parse_args()
    diffs, notes = [], []
    try:
        fa, fb = h5py.File(args.a, "r"), h5py.File(args.b, "r")
    except OSError as e:
        print(f"compare_results.py: {e}", file=sys.stderr)
        return 2
    ca = {k for k in fa["cells"] if not k.startswith(".partial-")}
    cb = {k for k in fb["cells"] if not k.startswith(".partial-")}
    for k in sorted(ca ^ cb):
        diffs.append(f"cell {k}: only in {args.a if k in ca else args.b}")
    for key in sorted(ca & cb):
        ga, gb = fa["cells"][key], fb["cells"][key]
        if attr(ga, "status") != attr(gb, "status"):
            diffs.append(f"cell {key}: status {attr(ga, 'status')} vs {attr(gb, 'status')}")
        if attr(ga, "message") != attr(gb, "message"):
            notes.append(f"cell {key}: message differs: {attr(ga, 'message')!r} vs {attr(gb, 'message')!r}")
        xa, xb = arrays(ga), arrays(gb)
        for name in sorted(set(xa) | set(xb)):
            if any(name.startswith(p) for p in args.ignore):
                continue
            trace = name.startswith("trace/")
            if name not in xa or name not in xb:
                (notes if trace else diffs).append(f"cell {key}: {name} only in {args.a if name in xa else args.b}")
                continue
            a, b = xa[name], xb[name]
            same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
            if not same:
                what = f"cell {key}: {name} differs"
                if a.shape == b.shape and a.dtype.kind in "fiu":
                    what += f" (max |diff| {np.max(np.abs(a.astype(float) - b.astype(float))):.3g})"
                (notes if trace else diffs).append(what)
    for n in notes:
        print("note:", n)
    for d in diffs:
        print("DIFF:", d)
    print(f"{len(ca & cb)} common cells, {len(diffs)} differences" + (f", {len(notes)} notes" if notes else ""))
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
