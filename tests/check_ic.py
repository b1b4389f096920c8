#!/usr/bin/env python3
"""End-to-end check of `caustic ic` at a given rank count.

1. A bad parameter file: non-zero exit, the message names the key, nothing is written.
2. A small run: the snapshot read back with h5py in the Gadget-4 layout (header, particle
   count, box, IDs unique and complete, positions inside the box, velocities finite), the power
   table and the run summary.
"""
import argparse
import json
import os
import shlex
import shutil
import sys

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks, run

PARAMS = COSMOLOGY + """
[simulation]
box = 64.0
particles = 16
mesh = 32
a_start = 0.05
seed = 3

[output]
directory = "{out}"
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--np", type=int, required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mpiexec", required=True)
    args = ap.parse_args()

    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    launcher = shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic, "ic"]
    check = Checks()
    failures = check.failures

    # 1. Bad input: clear error, non-zero exit, no output directory.
    bad_out = os.path.join(args.work, "bad")
    pfile = os.path.join(args.work, "bad.toml")
    with open(pfile, "w") as f:
        f.write(PARAMS.format(out=bad_out))
    r = run(launcher + [pfile, "--set", "simulation.box=-1"])
    check(r.returncode != 0, "negative box accepted (exit 0)")
    check("simulation.box = -1" in r.stderr, "message does not name the key: " + r.stderr)
    check(not os.path.exists(bad_out), "output written despite the error")
    r = run(launcher + [pfile, "--set", "simulation.stpes=3"])
    check(r.returncode != 0 and "unknown key" in r.stderr, "typo not refused: " + r.stderr)

    # 2. A good run.
    out = os.path.join(args.work, "out")
    pfile = os.path.join(args.work, "ic.toml")
    with open(pfile, "w") as f:
        f.write(PARAMS.format(out=out))
    r = run(launcher + [pfile])
    print(r.stdout, r.stderr)
    check(r.returncode == 0, "caustic ic failed")
    if r.returncode == 0:
        n = 16
        with h5py.File(os.path.join(out, "ic.hdf5"), "r") as f:
            h = f["Header"].attrs
            check(abs(h["BoxSize"] - 64.0) < 1e-12, "BoxSize")
            check(abs(h["Time"] - 0.05) < 1e-12, "Time")
            check(abs(h["Redshift"] - 19.0) < 1e-9, "Redshift")
            check(int(h["NumPart_Total"][1]) == n**3, "NumPart_Total")
            check(int(h["NumPart_ThisFile"][1]) == n**3, "NumPart_ThisFile")
            mass = 0.3 * 27.75366 * 64.0**3 / n**3
            check(abs(h["MassTable"][1] / mass - 1) < 1e-5, "MassTable")
            for key in ("Omega0", "OmegaLambda", "HubbleParam", "NumFilesPerSnapshot"):
                check(key in h, "Header lacks " + key)
            pos = f["PartType1/Coordinates"][...]
            vel = f["PartType1/Velocities"][...]
            ids = f["PartType1/ParticleIDs"][...]
            check(pos.shape == (n**3, 3), "Coordinates shape %s" % (pos.shape,))
            check(vel.shape == (n**3, 3), "Velocities shape")
            check(ids.dtype == np.uint64, "ParticleIDs dtype %s" % ids.dtype)
            check(np.array_equal(np.sort(ids), np.arange(n**3, dtype=np.uint64)),
                  "IDs not unique and complete")
            check(np.all(pos >= 0) and np.all(pos < 64.0), "positions outside the box")
            check(np.all(np.isfinite(vel)), "non-finite velocities")
            # Displacements are small at a = 0.05 and point back to the lattice site of the ID.
            q = np.stack([ids // (n * n), (ids // n) % n, ids % n], axis=1) * (64.0 / n)
            dx = (pos - q + 32.0) % 64.0 - 32.0
            check(np.abs(dx).max() < 4.0, "displacement too large: %g" % np.abs(dx).max())
            check(np.abs(dx).std() > 1e-3, "no displacement at all")
            check(f["Parameters"].attrs["simulation.particles"] == n, "Parameters group")
            check("units" in f["PartType1/Coordinates"].attrs, "units attribute")
        tab = np.loadtxt(os.path.join(out, "power_ic.txt"))
        check(tab.shape[1] == 4 and tab.shape[0] >= 8, "power table shape %s" % (tab.shape,))
        ratio = tab[:4, 1] / tab[:4, 3]
        check(np.all((ratio > 0.2) & (ratio < 5)), "power far from linear theory: %s" % ratio)
        with open(os.path.join(out, "ic_summary.json")) as f:
            s = json.load(f)
        check(s["ranks"] == args.np, "summary ranks")
        check(len(s["peak_memory_bytes_per_rank"]) == args.np, "summary memory")
        leftovers = [x for x in os.listdir(out) if x.endswith(".tmp")]
        check(not leftovers, "temporary files left: %s" % leftovers)

    print("%d passed, %d failed" % (1 if not failures else 0, 1 if failures else 0))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
