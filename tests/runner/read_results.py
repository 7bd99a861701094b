#!/usr/bin/python3
"""Reads a psbench results file with h5py (Debian's python3-h5py) and checks its layout.

usage: read_results.py RESULTS.h5
"""
import sys

import h5py
import numpy as np


def main(path):
    with h5py.File(path, "r") as f:
        cells = f["cells"]
        keys = [k for k in cells.keys() if not k.startswith(".")]
        assert keys, "no cells"
        statuses = {}
        for key in keys:
            cell = cells[key]
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in cell.attrs.items()}
            for name in ("config", "status", "psbench_version", "git_revision", "libtorch_version", "threads",
                         "device", "build_type"):
                assert name in attrs, f"{key}: missing attribute {name}"
            assert "sampler:" in attrs["config"], attrs["config"]
            m = cell["x_true"].shape[0]
            assert cell["y"].shape[0] == m
            for group in ("nfe", "time"):
                for name, ds in cell[group].items():
                    assert ds.shape == (m,), (key, group, name, ds.shape)
                    assert np.all(np.isfinite(ds[()]))
            if attrs["status"] == "ok":
                for name, ds in cell["metrics"].items():
                    values = ds[()]
                    per_set = attrs.get("metric_level:" + name) == "per_set"
                    assert values.shape == ((1,) if per_set else (m,)), (key, name)
                    # +inf is legitimate (PSNR of an exact match); NaN never is.
                    assert not np.any(np.isnan(values)), (key, name, values)
            else:
                assert "metrics" not in cell, f"{key}: {attrs['status']} cell carries metrics"
            if "trace" in cell:
                for name in cell["trace"]:
                    for mi, ds in cell["trace"][name].items():
                        assert np.all(np.isfinite(ds[()])), (key, name, mi)
            statuses[key] = attrs["status"]
        print(f"{path}: {len(keys)} cells read with h5py {h5py.__version__}: {sorted(statuses.values())}")
        assert "ok" in statuses.values()


if __name__ == "__main__":
    main(sys.argv[1])
