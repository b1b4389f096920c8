#!/usr/bin/env python3
"""Baryonification validation: S(k) of `caustic baryonify` outputs against published hydrodynamic
suppression curves (table and plot), slices of the matter, gas density, temperature and electron
pressure meshes, and the Compton-y map.

Usage: plot_baryons.py --case LABEL=DIR [--case LABEL=DIR ...] --fields DIR -o OUTDIR

DIR is a `caustic baryonify` output directory (suppression.txt, baryon_fields.hdf5,
compton_y.hdf5, baryonify_summary.json). Prints a Markdown table; writes
OUTDIR/baryons_sk.png, OUTDIR/baryons_slices.png, OUTDIR/baryons_ymap.png and
OUTDIR/baryons_table.md.
"""
import argparse
import json
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

# Published z = 0 suppression P_hydro / P_dmo at these k [h/Mpc], read from the van Daalen et al.
# (2020, arXiv:1906.00968) tables logPkRatio_*.dat as distributed with the CosmoSIS standard library
# (joezuntz/cosmosis-standard-library, structure/baryon_power_scaling/data/; the z = 0 column,
# S = 10^value, interpolated linearly in log k between the two nearest rows):
#   BAHAMAS AGN T_heat = 10^8.0, WMAP9, 400 Mpc/h (logPkRatio_BAHAMAS_T8.0_WMAP9_L400N1024.dat)
#   IllustrisTNG100 (logPkRatio_TNG100.dat), EAGLE Ref L100N1504 (logPkRatio_eagle.dat)
K_PUBLISHED = [0.1, 0.3, 0.5, 1.0, 2.0, 3.0, 5.0, 8.0, 10.0]
PUBLISHED = {
    "BAHAMAS AGN 8.0": [0.9970, 0.9788, 0.9535, 0.9025, 0.8475, 0.8163, 0.7831, 0.7803, 0.7881],
    "TNG100": [0.9997, 0.9989, 0.9973, 0.9922, 0.9878, 0.9733, 0.9313, 0.8805, 0.8530],
    "EAGLE": [0.9998, 0.9991, 0.9981, 0.9935, 0.9983, 1.0008, 0.9628, 0.8893, 0.8547],
}


def read_suppression(d):
    t = np.loadtxt(os.path.join(d, "suppression.txt"))
    return t[:, 0], t[:, 1]


def interp_logk(k, s, kq):
    """S at kq, linear in log k; NaN outside the measured range."""
    out = []
    for q in kq:
        if q < k[0] or q > k[-1]:
            out.append(np.nan)
        else:
            out.append(np.interp(np.log(q), np.log(k), s))
    return np.array(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", required=True, help="LABEL=DIR")
    ap.add_argument("--fields", required=True, help="baryonify directory whose meshes are shown")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    os.makedirs(a.output, exist_ok=True)
    cases = []
    for c in a.case:
        if "=" not in c:
            sys.exit(f"--case {c}: expected LABEL=DIR")
        label, d = c.split("=", 1)
        if not os.path.isfile(os.path.join(d, "suppression.txt")):
            sys.exit(f"--case {c}: {d}/suppression.txt missing (run caustic baryonify first)")
        cases.append((label, d))

    # Table.
    lines = []
    head = "| S(k) at z = 0 | " + " | ".join(f"{k:g}" for k in K_PUBLISHED) + " |"
    lines.append(head)
    lines.append("|" + "---|" * (len(K_PUBLISHED) + 1))
    for label, d in cases:
        k, s = read_suppression(d)
        v = interp_logk(k, s, K_PUBLISHED)
        lines.append(f"| Caustic BCM: {label} | " +
                     " | ".join("-" if np.isnan(x) else f"{x:.4f}" for x in v) + " |")
    for name, v in PUBLISHED.items():
        lines.append(f"| {name} (hydro, published) | " + " | ".join(f"{x:.4f}" for x in v) + " |")
    table = "\n".join(lines)
    extra = []
    for label, d in cases:
        with open(os.path.join(d, "baryonify_summary.json")) as f:
            sm = json.load(f)
        k, s = read_suppression(d)
        i = int(np.argmin(s))
        extra.append(
            f"- {label}: z = {1 / sm['a'] - 1:.2f}, {sm['haloes_baryonified']} haloes, "
            f"{sm['particles_displaced']} particles displaced (rms {sm['displacement_rms_mpc_h']:.4f}, "
            f"max {sm['displacement_max_mpc_h']:.3f} Mpc/h), minimum S = {s[i]:.4f} at k = {k[i]:.2f} h/Mpc; "
            f"gas {sm['gas_fraction']:.4f} + stars {sm['star_fraction']:.4f} of the mass "
            f"(Omega_b/Omega_m = {sm['cosmic_baryon_fraction']:.4f}); baryonify wall time "
            f"{sm.get('wall_seconds', float('nan')):.1f} s")
    text = table + "\n\n" + "\n".join(extra) + "\n"
    print(text)
    with open(os.path.join(a.output, "baryons_table.md"), "w") as f:
        f.write(text)

    # S(k) plot.
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, d in cases:
        k, s = read_suppression(d)
        ax.semilogx(k, s, lw=2, label=f"Caustic BCM: {label}")
    for name, v in PUBLISHED.items():
        ax.semilogx(K_PUBLISHED, v, "o--", ms=4, label=f"{name} (published)")
    ax.axhline(1, color="k", lw=0.5)
    ax.set_xlabel("k [h/Mpc]")
    ax.set_ylabel("S(k) = P_bcm / P_dmo")
    ax.set_ylim(0.7, 1.05)
    ax.legend(fontsize=7)
    ax.set_title("Baryonic suppression of the matter power spectrum, z = 0")
    fig.tight_layout()
    fig.savefig(os.path.join(a.output, "baryons_sk.png"), dpi=130)

    # Slices: a slab of 1/32 of the box along z, averaged.
    with h5py.File(os.path.join(a.fields, "baryon_fields.hdf5"), "r") as f:
        n = int(f["Header"].attrs["MeshSize"])
        L = float(f["Header"].attrs["BoxSize"])
        w = max(1, n // 32)
        sl = slice(n // 2 - w // 2, n // 2 - w // 2 + w)
        m = f["Fields/matter_density"][:, :, sl].mean(axis=2)
        g = f["Fields/gas_density"][:, :, sl].mean(axis=2)
        gasw = f["Fields/gas_density"][:, :, sl]
        t = (f["Fields/gas_temperature"][:, :, sl] * gasw).sum(axis=2) / np.maximum(gasw.sum(axis=2), 1e-30)
        p = f["Fields/electron_pressure"][:, :, sl].mean(axis=2)
    fig, axs = plt.subplots(2, 2, figsize=(10, 9))
    panels = [(m, "matter density rho / mean (log10)", "viridis"),
              (g, "gas density / mean baryon density (log10)", "magma"),
              (t, "gas temperature [K] (log10, mass weighted)", "inferno"),
              (p, "electron pressure [keV/cm^3] (log10)", "cividis")]
    for ax, (img, title, cmap) in zip(axs.flat, panels):
        im = ax.imshow(np.log10(np.maximum(img, 1e-30)).T, origin="lower", extent=[0, L, 0, L],
                       cmap=cmap, vmin=np.percentile(np.log10(np.maximum(img, 1e-30)), 1))
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("x [Mpc/h]")
        ax.set_ylabel("y [Mpc/h]")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"Baryonified run: slab of {w * L / n:.1f} Mpc/h at z = L/2")
    fig.tight_layout()
    fig.savefig(os.path.join(a.output, "baryons_slices.png"), dpi=110)

    with h5py.File(os.path.join(a.fields, "compton_y.hdf5"), "r") as f:
        y = f["Maps/compton_y"][...]
        L = float(f["Header"].attrs["BoxSize"])
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ly = np.log10(np.maximum(y, 1e-12))
    im = ax.imshow(ly.T, origin="lower", extent=[0, L, 0, L], cmap="afmhot",
                   vmin=np.percentile(ly, 5), vmax=ly.max())
    fig.colorbar(im, ax=ax, label="log10 y")
    ax.set_xlabel("x [Mpc/h]")
    ax.set_ylabel("y [Mpc/h]")
    ax.set_title(f"Compton-y through the box along z (mean y = {y.mean():.2e})")
    fig.tight_layout()
    fig.savefig(os.path.join(a.output, "baryons_ymap.png"), dpi=120)


if __name__ == "__main__":
    main()
