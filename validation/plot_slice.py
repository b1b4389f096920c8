#!/usr/bin/env python3
"""Projected density of a slab of a Caustic snapshot (Gadget-4 HDF5 layout).

usage: plot_slice.py SNAPSHOT -o OUT.png [--thickness MPC_H] [--pixels N]
Particles with z in [0, thickness) are binned in (x, y); the image shows log10(1 + delta).
"""
import argparse

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("snapshot")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--thickness", type=float, default=None, help="slab thickness [Mpc/h] (default L/8)")
    ap.add_argument("--pixels", type=int, default=128)
    args = ap.parse_args()

    with h5py.File(args.snapshot, "r") as f:
        L = float(f["Header"].attrs["BoxSize"])
        z = float(f["Header"].attrs["Redshift"])
        pos = f["PartType1/Coordinates"][...]
    t = args.thickness or L / 8
    sel = pos[:, 2] < t
    h, _, _ = np.histogram2d(pos[sel, 0], pos[sel, 1], bins=args.pixels, range=[[0, L], [0, L]])
    mean = sel.sum() / args.pixels**2
    img = np.log10(1.0 + h / max(mean, 1e-30))
    fig, ax = plt.subplots(figsize=(6, 5.4))
    im = ax.imshow(img.T, origin="lower", extent=[0, L, 0, L], cmap="magma")
    fig.colorbar(im, ax=ax, label=r"$\log_{10}(1 + \delta)$")
    ax.set_xlabel(r"$x$ [$h^{-1}\,\mathrm{Mpc}$]")
    ax.set_ylabel(r"$y$ [$h^{-1}\,\mathrm{Mpc}$]")
    ax.set_title("z = %.2f, slab 0 < z < %.0f Mpc/h, %d particles" % (z, t, sel.sum()))
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
