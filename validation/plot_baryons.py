#!/usr/bin/env python3
"""Baryonification validation: S(k) of `caustic baryonify` outputs against published hydrodynamic
suppression curves (table and plot), slices of the matter, gas density, temperature and electron
pressure meshes, and the Compton-y map.

Usage: plot_baryons.py --case LABEL=DIR [--case LABEL=DIR ...] --fields DIR [--halos CATALOGUE] -o OUTDIR

DIR is a `caustic baryonify` output directory (suppression.txt, baryon_fields.hdf5,
compton_y.hdf5, baryonify_summary.json). Prints a Markdown table; writes
OUTDIR/baryons_sk.png, OUTDIR/baryons_slices.png, OUTDIR/baryons_ymap.png and
OUTDIR/baryons_table.md. With --halos (the FoF catalogue baryonified), the gas density and electron
pressure of the baryonified particles stacked around the haloes in three mass bins
(OUTDIR/baryons_profiles.png, table), the gas against the model's analytic profile.
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


RHO_CRIT0 = 2.775366e11  # (Msun/h) / (Mpc/h)^3


def nfw_shape(x):
    return np.log1p(x) - x / (1 + x)


def duffy(m, a):
    return 5.71 * (m / 2e12) ** -0.084 * a ** 0.47


def r200c(m, a, e2):
    return (3 * m / (4 * np.pi * 200 * RHO_CRIT0 * e2 * a ** 3)) ** (1 / 3)


def m200c_from_fof(mfof, om, a, e2):
    """FoF mass taken as M200m, converted with NFW + Duffy et al. 2008 (docs/baryons.md),
    written independently of pm/baryons/bcm.cpp; vectorised over haloes."""
    mfof = np.asarray(mfof, dtype=np.float64)
    m = mfof.copy()
    for _ in range(40):
        c = duffy(m, a)
        rs = r200c(m, a, e2) / c
        # radius where the mean enclosed density is 200 Omega_m rho_crit0 (comoving)
        lo, hi = 1e-3 * c, 1e3 * c
        for _ in range(80):
            x = 0.5 * (lo + hi)
            mean = m * nfw_shape(x) / nfw_shape(c) / (4 / 3 * np.pi * (x * rs) ** 3)
            above = mean > 200 * om * RHO_CRIT0
            lo, hi = np.where(above, x, lo), np.where(above, hi, x)
        m = mfof / (nfw_shape(0.5 * (lo + hi)) / nfw_shape(c))
    return m


def bmo_shape(x, t):
    t2 = t * t
    pre = t2 / (2 * (1 + t2) ** 3)
    a = x / ((1 + x) * (t2 + x * x)) * (x - 2 * t2 ** 3 + t2 ** 2 * x * (1 - 3 * x) + x * x + 2 * t2 * (1 + x - x * x))
    b = t * ((6 * t2 - 2) * np.arctan(x / t) + t * (t2 - 3) * np.log(t2 * (1 + x) ** 2 / (t2 + x * x)))
    return pre * (a + b)


def bmo_total(t):
    t2 = t * t
    return t2 / (2 * (1 + t2) ** 3) * ((3 * t2 - 1) * (np.pi * t - t2 - 1) + 2 * t2 * (t2 - 3) * np.log(t))


def gas_profile(m, a, e2, fb, p, r):
    """The BCM gas density [(Msun/h)/(Mpc/h)^3, comoving] of a halo of M200c = m at radii r."""
    c = duffy(m, a)
    r2 = r200c(m, a, e2)
    t = 4.0 * c
    mtot = m * bmo_total(t) / bmo_shape(c, t)
    fstar = min(fb, 0.09 * (2.5e11 / m) ** p["eta"])
    fgas = fb - fstar
    xm = (m / 10 ** p["log10_mc"]) ** p["mu"]
    beta = 3 * xm / (1 + xm)

    def shape(x):
        u, v = x / (0.1 * r2), x / (p["theta_ej"] * r2)
        return 1 / ((1 + u) ** beta * (1 + v ** p["gamma"]) ** ((p["delta"] - beta) / p["gamma"]))

    lr = np.linspace(np.log(1e-6 * r2), np.log(1e5 * r2), 40000)
    x = np.exp(lr)
    norm = np.trapz(4 * np.pi * x ** 3 * shape(x), lr)
    return fgas * mtot / norm * shape(r)


def stacked_profiles(snap_path, halos_path, summary, out_dir, max_per_bin=60):
    """Gas density and electron pressure of the baryonified particles stacked in r / r200c."""
    with h5py.File(halos_path, "r") as f:
        pos = f["Group/GroupPos"][...].astype(np.float64)
        mass = f["Group/GroupMass"][...].astype(np.float64) * 1e10
        om = float(f["Header"].attrs["Omega0"])
        ol = float(f["Header"].attrs["OmegaLambda"])
    with h5py.File(snap_path, "r") as f:
        x = f["PartType1/Coordinates"][...].astype(np.float64)
        fg = f["PartType1/GasFraction"][...].astype(np.float64).reshape(-1)
        pe = f["PartType1/ElectronPressure"][...].astype(np.float64).reshape(-1)
        L = float(f["Header"].attrs["BoxSize"])
        mp = float(f["Header"].attrs["MassTable"][1]) * 1e10
        a = float(f["Header"].attrs["Time"])
    e2 = om / a ** 3 + ol + (1 - om - ol) / a ** 2
    fb = summary["cosmic_baryon_fraction"]
    p = summary["bcm"]
    m200 = m200c_from_fof(mass, om, a, e2)
    # cell list of the particles
    nc = max(1, int(L / 4.0))
    cell = np.floor(x / L * nc).astype(np.int64) % nc
    key = (cell[:, 0] * nc + cell[:, 1]) * nc + cell[:, 2]
    order = np.argsort(key, kind="stable")
    starts = np.searchsorted(key[order], np.arange(nc ** 3 + 1))
    edges = np.logspace(np.log10(0.1), np.log10(3.0), 13)
    mid = np.sqrt(edges[1:] * edges[:-1])
    bins = [(1e12, 1e13), (1e13, 1e14), (1e14, 1e16)]
    rows, curves = [], []
    for lo, hi in bins:
        sel = np.where((m200 >= lo) & (m200 < hi))[0]
        sel = sel[np.argsort(-m200[sel])][:max_per_bin]
        if len(sel) == 0:
            continue
        gas_stack = np.zeros(len(mid))
        pe_num = np.zeros(len(mid))
        pe_den = np.zeros(len(mid))
        model = np.zeros(len(mid))
        for h in sel:
            r2 = r200c(m200[h], a, e2)
            rmax = edges[-1] * r2
            span = int(np.ceil(rmax / (L / nc)))
            c0 = np.floor(pos[h] / L * nc).astype(int)
            idx = []
            for i in range(-span, span + 1):
                for j in range(-span, span + 1):
                    for k in range(-span, span + 1):
                        kk = (((c0[0] + i) % nc) * nc + (c0[1] + j) % nc) * nc + (c0[2] + k) % nc
                        idx.append(order[starts[kk]:starts[kk + 1]])
            idx = np.unique(np.concatenate(idx))
            d = x[idx] - pos[h]
            d -= L * np.rint(d / L)
            r = np.sqrt((d ** 2).sum(axis=1)) / r2
            b = np.digitize(r, edges) - 1
            ok = (b >= 0) & (b < len(mid))
            vol = 4 / 3 * np.pi * ((edges[1:] * r2) ** 3 - (edges[:-1] * r2) ** 3)
            gas_stack += np.bincount(b[ok], fg[idx][ok] * mp, len(mid)) / vol
            pe_num += np.bincount(b[ok], (fg[idx] * pe[idx])[ok], len(mid))
            pe_den += np.bincount(b[ok], fg[idx][ok], len(mid))
            model += gas_profile(m200[h], a, e2, fb, p, mid * r2) + summary.get("diffuse_gas_fraction", fb) * om * RHO_CRIT0
        gas_stack /= len(sel)
        model /= len(sel)
        pe_prof = pe_num / np.maximum(pe_den, 1e-300)
        curves.append((lo, hi, len(sel), gas_stack, model, pe_prof))
        inr = (mid >= 0.2) & (mid <= 2.0)
        worst = np.max(np.abs(gas_stack[inr] / model[inr] - 1))
        rows.append(f"| {lo:.0e}-{hi:.0e} | {len(sel)} | " +
                    " | ".join(f"{g / m_:.3f}" for g, m_ in zip(gas_stack[inr], model[inr])) +
                    f" | {worst:.3f} |")
    header = ("| M200c [Msun/h] | haloes | " + " | ".join(f"{v:.2f}" for v in mid[(mid >= 0.2) & (mid <= 2.0)]) +
              " | max abs dev |")
    table = ("Stacked gas density of the baryonified particles over the BCM gas profile (+ diffuse gas), "
             "r / r200c:\n\n" + header + "\n|" + "---|" * (3 + int(((mid >= 0.2) & (mid <= 2.0)).sum())) +
             "\n" + "\n".join(rows) + "\n")
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.5))
    for (lo, hi, n, g, m_, pp), col in zip(curves, ["C0", "C1", "C2"]):
        lab = f"M200c {lo:.0e}-{hi:.0e} ({n})"
        axs[0].loglog(mid, g, "o-", color=col, label=lab + " particles")
        axs[0].loglog(mid, m_, "--", color=col, label="model")
        axs[1].loglog(mid, pp, "o-", color=col, label=lab)
    axs[0].set_xlabel("r / r200c")
    axs[0].set_ylabel("gas density [(Msun/h)/(Mpc/h)^3]")
    axs[0].legend(fontsize=7)
    axs[1].set_xlabel("r / r200c")
    axs[1].set_ylabel("gas-mass-weighted P_e [keV/cm^3]")
    axs[1].legend(fontsize=7)
    fig.suptitle("Stacked profiles of the baryonified particles")
    fig.tight_layout()
    fig.savefig(os.path.join(out_dir, "baryons_profiles.png"), dpi=120)
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--case", action="append", required=True, help="LABEL=DIR")
    ap.add_argument("--fields", required=True, help="baryonify directory whose meshes are shown")
    ap.add_argument("--halos", help="FoF catalogue of the --fields case: stacked profiles")
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
        name = "baryonify_summary.json"  # caustic baryonify; in-situ outputs: baryons_summary.json
        if not os.path.isfile(os.path.join(d, name)):
            name = "baryons_summary.json"
        with open(os.path.join(d, name)) as f:
            sm = json.load(f)
        k, s = read_suppression(d)
        i = int(np.argmin(s))
        extra.append(
            f"- {label}: z = {1 / sm['a'] - 1:.2f}, {sm['haloes_baryonified']} haloes, "
            f"{sm['particles_displaced']} particles displaced (rms {sm['displacement_rms_mpc_h']:.4f}, "
            f"max {sm['displacement_max_mpc_h']:.3f} Mpc/h), minimum S = {s[i]:.4f} at k = {k[i]:.2f} h/Mpc; "
            f"gas {sm['gas_fraction']:.4f} + stars {sm['star_fraction']:.4f} of the mass "
            f"(Omega_b/Omega_m = {sm['cosmic_baryon_fraction']:.4f})" +
            (f"; baryonify wall time {sm['wall_seconds']:.1f} s" if "wall_seconds" in sm else ""))
    text = table + "\n\n" + "\n".join(extra) + "\n"
    if a.halos:
        name = "baryonify_summary.json"
        if not os.path.isfile(os.path.join(a.fields, name)):
            name = "baryons_summary.json"
        with open(os.path.join(a.fields, name)) as f:
            sm = json.load(f)
        text += "\n" + stacked_profiles(os.path.join(a.fields, "snapshot_bcm.hdf5"), a.halos, sm, a.output)
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
        # Cells without particles (voids of a coarse run) are left blank.
        pos = img > 0
        lg = np.ma.masked_where(~pos, np.log10(np.where(pos, img, 1.0)))
        vmin = np.percentile(lg.compressed(), 2) if pos.any() else 0
        im = ax.imshow(lg.T, origin="lower", extent=[0, L, 0, L], cmap=cmap, vmin=vmin)
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
                   vmin=np.percentile(ly, 2), vmax=ly.max())
    fig.colorbar(im, ax=ax, label="log10 y")
    ax.set_xlabel("x [Mpc/h]")
    ax.set_ylabel("y [Mpc/h]")
    ax.set_title(f"Compton-y through the box along z (mean y = {y.mean():.2e})")
    fig.tight_layout()
    fig.savefig(os.path.join(a.output, "baryons_ymap.png"), dpi=120)


if __name__ == "__main__":
    main()
