"""The psbench results schema for Python readers: the HDF5 group, dataset and attribute names of a results
file and the cell status values.

Mirrors src/store/schema.h constant by constant (kFooBar there is FOO_BAR here); tests/schema_check.py
fails when the two differ or when a Python reader spells a schema name itself instead of importing it.
"""

CELLS_GROUP = "/cells"
PARTIAL_PREFIX = ".partial-"
MEASUREMENTS_GROUP = "/measurements"
RESULTS_SCHEMA = "results_schema"
RESULTS_SCHEMA_VERSION = "psbench-results-1"
EXPERIMENT = "experiment"
EXPERIMENT_FILE = "experiment_file"
EXPERIMENT_HASH = "experiment_hash"
EXPERIMENT_CELLS = "experiment_cells"
SHARD = "shard"
MERGED_FROM = "merged_from"
X_TRUE = "x_true"
Y = "y"
METRICS_GROUP = "metrics/"
METRIC_ARRAYS_GROUP = "metric_arrays/"
METRIC_SPREAD_GROUP = "metric_spread/"
NFE_GROUP = "nfe/"
NFE_WARMUP_FORWARD = "nfe/warmup_forward"
NFE_WARMUP_FORWARD_BACKWARD = "nfe/warmup_forward_backward"
NFE_CHAIN_FORWARD = "nfe/chain_forward"
NFE_CHAIN_FORWARD_BACKWARD = "nfe/chain_forward_backward"
TIME_GROUP = "time/"
TIME_WARMUP_SECONDS = "time/warmup_seconds"
TIME_SAMPLING_SECONDS = "time/sampling_seconds"
RESOURCES_GROUP = "resources/"
RESOURCES_SCORING_SECONDS = "resources/scoring_seconds"
RESOURCES_CELL_SECONDS = "resources/cell_seconds"
RESOURCES_PEAK_RSS_BYTES = "resources/peak_rss_bytes"
RESOURCES_PEAK_DEVICE_BYTES = "resources/peak_device_bytes"
CHAINS_DIVERGED = "chains/diverged"
SCORED_MEASUREMENTS = "scored_measurements"
TRACE_GROUP = "trace/"
SAMPLES_GROUP = "samples/"
CONFIG = "config"
CANONICAL = "canonical"
STATUS = "status"
MESSAGE = "message"
CHAINS = "chains"
PLANNED_NFE = "planned_nfe"
BUDGET_RULE = "budget_rule"
BUDGET_SAMPLER = "budget_sampler"
CELL_INDEX = "cell_index"
METRICS_SKIPPED = "metrics_skipped"
RESCORED_BY_GIT_REVISION = "rescored_by_git_revision"
PSBENCH_VERSION = "psbench_version"
GIT_REVISION = "git_revision"
LIBTORCH_VERSION = "libtorch_version"
THREADS = "threads"
INTEROP_THREADS = "interop_threads"
DEVICE = "device"
BUILD_TYPE = "build_type"
MALLOC = "malloc"
BLAS = "blas"
PRIOR_PREFIX = "prior:"
METRIC_DIRECTION_PREFIX = "metric:"
METRIC_LEVEL_PREFIX = "metric_level:"
METRIC_PROVENANCE_PREFIX = "metric_"
METRIC_NETWORK_PREFIX = "metric_network:"
METRIC_WEIGHTS_PREFIX = "metric_weights:"
METRIC_WEIGHTS_SHA256_PREFIX = "metric_weights_sha256:"
WARNING_PREFIX = "warning:"
AT_POSTERIOR_MEAN = "@posterior_mean"
AT_BEST_OF_K = "@best_of_k"
LOWER_IS_BETTER = "lower_is_better"
HIGHER_IS_BETTER = "higher_is_better"
TARGET_PREFIX = "target:"
LEVEL_PER_SAMPLE = "per_sample"
LEVEL_PER_MEASUREMENT = "per_measurement"
LEVEL_PER_SET = "per_set"
STATUS_OK = "ok"
STATUS_DIVERGED = "diverged"
STATUS_FAILED = "failed"

# The cell status values, as src/store/schema.h's CellStatus.
STATUSES = (STATUS_OK, STATUS_DIVERGED, STATUS_FAILED)


def group(prefix):
    """The HDF5 group name of a "name/" prefix constant: group(METRICS_GROUP) == "metrics"."""
    return prefix.rstrip("/")


def measurement_name(m):
    """Per-measurement dataset name inside trace/<name>/, samples/ and metric_arrays/...: "m0000"."""
    return f"m{m:04d}"



class SchemaMismatch(ValueError):
    """A results file written with another layout (RESULTS_SCHEMA); the message is one line naming it."""


def cells_in_order(h5file):
    """(key, cell group) of a results file opened with h5py, in experiment order (the cell_index attribute).
    Raises SchemaMismatch for a file of another results schema."""
    mismatch = schema_mismatch(h5file.filename, h5file.attrs)
    if mismatch:
        raise SchemaMismatch(mismatch)
    cells = h5file[CELLS_GROUP]
    keys = sorted(cells.keys(), key=lambda k: int(cells[k].attrs.get(CELL_INDEX, 0)))
    return [(k, cells[k]) for k in keys]


def schema_mismatch(path, file_attrs):
    """None when a results file's layout is the one this module describes, else the one-line reason.
    `file_attrs` are the file's root attributes (h5py's f.attrs); a file without RESULTS_SCHEMA predates
    the attribute and has this layout."""
    def text(v):
        return v.decode() if isinstance(v, bytes) else str(v)
    if RESULTS_SCHEMA not in file_attrs:
        return None
    found = text(file_attrs[RESULTS_SCHEMA])
    if found == RESULTS_SCHEMA_VERSION:
        return None
    writer = text(file_attrs[PSBENCH_VERSION]) if PSBENCH_VERSION in file_attrs else "an unknown version"
    return (f"{path}: results schema '{found}' (written by psbench {writer}); this psbench reads "
            f"'{RESULTS_SCHEMA_VERSION}': read it with the psbench that wrote it")
