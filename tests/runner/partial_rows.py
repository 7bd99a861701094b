#!/usr/bin/python3
"""The Python readers on a diverged cell scored over part of its measurements (experiments/tests/
partial_divergence.yaml): tools/psbench_results.py puts each value on the row of the measurement that
scored_measurements names and NaN on the measurements that lost every chain; tools/fashion_table.py shows
the values with "scored/all †".

usage: partial_rows.py PSBENCH OUT_DIR
"""
import os
import subprocess
import sys

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tools"))
import psbench_results as R  # noqa: E402
import psbench_schema as S  # noqa: E402


def main():
    psbench, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "partial.h5")
    subprocess.run([psbench, "run", "experiments/tests/partial_divergence.yaml", "--out", path, "--fresh",
                    "--threads", "1"], check=True, stdout=subprocess.DEVNULL)
    with h5py.File(path, "r") as f:
        (key, cell), = S.cells_in_order(f)
        lost = np.asarray(cell[S.CHAINS_DIVERGED][()]) == int(cell.attrs[S.CHAINS])
        scored = np.asarray(cell[S.SCORED_MEASUREMENTS][()])
        stored = np.asarray(cell[S.METRICS_GROUP + "mse_to_truth"][()])
    assert 0 < lost.sum() < len(lost), f"the experiment should lose some measurements, not {lost.sum()}"
    assert list(scored) == list(np.flatnonzero(~lost)), (scored, lost)
    df = R.load(path)
    values = df["mse_to_truth"].to_numpy()
    assert np.isnan(values[lost]).all(), values
    assert np.array_equal(values[~lost], stored), (values, stored)
    agg = R.aggregate(df, "mse_to_truth")
    assert int(agg["n"].iloc[0]) == len(scored)
    table = subprocess.run([sys.executable, os.path.join(HERE, "..", "..", "tools", "fashion_table.py"), path],
                           check=True, capture_output=True, text=True).stdout
    mark = f"| {len(scored)}/{len(lost)} † |"
    assert mark in table, table
    print(f"ok: {len(scored)} of {len(lost)} measurements scored, rows and table agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
