#!/usr/bin/env python3
"""End-to-end `caustic train`: paired runs from the same white noise (16^3 and 32^3 particles,
density on the same 32^3 mesh) become a super-resolution training set; a U-Net is trained
through the command line, stopped and resumed (the loss curve equals an uninterrupted run's),
its files are checked, a bad setting is refused with exit code 2, and the trained model is
applied in-situ by an [emulators] hook of a 2-rank run."""
import argparse
import csv
import json
import math
import os
import shlex
import shutil
import subprocess
import sys

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks

RUN = COSMOLOGY + """
[simulation]
box = 64.0
particles = {particles}
mesh = 32
a_start = 0.05
a_end = 1.0
steps = 4
seed = {seed}

[output]
directory = "{out}"
a = [1.0]
density = true
snapshots = false
power_spectrum = false
initial_conditions = false
"""

TRAIN = """
[data]
train = [
{train}
]
validation = [
{validation}
]

[model]
kind = "super_resolution"
depth = 1
width = 4
outputs = ["density_hr"]

[training]
steps = 30
batch = 2
crop = 16
learning_rate = 0.003
validate_every = 10
checkpoint_every = 10
seed = 3

[output]
directory = "{out}"
"""

check = Checks()
failures = check.failures


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-1500:], r.stderr[-1500:])
    return r


def curve(path):
    with open(path) as f:
        rows = [r for r in csv.reader(l for l in f if not l.startswith("#"))]
    return rows[1:]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--mpiexec", default="mpiexec")
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    mpi = shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic]

    # Paired runs: the same seed at two particle resolutions.
    pairs = []
    for seed in (1, 2, 3, 4):
        files = []
        for parts in (16, 32):
            out = os.path.join(args.work, "runs", "s%d_p%d" % (seed, parts))
            p = os.path.join(args.work, "s%d_p%d.toml" % (seed, parts))
            with open(p, "w") as f:
                f.write(RUN.format(particles=parts, seed=seed, out=out))
            r = run(mpi + ["run", p])
            check(r.returncode == 0, "paired run seed %d, %d^3 failed" % (seed, parts))
            files.append(os.path.join(out, "density_a1.0000.hdf5"))
        pairs.append('  {inputs = ["%s:Fields/density"], targets = ["%s:Fields/density"]},' % tuple(files))
    cfg = os.path.join(args.work, "train.toml")

    def write_cfg(out, extra=""):
        with open(cfg, "w") as f:
            f.write(TRAIN.format(train="\n".join(pairs[:3]), validation=pairs[3], out=out) + extra)

    # Uninterrupted, and stopped after 20 steps then resumed.
    full = os.path.join(args.work, "full")
    write_cfg(full)
    r = run(mpi + ["train", cfg])
    check(r.returncode == 0, "caustic train failed")
    part = os.path.join(args.work, "resumed")
    write_cfg(part)
    r = run(mpi + ["train", cfg, "--stop-after", "20"])
    check(r.returncode == 0 and "continue with --resume" in r.stdout + r.stderr, "--stop-after run failed")
    r = run(mpi + ["train", cfg])
    check(r.returncode == 2 and "pass --resume" in r.stderr, "an existing checkpoint was not protected")
    r = run(mpi + ["train", cfg, "--resume"])
    check(r.returncode == 0, "--resume failed")
    if failures:
        sys.exit(1)
    a, b = curve(os.path.join(full, "loss.csv")), curve(os.path.join(part, "loss.csv"))
    check(len(a) == 31 and len(b) == 31, "loss.csv rows: %d and %d, expected 31" % (len(a), len(b)))
    worst = max(abs(float(x[1]) / float(y[1]) - 1) for x, y in zip(a[1:], b[1:]))
    print("resumed vs uninterrupted training loss: largest relative difference %.2e" % worst)
    check(worst < 1e-6, "the resumed curve differs by %g" % worst)
    v0, v1 = float(a[0][2]), float(a[-1][2])
    # (Learning itself is tested on a synthetic mapping in caustic_training_tests; 30 steps on
    # four tiny runs only exercise the command.)
    print("held-out loss %.4g -> %.4g in 30 steps" % (v0, v1))
    check(math.isfinite(v0) and math.isfinite(v1), "non-finite validation loss")
    with open(os.path.join(full, "model.json")) as f:
        meta = json.load(f)
    check(meta["architecture"]["type"] == "unet3d" and meta["stride"] == 2 and
          abs(meta["cell_size"]["value"] - 2.0) < 1e-12 and meta["outputs"][0]["name"] == "density_hr" and
          meta["inputs"][0]["name"] == "density" and meta["redshift"][0] <= 0 <= meta["redshift"][1],
          "model.json: %s" % json.dumps(meta)[:400])
    with open(os.path.join(full, "loss.svg")) as f:
        check("<polyline" in f.read(), "loss.svg has no curve")

    # A bad setting: exit 2, the key in the message, nothing written.
    bad = os.path.join(args.work, "bad")
    write_cfg(bad)
    r = run(mpi + ["train", cfg, "--set", "training.crop=15"])
    check(r.returncode == 2 and "training.crop = 15" in r.stderr and not os.path.exists(bad),
          "bad crop: exit %d, %s" % (r.returncode, r.stderr[-300:]))

    # The trained model in-situ: a hook of a 2-rank run.
    out = os.path.join(args.work, "hooked")
    p = os.path.join(args.work, "hooked.toml")
    with open(p, "w") as f:
        f.write(RUN.format(particles=16, seed=9, out=out) +
                '\n[emulators.sr]\nmodel = "%s"\n' % os.path.join(full, "model.pt"))
    r = run(mpi + ["run", p])
    check(r.returncode == 0, "run with the trained model as a hook failed")
    if r.returncode == 0:
        with h5py.File(os.path.join(out, "sr_a1.0000.hdf5"), "r") as f:
            y = f["Fields/density_hr"][...]
            m = json.loads(f["Fields"].attrs["model_metadata"])
        check(y.shape == (32, 32, 32) and np.isfinite(y).all() and m["kind"] == "super_resolution",
              "hook output: shape %s, kind %s" % (y.shape, m["kind"]))
    if failures:
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
