#!/usr/bin/env python3
"""Contracting the small FoF groups of super-resolved particles (issue 16's mass function), post
hoc in numpy: the prototype of the hook's [emulators.NAME.contract] (pm/analysis/
group_contraction.hpp), and its reference in cli_superres.

The super-resolution network spreads the members of the truth's small halos about twice as wide
as the truth does (superres_particles.py's compactness table: 0.71 against 0.34 Mpc/h for groups
of 100-199 particles), so FoF at b = 0.2 keeps only their cores and finds too few groups above
100 HR particle masses. This script tries the simplest halo-scale correction: FoF (b = 0.2, 20
or more members) on the super-resolved particles; around the centre of every group of at most
--max-members members, the particles within --radius are pulled in radially,
  r -> r (lambda + (1 - lambda) (r / R)^2),
which leaves r = R in place (where two groups claim a particle, the larger move wins); FoF
again. It is a heuristic profile correction, at the halo scale as PGD is at the mesh scale: its
three numbers are fitted on training seeds (superres_contraction_fit.py, with the hook) and
scored on held-out ones (superres_particles.sh).

Inputs per seed: the super-resolved (and PGD-sharpened) snapshot, the HR truth snapshot and the
truth's FoF catalogue. Writes a table (N/N_HR of the cumulative mass function at 1, 2, 4, 8 x 100
HR particle masses, and max |T - 1| up to the LR particle Nyquist frequency, T = sqrt(P/P_HR),
256^3 interlaced CIC) before and after, to stdout and --out.

usage: superres_halo_contraction.py --seeds 301 302 ... --sr PATTERN --hr PATTERN
       --hr-halos PATTERN [--lambda 0.6] [--radius 1.0] [--max-members 200] --out TABLE.md
(patterns take {seed}; e.g. --sr "output/superres/validation/pgd/s{seed}/sr_a1.0000.hdf5")
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from superres_particles import bin_power, delta_k, group_masses, read_positions  # noqa: E402

CAUSTIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "build", "src", "caustic")


def fof(snapshot, positions, work):
    """FoF (b = 0.2) of `snapshot` with its positions replaced: the catalogue's path."""
    path = os.path.join(work, "moved.hdf5")
    shutil.copy(snapshot, path)
    with h5py.File(path, "r+") as f:
        f["PartType1/Coordinates"][...] = positions.astype(f["PartType1/Coordinates"].dtype)
    out = os.path.join(work, "moved_halos.hdf5")
    subprocess.run([CAUSTIC, "fof", path, "-o", out, "--overwrite"], check=True,
                   stdout=subprocess.DEVNULL)
    return out


def contract(x, centres, sizes, lam, radius, max_members, L):
    """The contraction of the module docstring. Neighbours by a cell list of side >= radius."""
    nc = max(1, int(L // radius))
    cell = np.floor(x / (L / nc)).astype(np.int64) % nc
    key = (cell[:, 0] * nc + cell[:, 1]) * nc + cell[:, 2]
    order = np.argsort(key, kind="stable")
    starts = np.searchsorted(key[order], np.arange(nc**3 + 1))
    disp = np.zeros_like(x)
    for c, n in zip(centres, sizes):
        if n > max_members:
            continue
        ci = np.floor(c / (L / nc)).astype(np.int64)
        idx = []
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dz in (-1, 0, 1):
                    a, b, e = (ci + (dx, dy, dz)) % nc
                    k = (a * nc + b) * nc + e
                    idx.append(order[starts[k]:starts[k + 1]])
        idx = np.unique(np.concatenate(idx))
        d = x[idx] - c
        d -= L * np.round(d / L)
        r = np.linalg.norm(d, axis=1)
        near = r < radius
        idx, d, r = idx[near], d[near], r[near]
        move = d * ((lam + (1 - lam) * (r / radius) ** 2) - 1)[:, None]
        larger = np.abs(move).sum(axis=1) > np.abs(disp[idx]).sum(axis=1)
        disp[idx[larger]] = move[larger]
    return np.mod(x + disp, L)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", nargs="+", required=True)
    ap.add_argument("--sr", required=True, help="super-resolved snapshot pattern ({seed})")
    ap.add_argument("--hr", required=True, help="HR truth snapshot pattern ({seed})")
    ap.add_argument("--hr-halos", required=True, help="the truth's FoF catalogue pattern ({seed})")
    ap.add_argument("--lambda", dest="lam", type=float, default=0.6)
    ap.add_argument("--radius", type=float, default=1.0, help="[Mpc/h]")
    ap.add_argument("--max-members", type=int, default=200)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    if not (0 < a.lam <= 1 and a.radius > 0 and a.max_members >= 20):
        sys.exit("need 0 < --lambda <= 1, --radius > 0, --max-members >= 20")
    counts = {"before": np.zeros(4), "after": np.zeros(4), "HR": np.zeros(4)}
    worst = {"before": [], "after": []}
    with tempfile.TemporaryDirectory() as work:
        for seed in a.seeds:
            snap = a.sr.format(seed=seed)
            x, L = read_positions(snap)
            hx, _ = read_positions(a.hr.format(seed=seed))
            with h5py.File(a.hr.format(seed=seed), "r") as f:
                m_hr = f["Header"].attrs["MassTable"][1] * 1e10
            cuts = 100 * m_hr * np.array([1, 2, 4, 8])
            k_lr = np.pi * round((len(x) / 8) ** (1 / 3)) / L
            dh = delta_k(hx, L, 256)
            k, p_hr = bin_power(dh, dh, L, 256, 128)
            sel = k <= k_lr * 1.0001
            cat = fof(snap, x, work)
            with h5py.File(cat, "r") as f:
                centres = f["Group/GroupPos"][...]
                sizes = f["Group/GroupLen"][...]
            masses = {"before": group_masses(cat)}
            moved = contract(x, centres, sizes, a.lam, a.radius, a.max_members, L)
            masses["after"] = group_masses(fof(snap, moved, work))
            counts["HR"] += [np.sum(group_masses(a.hr_halos.format(seed=seed)) >= c) for c in cuts]
            for name, y in (("before", x), ("after", moved)):
                counts[name] += [np.sum(masses[name] >= c) for c in cuts]
                d = delta_k(y, L, 256)
                _, p = bin_power(d, d, L, 256, 128)
                worst[name].append(float(np.max(np.abs(np.sqrt(p[sel] / p_hr[sel]) - 1))))
            print("seed %s: max |T - 1| to %.3g h/Mpc %.4f before, %.4f after" %
                  (seed, k_lr, worst["before"][-1], worst["after"][-1]), flush=True)
    lines = ["Group contraction (lambda = %g, R = %g Mpc/h, groups of at most %d members), seeds %s"
             % (a.lam, a.radius, a.max_members, " ".join(a.seeds)), "",
             "| particles | N/N_HR at 1, 2, 4, 8 x 100 HR particle masses | max abs(T - 1) to the "
             "LR particle Nyquist, per seed |", "|---|---|---|"]
    for name in ("before", "after"):
        lines.append("| %s | %s | %s |" % (name, ", ".join("%.3f" % v for v in
                                                          counts[name] / counts["HR"]),
                                          ", ".join("%.4f" % v for v in worst[name])))
    with open(a.out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
