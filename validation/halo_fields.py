#!/usr/bin/env python3
"""Halo-number and halo-mass fields of a FoF catalogue, for training and validating halo surrogates.

    halo_fields.py CATALOGUE.0.hdf5 OUT.hdf5 --mesh N [--min-particles P]

Every group with at least P members (default: all) is assigned to its nearest mesh point
(i = round(x / H) mod N, the point whose CIC cell holds it, as Caustic paints), giving
/Fields/halo_number (groups per cell), /Fields/halo_mass (their total mass [Msun/h]) and
/Fields/fof_count (their member particles per cell: what the `fof_count` input channel of a halo
surrogate paints in-situ from the run's own FoF, with [halos] min_particles = P), float32,
indexed [x][y][z], with a /Header (BoxSize, Time, Omega0, MeshSize, CellSize, MinParticles,
ParticleMass, and the catalogue's LinkingLengthParameter) that `caustic train` reads.
"""
import argparse

import h5py
import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("catalogue")
    ap.add_argument("out")
    ap.add_argument("--mesh", type=int, required=True)
    ap.add_argument("--min-particles", type=int, default=0)
    args = ap.parse_args()
    if args.mesh < 1:
        raise SystemExit(f"--mesh = {args.mesh}: expected an integer >= 1")
    with h5py.File(args.catalogue, "r") as f:
        hdr = dict(f["Header"].attrs)
        length = f["Group/GroupLen"][:]
        mass = f["Group/GroupMass"][:] * 1e10
        pos = f["Group/GroupPos"][:]
    box, n = float(hdr["BoxSize"]), args.mesh
    # The catalogue holds only groups of at least MinGroupSize members.
    min_particles = max(args.min_particles, int(hdr.get("MinGroupSize", 0)))
    sel = length >= min_particles
    idx = np.rint(pos[sel] / (box / n)).astype(np.int64) % n
    flat = (idx[:, 0] * n + idx[:, 1]) * n + idx[:, 2]
    number = np.bincount(flat, minlength=n**3).astype(np.float32).reshape(n, n, n)
    total = np.bincount(flat, weights=mass[sel], minlength=n**3).astype(np.float32).reshape(n, n, n)
    members = np.bincount(flat, weights=length[sel], minlength=n**3).astype(np.float32).reshape(n, n, n)
    with h5py.File(args.out + ".tmp", "w") as f:
        h = f.create_group("Header")
        h.attrs["BoxSize"] = box
        h.attrs["Time"] = float(hdr["Time"])
        h.attrs["Redshift"] = 1.0 / float(hdr["Time"]) - 1.0
        h.attrs["Omega0"] = float(hdr["Omega0"])
        h.attrs["MeshSize"] = n
        h.attrs["CellSize"] = box / n
        h.attrs["MinParticles"] = min_particles
        h.attrs["LinkingLengthParameter"] = float(hdr.get("LinkingLengthParameter", 0.0))
        h.attrs["ParticleMass"] = float(hdr["ParticleMass"]) * 1e10
        g = f.create_group("Fields")
        g.create_dataset("halo_number", data=number).attrs["units"] = "groups per cell"
        g.create_dataset("halo_mass", data=total).attrs["units"] = "Msun/h per cell"
        g.create_dataset("fof_count", data=members).attrs["units"] = "group members per cell"
    import os
    os.replace(args.out + ".tmp", args.out)
    print(f"{args.out}: {int(sel.sum())} groups of >= {min_particles} particles on {n}^3")


if __name__ == "__main__":
    main()
