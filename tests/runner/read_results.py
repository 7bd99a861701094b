#!/usr/bin/python3
"""Reads a psbench results file with h5py (Debian's python3-h5py) and checks its layout.

usage: read_results.py RESULTS.h5

Every schema name comes from tools/psbench_schema.py (the mirror of src/store/schema.h).
"""
import pathlib
import sys

import h5py
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))
import psbench_schema as S  # noqa: E402


def main(path):
    with h5py.File(path, "r") as f:
        cells = f[S.CELLS_GROUP]
        keys = [k for k in cells.keys() if not k.startswith(".")]
        assert keys, "no cells"
        statuses = {}
        for key in keys:
            cell = cells[key]
            attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in cell.attrs.items()}
            for name in (S.CONFIG, S.STATUS, S.PSBENCH_VERSION, S.GIT_REVISION, S.LIBTORCH_VERSION, S.THREADS,
                         S.DEVICE, S.BUILD_TYPE):
                assert name in attrs, f"{key}: missing attribute {name}"
            assert "sampler:" in attrs[S.CONFIG], attrs[S.CONFIG]
            assert attrs[S.STATUS] in S.STATUSES, (key, attrs[S.STATUS])
            m = cell[S.X_TRUE].shape[0]
            assert cell[S.Y].shape[0] == m
            for group in (S.NFE_GROUP, S.TIME_GROUP):
                for name, ds in cell[S.group(group)].items():
                    assert ds.shape == (m,), (key, group, name, ds.shape)
                    assert np.all(np.isfinite(ds[()]))
            # What the cell cost: one value each per cell.
            if S.group(S.RESOURCES_GROUP) in cell:
                for name, ds in cell[S.group(S.RESOURCES_GROUP)].items():
                    assert ds.shape == (1,), (key, name, ds.shape)
                    assert np.all(np.isfinite(ds[()])) and ds[()][0] >= 0, (key, name)
            metrics = S.group(S.METRICS_GROUP)
            if attrs[S.STATUS] == S.STATUS_OK:
                for name, ds in cell[metrics].items():
                    values = ds[()]
                    per_set = attrs.get(S.METRIC_LEVEL_PREFIX + name) == S.LEVEL_PER_SET
                    assert values.shape == ((1,) if per_set else (m,)), (key, name)
                    # +inf is legitimate (PSNR of an exact match); NaN never is.
                    assert not np.any(np.isnan(values)), (key, name, values)
            else:
                assert metrics not in cell, f"{key}: {attrs[S.STATUS]} cell carries metrics"
            trace = S.group(S.TRACE_GROUP)
            if trace in cell:
                for name in cell[trace]:
                    for mi, ds in cell[trace][name].items():
                        assert np.all(np.isfinite(ds[()])), (key, name, mi)
            statuses[key] = attrs[S.STATUS]
        print(f"{path}: {len(keys)} cells read with h5py {h5py.__version__}: {sorted(statuses.values())}")
        assert S.STATUS_OK in statuses.values()


if __name__ == "__main__":
    main(sys.argv[1])
