#!/usr/bin/python3
"""Bad inputs across the psbench CLI (issue 18): every case must exit with code 2 and a one-line message that
names the file and the offending key or value, within a time limit, without a crash, without leaving a partial
output file and without touching an existing results file.

Usage: bad_inputs.py PSBENCH_BINARY WORK_DIR   (run from the repository root; exit 0 when every case holds)

A case is (name, argv, files to create, words the message must contain). Files are written under WORK_DIR;
"{D}" in arguments and file contents is WORK_DIR. The experiment YAML cases derive from one small valid
experiment (BASE) with one thing broken each.
"""
import hashlib
import os
import shutil
import subprocess
import sys

BASE = """name: bad_inputs
seed: 5
measurements: 2
samples_per_measurement: 4
metrics: [mse_to_truth]
tasks:
  - {name: gmm_lowrank, d_y: 2, sigma_y: 0.3}
priors:
  - {name: gmm, dim: 8, ode_steps: 4}
samplers:
  - exact
  - {name: noise_langevin, chains: 2, warm_start_steps: 5, step_size: 0.001}
"""

CRASH_WORDS = ("terminate called", "Segmentation fault", "Aborted", "core dumped", "Traceback", "what():",
               "std::", "c10::Error", "Exception raised from")


def yaml_with(old, new):
    assert old in BASE, old
    return BASE.replace(old, new)


def cases(d):
    """(name, argv, {relative path: text or bytes}, [words the message must contain])"""
    c = []
    run = lambda f, *extra: ["run", f"{d}/{f}", "--dry-run", *extra]
    # --- experiment YAML: syntax, shape, types, values ---------------------------------------------------
    c.append(("missing experiment file", run("none.yaml"), {}, ["none.yaml", "cannot open"]))
    c.append(("empty experiment file", run("empty.yaml"), {"empty.yaml": ""}, ["empty.yaml"]))
    c.append(("experiment is a list", run("list.yaml"), {"list.yaml": "- a\n- b\n"}, ["list.yaml"]))
    c.append(("experiment is a scalar", run("scalar.yaml"), {"scalar.yaml": "42\n"}, ["scalar.yaml"]))
    c.append(("YAML syntax error", run("syntax.yaml"), {"syntax.yaml": "measurements: [\n"}, ["syntax.yaml", "2:"]))
    c.append(("tab-indented YAML", run("tab.yaml"), {"tab.yaml": "tasks:\n\t- x\n"}, ["tab.yaml"]))
    c.append(("binary junk as experiment", run("junk.yaml"), {"junk.yaml": bytes(range(256)) * 4}, ["junk.yaml"]))
    c.append(("directory as experiment", run("adir"), {"adir/keep": ""}, ["adir"]))
    c.append(("measurements of the wrong type", run("t1.yaml"),
              {"t1.yaml": yaml_with("measurements: 2", "measurements: ten")}, ["t1.yaml", "measurements", "ten"]))
    c.append(("measurements NaN", run("t2.yaml"),
              {"t2.yaml": yaml_with("measurements: 2", "measurements: .nan")}, ["t2.yaml", "measurements"]))
    c.append(("measurements negative", run("t3.yaml"),
              {"t3.yaml": yaml_with("measurements: 2", "measurements: -3")}, ["t3.yaml", "measurements", "-3"]))
    c.append(("measurements beyond 64 bits", run("t4.yaml"),
              {"t4.yaml": yaml_with("measurements: 2", "measurements: 99999999999999999999999")},
              ["t4.yaml", "measurements"]))
    c.append(("seed infinite", run("t5.yaml"), {"t5.yaml": yaml_with("seed: 5", "seed: .inf")}, ["t5.yaml", "seed"]))
    c.append(("samples_per_measurement a list", run("t6.yaml"),
              {"t6.yaml": yaml_with("samples_per_measurement: 4", "samples_per_measurement: [1, [2]]")},
              ["t6.yaml", "samples_per_measurement"]))
    c.append(("unknown top-level key", run("t7.yaml"), {"t7.yaml": BASE + "mesurements: 3\n"}, ["t7.yaml", "mesurements"]))
    c.append(("duplicate key", run("t8.yaml"), {"t8.yaml": BASE + "seed: 6\n"}, ["t8.yaml", "seed"]))
    c.append(("alias bomb", run("bomb.yaml"), {"bomb.yaml": BASE + "x0: &a [lol, lol, lol, lol, lol, lol, lol, lol]\n" +
                                                "".join(f"x{i}: &a{i} [*{'a' if i == 1 else 'a' + str(i - 1)}, "
                                                        f"*{'a' if i == 1 else 'a' + str(i - 1)}, "
                                                        f"*{'a' if i == 1 else 'a' + str(i - 1)}, "
                                                        f"*{'a' if i == 1 else 'a' + str(i - 1)}, "
                                                        f"*{'a' if i == 1 else 'a' + str(i - 1)}, "
                                                        f"*{'a' if i == 1 else 'a' + str(i - 1)}, "
                                                        f"*{'a' if i == 1 else 'a' + str(i - 1)}, "
                                                        f"*{'a' if i == 1 else 'a' + str(i - 1)}]\n"
                                                        for i in range(1, 10))}, ["bomb.yaml", "nodes"]))
    c.append(("no samplers", run("t9.yaml"), {"t9.yaml": BASE.split("samplers:")[0] + "samplers: []\n"},
              ["t9.yaml", "samplers"]))
    c.append(("unknown sampler", run("s1.yaml"), {"s1.yaml": yaml_with("  - exact\n", "  - exakt\n")}, ["s1.yaml", "exakt"]))
    c.append(("unknown sampler option", run("s2.yaml"),
              {"s2.yaml": yaml_with("step_size: 0.001", "step_sise: 0.001")}, ["s2.yaml", "step_sise"]))
    c.append(("sampler option of the wrong type", run("s3.yaml"),
              {"s3.yaml": yaml_with("step_size: 0.001", "step_size: fast")}, ["s3.yaml", "step_size", "fast"]))
    c.append(("sampler option out of range", run("s4.yaml"),
              {"s4.yaml": yaml_with("step_size: 0.001", "step_size: -0.5")}, ["s4.yaml", "step_size", "-0.5"]))
    c.append(("sampler option NaN", run("s5.yaml"),
              {"s5.yaml": yaml_with("step_size: 0.001", "step_size: .nan")}, ["s5.yaml", "step_size"]))
    c.append(("sampler chains huge", run("s6.yaml"),
              {"s6.yaml": yaml_with("chains: 2", "chains: 1e300")}, ["s6.yaml", "chains"]))
    c.append(("sampler a mapping without a name", run("s7.yaml"),
              {"s7.yaml": yaml_with("{name: noise_langevin, ", "{")}, ["s7.yaml", "name"]))
    c.append(("unknown task", run("k1.yaml"), {"k1.yaml": yaml_with("name: gmm_lowrank", "name: gmm_highrank")},
              ["k1.yaml", "gmm_highrank"]))
    c.append(("task option of the wrong type", run("k2.yaml"), {"k2.yaml": yaml_with("d_y: 2", "d_y: two")},
              ["k2.yaml", "d_y", "two"]))
    c.append(("task sigma_y zero", run("k3.yaml"), {"k3.yaml": yaml_with("sigma_y: 0.3", "sigma_y: 0")},
              ["k3.yaml", "sigma_y"]))
    c.append(("unknown prior", run("p1.yaml"), {"p1.yaml": yaml_with("name: gmm,", "name: gmn,")}, ["p1.yaml", "gmn"]))
    c.append(("prior model file missing", run("p2.yaml"),
              {"p2.yaml": yaml_with("{name: gmm, dim: 8, ode_steps: 4}", "{name: edm, model: {D}/nomodel.pt}")},
              ["p2.yaml", "nomodel.pt"]))
    c.append(("prior model file truncated", run("p3.yaml"),
              {"p3.yaml": yaml_with("{name: gmm, dim: 8, ode_steps: 4}", "{name: edm, model: {D}/trunc.pt}"),
               "trunc.pt": ("copy-head", "data/models/edm_fmnist.pt", 4096)}, ["trunc.pt"]))
    c.append(("prior model file of the wrong kind", run("p4.yaml"),
              {"p4.yaml": yaml_with("{name: gmm, dim: 8, ode_steps: 4}",
                                    "{name: edm, model: data/models/fmnist_cnn.pt}")}, ["fmnist_cnn.pt"]))
    c.append(("TorchScript denoiser without its sidecar", run("p5.yaml"),
              {"p5.yaml": yaml_with("{name: gmm, dim: 8, ode_steps: 4}",
                                    "{name: torchscript, denoiser: {D}/den.pt}"),
               "den.pt": ("copy-head", "tests/fixtures/learned_halve.pt", None)}, ["den.yaml"]))
    c.append(("TorchScript sidecar not a mapping", run("p6.yaml"),
              {"p6.yaml": yaml_with("{name: gmm, dim: 8, ode_steps: 4}",
                                    "{name: torchscript, denoiser: {D}/den2.pt}"),
               "den2.pt": ("copy-head", "tests/fixtures/learned_halve.pt", None), "den2.yaml": "[1, 2\n"},
              ["den2.yaml"]))
    c.append(("TorchScript sidecar with a huge shape", run("p7.yaml"),
              {"p7.yaml": yaml_with("{name: gmm, dim: 8, ode_steps: 4}",
                                    "{name: torchscript, denoiser: {D}/den3.pt}"),
               "den3.pt": ("copy-head", "tests/fixtures/learned_halve.pt", None),
               "den3.yaml": "kind: denoiser\nshape: [100000, 100000, 100000]\n"},
              ["den3.yaml", "shape", "2^28"]))
    c.append(("dataset directory missing", run("d1.yaml"),
              {"d1.yaml": yaml_with("priors:", "datasets:\n  - {name: image_folder, path: {D}/noimages}\npriors:")},
              ["noimages"]))
    c.append(("IDX files truncated", run("d2.yaml"),
              {"d2.yaml": yaml_with("tasks:\n  - {name: gmm_lowrank, d_y: 2, sigma_y: 0.3}\npriors:\n  - {name: gmm, dim: 8, ode_steps: 4}",
                                    "tasks:\n  - {name: inpaint_random}\ndatasets:\n  - {name: fashion_mnist, root: {D}/idx}\n"
                                    "priors:\n  - {name: consistency}"),
               "idx/t10k-images-idx3-ubyte.gz": ("copy-head", "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", 2000),
               "idx/t10k-labels-idx1-ubyte.gz": ("copy-head", "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", None),
               "idx/train-images-idx3-ubyte.gz": ("copy-head", "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", 2000),
               "idx/train-labels-idx1-ubyte.gz": ("copy-head", "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", None)},
              ["t10k-images-idx3-ubyte.gz"]))
    c.append(("image folder with a corrupt PNG", run("d3.yaml"),
              {"d3.yaml": yaml_with("tasks:\n  - {name: gmm_lowrank, d_y: 2, sigma_y: 0.3}\npriors:\n  - {name: gmm, dim: 8, ode_steps: 4}",
                                    "tasks:\n  - {name: inpaint_random}\ndatasets:\n  - {name: image_folder, path: {D}/imgs, channels: 1}\n"
                                    "priors:\n  - {name: consistency}"),
               "imgs/a.png": b"\x89PNG\r\n\x1a\n" + b"\x00" * 40}, ["a.png"]))
    # --- command line -----------------------------------------------------------------------------------
    good = f"{d}/good.yaml"
    c.append(("--threads zero", ["run", good, "--dry-run", "--threads", "0"], {"good.yaml": BASE}, ["threads", "0"]))
    c.append(("--threads not a number", ["run", good, "--dry-run", "--threads", "many"], {"good.yaml": BASE},
              ["threads", "many"]))
    c.append(("--shard beyond the count", ["run", good, "--shard", "3/2", "--out", f"{d}/o1.h5"], {"good.yaml": BASE},
              ["shard", "3/2"]))
    c.append(("--only with an unknown key", ["run", good, "--only", "nokey=1", "--out", f"{d}/o2.h5"],
              {"good.yaml": BASE}, ["nokey"]))
    c.append(("unknown command", ["frobnicate"], {}, ["frobnicate"]))
    # --- output files -------------------------------------------------------------------------------------
    c.append(("output is a directory", ["run", good, "--out", f"{d}/outdir"], {"good.yaml": BASE, "outdir/keep": ""},
              ["outdir"]))
    c.append(("output under a regular file", ["run", good, "--out", f"{d}/plain.txt/r.h5"],
              {"good.yaml": BASE, "plain.txt": "not a directory\n"}, ["plain.txt"]))
    c.append(("output is a text file", ["run", good, "--out", f"{d}/notes.h5"],
              {"good.yaml": BASE, "notes.h5": "my notes, not results\n"}, ["notes.h5"]))
    c.append(("output is an HDF5 file of another kind", ["run", good, "--out", f"{d}/foreign.h5"],
              {"good.yaml": BASE, "foreign.h5": ("hdf5", None, None)}, ["foreign.h5"]))
    c.append(("output is a model file", ["run", good, "--out", f"{d}/model.pt"],
              {"good.yaml": BASE, "model.pt": ("copy-head", "data/models/cm_fmnist.pt", None)}, ["model.pt"]))
    # --- results files read by report / merge / evaluate ---------------------------------------------------
    c.append(("report on a missing file", ["report", f"{d}/nothing.h5"], {}, ["nothing.h5"]))
    c.append(("report on an empty file", ["report", f"{d}/empty.h5"], {"empty.h5": b""}, ["empty.h5"]))
    c.append(("report on a text file", ["report", f"{d}/text.h5"], {"text.h5": "hello\n"}, ["text.h5"]))
    c.append(("report on a truncated results file", ["report", f"{d}/trunc.h5"],
              {"trunc.h5": ("copy-head", f"{d}/valid.h5", 3000)}, ["trunc.h5"]))
    c.append(("merge of a truncated shard", ["merge", f"{d}/merged.h5", f"{d}/valid.h5", f"{d}/trunc2.h5"],
              {"trunc2.h5": ("copy-head", f"{d}/valid.h5", 5000)}, ["trunc2.h5"]))
    c.append(("evaluate a missing results file", ["evaluate", f"{d}/nothing.h5"], {}, ["nothing.h5"]))
    # Fuzzing found it: a cell's object header whose size makes libhdf5 give up part-way, which once left a
    # second message on stderr ("HDF5: infinite loop closing library") after psbench's own.
    c.append(("report on a results file with a damaged object header", ["report", f"{d}/header.h5"],
              {"header.h5": ("copy-head", "tests/fuzz/regressions/results_hdf5/object_header_size_huge.h5.gz", None)},
              ["header.h5", "damaged"]))
    return c


def write_files(d, files):
    for rel, content in files.items():
        path = os.path.join(d, rel.replace("{D}", d))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if isinstance(content, tuple) and content[0] == "hdf5":  # an HDF5 file that is not psbench results
            import h5py
            with h5py.File(path, "w") as fh:
                fh["measurements"] = list(range(10))
                fh.attrs["made_by"] = "another program"
        elif isinstance(content, tuple):  # ("copy-head", source, bytes or None = whole file)
            _, src, n = content
            import gzip
            with (gzip.open if src.endswith(".gz") else open)(src.replace("{D}", d), "rb") as fh:
                data = fh.read() if n is None else fh.read(n)
            with open(path, "wb") as fh:
                fh.write(data)
        elif isinstance(content, bytes):
            with open(path, "wb") as fh:
                fh.write(content)
        else:
            with open(path, "w") as fh:
                fh.write(content.replace("{D}", d))


def digest(path):
    if not os.path.exists(path):
        return None
    if os.path.isdir(path):
        return "dir"
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def snapshot(d):
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            out[p] = digest(p)
    return out


FULL_DISK = BASE.replace("samples_per_measurement: 4", "samples_per_measurement: 200\nstore_samples: true").replace(
    "dim: 8", "dim: 80")


def full_disk_cases(binary, d, failures):
    """A results file on a nearly full filesystem (a small tmpfs; needs root to mount it). 64 KiB: no room even for
    the file's header, nothing may be created. 1300 KiB: the header fits, the first measurement (200 samples of
    dimension 80 with their traces) does not; the results file must stay a valid psbench file without the cell.
    Returns the number of cases run (0 when tmpfs cannot be mounted here: said, not counted)."""
    mnt = os.path.join(d, "small_disk")
    os.makedirs(mnt, exist_ok=True)
    write_files(d, {"full.yaml": FULL_DISK})
    ran = 0
    for size, header_fits in (("64k", False), ("1300k", True)):
        name = f"full disk ({size} tmpfs)"
        m = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", mnt], capture_output=True, text=True)
        if m.returncode != 0:
            print(f"[skipped] {name}: cannot mount a tmpfs here ({m.stderr.strip()}); not counted")
            continue
        ran += 1
        try:
            out = os.path.join(mnt, "r.h5")
            r = subprocess.run([binary, "run", f"{d}/full.yaml", "--out", out], capture_output=True, text=True,
                               timeout=120)
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            msg = lines[-1] if lines else ""
            problems = []
            if r.returncode != 2:
                problems.append(f"exit code {r.returncode}, not 2")
            if not (msg.startswith("psbench") and "r.h5" in msg and "free space" in msg):
                problems.append(f"message does not name the file and the free space: {msg!r}")
            for bad in CRASH_WORDS + ("HDF5-DIAG",):
                if bad in r.stdout or bad in r.stderr:
                    problems.append(f"output holds {bad!r}")
            left = sorted(os.listdir(mnt))
            if not header_fits and left:
                problems.append(f"left files {left}")
            if header_fits:
                rep = subprocess.run([binary, "report", out], capture_output=True, text=True, timeout=120)
                if rep.returncode != 0 or "no complete cells" not in rep.stdout:
                    problems.append(f"the results file is not a valid empty results file: {rep.stdout + rep.stderr}")
            print(f"[{'ok' if not problems else 'FAILED'}] {name}: exit {r.returncode}; {msg}")
            if problems:
                failures.append(f"{name}: " + "; ".join(problems) + "\n    stderr: " + r.stderr.strip()[-600:])
        except subprocess.TimeoutExpired:
            failures.append(f"{name}: no answer within 120 s (a hang)")
        finally:
            subprocess.run(["umount", mnt], capture_output=True)
    return ran


def main():
    binary, d = sys.argv[1], os.path.abspath(sys.argv[2])
    subprocess.run(["umount", os.path.join(d, "small_disk")], capture_output=True)  # left by an interrupted run
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    # One valid results file, the target of the truncation and "another experiment" cases.
    write_files(d, {"good.yaml": BASE})
    r = subprocess.run([binary, "run", f"{d}/good.yaml", "--out", f"{d}/valid.h5"], capture_output=True, text=True)
    if r.returncode != 0:
        print("setup: the valid experiment failed:\n" + r.stdout + r.stderr)
        return 1
    failures, n = [], 0
    for name, argv, files, words in cases(d):
        n += 1
        write_files(d, files)
        argv = [a.replace("{D}", d) for a in argv]
        before = snapshot(d)
        try:
            r = subprocess.run([binary, *argv], capture_output=True, text=True, timeout=120)
            out, err, code = r.stdout, r.stderr, r.returncode
        except subprocess.TimeoutExpired:
            failures.append(f"{name}: no answer within 120 s (a hang)")
            continue
        problems = []
        if code != 2:
            problems.append(f"exit code {code}, not 2")
        lines = [l for l in err.splitlines() if l.strip()]
        if not lines:
            problems.append("nothing on stderr")
        else:
            msg = lines[-1]
            if not msg.startswith("psbench"):
                problems.append(f"last stderr line is not psbench's message: {msg!r}")
            for w in words:
                if w.replace("{D}", d) not in msg:
                    problems.append(f"message does not name {w!r}: {msg!r}")
        for bad in CRASH_WORDS:
            if bad in out or bad in err:
                problems.append(f"output holds {bad!r}")
        after = snapshot(d)
        for p, h in before.items():
            if after.get(p) != h:
                problems.append(f"{os.path.relpath(p, d)} was changed or removed")
        for p in after:
            if p not in before:
                problems.append(f"left a new file {os.path.relpath(p, d)}")
        status = "ok" if not problems else "FAILED"
        print(f"[{status}] {name}: exit {code}; {lines[-1] if lines else ''}")
        if problems:
            failures.append(f"{name}: " + "; ".join(problems) + "\n    stderr: " + err.strip()[-600:])
    n += full_disk_cases(binary, d, failures)
    print(f"\n{n - len(failures)} of {n} bad-input cases give exit 2 and a one-line message naming the input, "
          "with no file created or touched (a full disk: only a valid results file without the refused cell)")
    for f in failures:
        print("FAILED " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
