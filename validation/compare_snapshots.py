#!/usr/bin/env python3
"""Compares the particle data of two Caustic snapshots (or two run directories) for equality.

  compare_snapshots.py A B [--tolerance T]

A and B are snapshot files or directories (then every snapshot_*.hdf5 and ic.hdf5 present in
both is compared). ParticleIDs must be equal and in the same order; Coordinates and Velocities
must be byte-identical (default) or within T (absolute, in the file's units). Prints one line
per file and exits 1 on any difference.
"""
import argparse
import pathlib
import sys

import h5py
import numpy as np


def compare(fa, fb, tol):
    with h5py.File(fa, "r") as a, h5py.File(fb, "r") as b:
        ida, idb = a["PartType1/ParticleIDs"][...], b["PartType1/ParticleIDs"][...]
        if ida.shape != idb.shape or not np.array_equal(ida, idb):
            return False, "ParticleIDs differ (count or order)"
        worst = []
        for name in ("Coordinates", "Velocities"):
            x, y = a["PartType1/" + name][...], b["PartType1/" + name][...]
            if x.dtype != y.dtype or x.shape != y.shape:
                return False, f"{name}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}"
            if tol == 0.0:
                same = x.tobytes() == y.tobytes()
                diff = 0.0 if same else float(np.max(np.abs(x.astype(np.float64) - y)))
                if not same:
                    return False, f"{name} not byte-identical (max |diff| {diff:.3g})"
            else:
                diff = float(np.max(np.abs(x.astype(np.float64) - y)))
                if diff > tol:
                    return False, f"{name}: max |diff| {diff:.3g} > {tol:g}"
                worst.append(f"{name} max |diff| {diff:.3g}")
        n = ida.shape[0]
        return True, f"{n} particles identical" if tol == 0.0 else ", ".join(worst)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--tolerance", type=float, default=0.0)
    args = ap.parse_args()
    a, b = pathlib.Path(args.a), pathlib.Path(args.b)
    if a.is_dir():
        names = sorted(p.name for p in a.glob("*.hdf5")
                       if (p.name.startswith("snapshot_") or p.name == "ic.hdf5") and (b / p.name).exists())
        pairs = [(a / n, b / n) for n in names]
    else:
        pairs = [(a, b)]
    if not pairs:
        print(f"compare_snapshots: no common snapshots in {a} and {b}")
        return 1
    ok = True
    for fa, fb in pairs:
        same, what = compare(fa, fb, args.tolerance)
        ok &= same
        print(f"{'same' if same else 'DIFFERENT'}  {fb}: {what}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
