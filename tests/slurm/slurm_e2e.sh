#!/bin/sh
# End to end on a real single-node Slurm (README "Sweeps at scale"): installs slurm-wlm and munge where
# missing, starts munged, slurmctld and slurmd with a private configuration (SLURM_CONF in a temporary
# directory; /etc/slurm is not touched), submits a 3-shard job array with `psbench slurm --submit`,
# requeues one running array task half-way (as a preemption would), waits for the merge job, checks that
# the merged file equals an unsharded run cell for cell and metric for metric, and stops the daemons.
# Needs root (apt-get, daemons). Not part of `make test` / .ci/run. Exit 0 pass, 1 fail, 77 skipped (Slurm
# cannot be installed or started here, said loudly).
#   sudo tests/slurm/slurm_e2e.sh [build/psbench]
set -eu
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PSBENCH=$(readlink -f "${1:-$SRC/build/psbench}")
skip() { echo "slurm_e2e: SKIPPED — $*" >&2; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root to install packages and start the daemons"
[ -x "$PSBENCH" ] || { echo "slurm_e2e: no psbench binary at $PSBENCH" >&2; exit 1; }

missing=""
for p in slurm-wlm munge; do
  dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "slurm_e2e: installing$missing"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
    skip "apt-get could not install$missing"
fi

WORK=$(mktemp -d /tmp/psbench-slurm-XXXXXX)
export SLURM_CONF="$WORK/slurm.conf"
cleanup() {
  scontrol shutdown >/dev/null 2>&1 || true
  sleep 1
  for f in "$WORK/slurmctld.pid" "$WORK/slurmd.pid"; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  [ -n "${MUNGE_STARTED:-}" ] && [ -f /run/munge/munged.pid ] && kill "$(cat /run/munge/munged.pid)" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

# munge: a key if there is none, and the daemon as the munge user.
if [ ! -s /etc/munge/munge.key ]; then
  dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
fi
mkdir -p /run/munge && chown munge:munge /run/munge
if ! munge -n >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged || skip "munged did not start"
  MUNGE_STARTED=1
fi

CPUS=$(nproc)
MEM=$(awk '/MemTotal/ {print int($2 / 1024 * 0.8)}' /proc/meminfo)
mkdir -p "$WORK/state" "$WORK/spool"
cat > "$SLURM_CONF" <<CONF
ClusterName=psbench
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/slurmctld.log
SlurmdLogFile=$WORK/slurmd.log
ReturnToService=2
NodeName=localhost CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld -f "$SLURM_CONF" || skip "slurmctld did not start (see $WORK/slurmctld.log)"
slurmd -N localhost -f "$SLURM_CONF" || skip "slurmd did not start (see $WORK/slurmd.log)"
i=0
until sinfo -h -o %T 2>/dev/null | grep -q idle; do
  i=$((i + 1)); [ $i -lt 60 ] || skip "the node never became idle: $(sinfo 2>&1 | tr '\n' ' ')"
  sleep 1
done
echo "slurm_e2e: single-node Slurm up ($CPUS CPUs) in $WORK"

# The experiment: 12 Gaussian-mixture cells (a few seconds each shard), run unsharded for the reference.
cat > "$WORK/e2e.yaml" <<'YAML'
name: slurm_e2e
seed: 3
measurements: 4
samples_per_measurement: 8
metrics: [mse_to_truth, posterior_mean_rmse, sliced_wasserstein]
tasks:
  - {name: gmm_lowrank, d_y: [1, 2, 3], sigma_y: 0.2}
priors:
  - {name: gmm, dim: 8, ode_steps: 4}
samplers:
  - exact
  - {name: noise_langevin, chains: 4, warm_start_steps: 40, burn_in: 40, step_size: [1.0e-3, 3.0e-3]}
  - {name: noise_mala, chains: 4, warm_start_steps: 40, burn_in: 40}
YAML
cd "$WORK"
"$PSBENCH" run e2e.yaml --out reference.h5 --quiet
"$PSBENCH" slurm e2e.yaml --shards 3 --submit | tee submit.out
array=$(sed -n 's/^array job \([0-9]*\).*/\1/p' submit.out)
[ -n "$array" ] || { echo "slurm_e2e: no array job id in: $(cat submit.out)" >&2; exit 1; }

# Preempt one array task after its first finished cell: requeue it; it must resume, not restart.
requeued=""
i=0
while [ $i -lt 600 ]; do
  if [ -z "$requeued" ] && grep -q ": ok (" results/slurm_e2e.slurm/shard-2.log 2>/dev/null; then
    if scontrol requeue "${array}_2" 2>/dev/null; then requeued=yes; echo "slurm_e2e: requeued ${array}_2 mid-shard"; fi
  fi
  [ -n "$(squeue -h 2>/dev/null)" ] || break
  i=$((i + 1)); sleep 0.5
done
[ -z "$(squeue -h)" ] || { echo "slurm_e2e: jobs still queued after 300 s: $(squeue)" >&2; exit 1; }
cat results/slurm_e2e.slurm/merge.log
[ -f results/slurm_e2e.h5 ] || { echo "slurm_e2e: no merged file" >&2; exit 1; }

# Same cells and, cell for cell, the same results as the unsharded run.
/usr/bin/python3 - reference.h5 results/slurm_e2e.h5 "$SRC/tools" <<'PY'
import sys
import h5py
import numpy as np
sys.path.insert(0, sys.argv[3])
import psbench_schema as S
a, b = (h5py.File(p, "r")[S.CELLS_GROUP] for p in sys.argv[1:3])
assert sorted(a) == sorted(b), f"cells differ: {sorted(set(a) ^ set(b))}"
n = 0
group = S.METRICS_GROUP.rstrip("/")
for key in a:
    assert a[key].attrs[S.STATUS] == b[key].attrs[S.STATUS], f"{key}: status differs"
    names = sorted(a[key][group]) if group in a[key] else []
    assert names == (sorted(b[key][group]) if group in b[key] else []), f"{key}: metric names differ"
    for name in names:
        x, y = np.asarray(a[key][S.METRICS_GROUP + name]), np.asarray(b[key][S.METRICS_GROUP + name])
        assert np.array_equal(x, y), f"{key} {name}: {x} vs {y}"
        n += 1
print(f"slurm_e2e: merged file equals the unsharded run: {len(a)} cells, {n} metric arrays")
PY
[ -n "$requeued" ] || echo "slurm_e2e: note: no array task was requeued (all finished before the first cell was seen)"
echo "slurm_e2e: PASSED"
