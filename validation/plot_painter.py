#!/usr/bin/env python3
"""Baryon painters against the BCM truth on held-out seeds and held-out BCM parameters.

Reads what validation/painter.sh made under OUT: design.txt, the truth
bcm_<seed>_<log10_mc>_<theta_ej>/baryon_fields.hdf5 (`caustic baryonify`), the in-situ painter
outputs insitu_<...>/painter_a1.0000.hdf5 (U-Net) and, at the LDL's parameter point,
ldl_gas_density_a1.0000.hdf5 / ldl_electron_pressure_a1.0000.hdf5, and the FoF catalogues of the
dark-matter-only runs. Prints a table (stdout) and writes OUT/painter_power.png,
OUT/painter_profiles.png, OUT/painter_slices.png.

Measures (all on the 128^3 field mesh, 0.5 Mpc/h cells; spectra of CIC-painted fields without
deconvolution, identical for truth and painter):
  S(k) = P_matter / P_dmo of the painter over the truth's, k <= 5 h/Mpc;
  gas density r(k) and T(k) = sqrt(P_painter / P_truth);
  electron pressure P(k) ratio (both fields over the truth's mean);
  stacked gas density and electron pressure profiles (mean over voxels in shells of r / R200m,
  0.2-2) in three FoF mass bins, painter over truth.
"""
import argparse
import os

import h5py
import numpy as np

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

FIELDS = ("matter_density", "gas_density", "gas_temperature", "electron_pressure")
K_TABLE = (0.3, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
MASS_BINS = ((12.5, 13.0), (13.0, 13.5), (13.5, 15.5))  # log10 M_FoF [Msun/h]
R_EDGES = np.array([0.2, 0.35, 0.6, 1.0, 1.5, 2.0])      # r / R200m


def read(path, name):
    with h5py.File(path, "r") as f:
        return f["Fields/" + name][...].astype(np.float64)


def spectra(a, b, box):
    """Auto and cross power of two fields (their own contrasts unless given), log bins."""
    n = a.shape[0]
    fa, fb = np.fft.rfftn(a), np.fft.rfftn(b)
    kf = 2 * np.pi / box
    kx = np.fft.fftfreq(n, 1.0 / n) * kf
    kz = np.fft.rfftfreq(n, 1.0 / n) * kf
    k = np.sqrt(kx[:, None, None] ** 2 + kx[None, :, None] ** 2 + kz[None, None, :] ** 2)
    w = np.ones_like(k)
    w[:, :, 1:-1] = 2.0  # the rfft half space
    edges = np.geomspace(kf, np.pi * n / box, 26)
    idx = np.digitize(k.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < len(edges) - 1)

    def binned(v):
        return np.bincount(idx[ok], (w.ravel() * v.ravel())[ok], len(edges) - 1)
    cnt = binned(np.ones_like(k))
    kk = binned(k) / np.maximum(cnt, 1)
    paa = binned(np.abs(fa) ** 2) / np.maximum(cnt, 1)
    pbb = binned(np.abs(fb) ** 2) / np.maximum(cnt, 1)
    pab = binned((fa * np.conj(fb)).real) / np.maximum(cnt, 1)
    good = cnt > 0
    return kk[good], paa[good], pbb[good], pab[good]


def at(k, v, k0):
    return v[np.argmin(np.abs(np.log(k / k0)))]


def profiles(field, haloes, box):
    """Stacked mean of `field` in shells of r / R per mass bin: array (bins, shells)."""
    n = field.shape[0]
    cell = box / n
    out = np.full((len(MASS_BINS), len(R_EDGES) - 1), np.nan)
    pos, logm, rad = haloes
    for b, (lo, hi) in enumerate(MASS_BINS):
        sel = np.where((logm >= lo) & (logm < hi))[0]
        if len(sel) == 0:
            continue
        acc = np.zeros(len(R_EDGES) - 1)
        num = np.zeros(len(R_EDGES) - 1)
        for h in sel:
            m = int(np.ceil(2.0 * rad[h] / cell)) + 1
            c = pos[h] / cell
            i0 = np.floor(c).astype(int)
            ax = [np.arange(i0[d] - m, i0[d] + m + 1) for d in range(3)]
            sub = field[np.ix_(ax[0] % n, ax[1] % n, ax[2] % n)]
            dx = [(ax[d] - c[d]) * cell for d in range(3)]  # mesh points at i * cell
            r = np.sqrt(dx[0][:, None, None] ** 2 + dx[1][None, :, None] ** 2 +
                        dx[2][None, None, :] ** 2) / rad[h]
            j = np.digitize(r.ravel(), R_EDGES) - 1
            ok = (j >= 0) & (j < len(R_EDGES) - 1)
            s = np.bincount(j[ok], sub.ravel()[ok], len(R_EDGES) - 1)
            c_ = np.bincount(j[ok], None, len(R_EDGES) - 1)
            has = c_ > 0
            acc[has] += s[has] / c_[has]
            num[has] += 1
        out[b] = np.where(num > 0, acc / np.maximum(num, 1), np.nan)
    return out


def haloes_of(path):
    with h5py.File(path, "r") as f:
        pos = f["Group/GroupPos"][...].astype(np.float64)
        mass = f["Group/GroupMass"][...].astype(np.float64) * 1e10
        om = float(f["Header"].attrs["Omega0"])
        box = float(f["Header"].attrs["BoxSize"])
    rho_m = 2.775e11 * om  # (Msun/h) / (Mpc/h)^3
    rad = (3 * mass / (4 * np.pi * 200 * rho_m)) ** (1.0 / 3.0)
    return (pos, np.log10(mass), rad), box


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    a = ap.parse_args()
    out = a.out
    points = []
    for line in open(os.path.join(out, "design.txt")):
        if line.startswith("#"):
            continue
        seed, mc, th, role = line.split()
        if role == "heldout":
            points.append((seed, mc, th))
    rows, curves, prof = {}, {}, {}
    for seed, mc, th in points:
        tag = (mc, th)
        truth_f = os.path.join(out, "bcm_%s_%s_%s" % (seed, mc, th), "baryon_fields.hdf5")
        ins = os.path.join(out, "insitu_%s_%s_%s" % (seed, mc, th))
        unet_f = os.path.join(ins, "painter_a1.0000.hdf5")
        if not (os.path.exists(truth_f) and os.path.exists(unet_f)):
            print("missing", truth_f if not os.path.exists(truth_f) else unet_f)
            continue
        haloes, box = haloes_of(os.path.join(out, "seed_%s" % seed, "halos_a1p0000.0.hdf5"))
        dmo = read(truth_f, "dmo_density_contrast")
        t = {k: read(truth_f, k) for k in FIELDS}
        u = {k: read(unet_f, k) for k in FIELDS}
        painters = {"U-Net": u}
        lg = os.path.join(ins, "ldl_gas_density_a1.0000.hdf5")
        lp = os.path.join(ins, "ldl_electron_pressure_a1.0000.hdf5")
        if os.path.exists(lg) and os.path.exists(lp):
            painters["LDL"] = {"gas_density": read(lg, "gas_density"),
                               "electron_pressure": read(lp, "electron_pressure")}
        k, p_dmo, p_mt, _ = spectra(dmo, t["matter_density"] - 1, box)
        for name, p in painters.items():
            key = (name, tag)
            c = curves.setdefault(key, {"k": k, "n": 0})
            c["n"] += 1
            if "matter_density" in p:
                _, _, p_mu, _ = spectra(dmo, p["matter_density"] - 1, box)
                c["S_true"] = c.get("S_true", 0) + p_mt / p_dmo
                c["S_paint"] = c.get("S_paint", 0) + p_mu / p_dmo
            g_t, g_p = t["gas_density"], p["gas_density"]
            _, pa, pb, pab = spectra(g_p / g_p.mean() - 1, g_t / g_t.mean() - 1, box)
            c["r_gas"] = c.get("r_gas", 0) + pab / np.sqrt(pa * pb)
            c["T_gas"] = c.get("T_gas", 0) + np.sqrt(pa / pb)
            m = t["electron_pressure"].mean()
            _, pa, pb, pab = spectra(p["electron_pressure"] / m - 1, t["electron_pressure"] / m - 1, box)
            c["Pe_ratio"] = c.get("Pe_ratio", 0) + pa / pb
            c["r_pe"] = c.get("r_pe", 0) + pab / np.sqrt(pa * pb)
            for fld in ("gas_density", "electron_pressure"):
                pt = profiles(t[fld], haloes, box)
                pp = profiles(p[fld], haloes, box)
                pr = prof.setdefault((name, tag, fld), {"t": 0, "p": 0, "n": 0})
                pr["t"] = pr["t"] + pt
                pr["p"] = pr["p"] + pp
                pr["n"] += 1
        if seed == points[0][0] and tag == (points[0][1], points[0][2]):
            slices = (dmo, t, painters)

    # Table.
    print("# Baryon painters vs the BCM truth: held-out seeds %s, held-out BCM parameters"
          % sorted({s for s, _, _ in points}))
    print("# (means over the held-out seeds; 128^3 field mesh, 0.5 Mpc/h cells, k_Nyquist 6.28 h/Mpc)")
    head = "  ".join("%6.1f" % k0 for k0 in K_TABLE)
    for (name, tag), c in sorted(curves.items()):
        n = c["n"]
        k = c["k"]
        print("\n## %s, log10_mc = %s, theta_ej = %s (%d seeds)  k [h/Mpc]: %s" % (name, tag[0], tag[1], n, head))
        if "S_paint" in c:
            ratio = (c["S_paint"] / c["S_true"] - 1) * 100
            print("S_truth(k)                     " + "  ".join("%6.3f" % at(k, c["S_true"] / n, k0) for k0 in K_TABLE))
            print("S_painter / S_truth - 1 [%]    " + "  ".join("%+6.2f" % at(k, ratio, k0) for k0 in K_TABLE))
            sel = k <= 5.0
            print("max |S_painter / S_truth - 1| for k <= 5: %.2f%%" % np.abs(ratio[sel]).max())
        print("gas density r(k)               " + "  ".join("%6.3f" % at(k, c["r_gas"] / n, k0) for k0 in K_TABLE))
        print("gas density T(k)               " + "  ".join("%6.3f" % at(k, c["T_gas"] / n, k0) for k0 in K_TABLE))
        print("electron pressure P ratio      " + "  ".join("%6.3f" % at(k, c["Pe_ratio"] / n, k0) for k0 in K_TABLE))
        print("electron pressure r(k)         " + "  ".join("%6.3f" % at(k, c["r_pe"] / n, k0) for k0 in K_TABLE))
        sel = k <= 2.0
        print("min gas r(k) for k <= 2: %.3f; max |P_e ratio - 1| for k <= 3: %.1f%%" % (
            (c["r_gas"] / n)[sel].min(), 100 * np.abs(c["Pe_ratio"] / n - 1)[k <= 3.0].max()))
        for fld in ("gas_density", "electron_pressure"):
            pr = prof[(name, tag, fld)]
            ratio = pr["p"] / pr["t"]
            cells = ", ".join(
                "M %.1f-%.1f: %s" % (lo, hi, " ".join("%.2f" % v for v in ratio[b]))
                for b, (lo, hi) in enumerate(MASS_BINS))
            print("stacked %s painter/truth in r/R200m shells %s: %s; max |ratio - 1| %.0f%%" % (
                fld, "-".join("%.2g" % e for e in R_EDGES), cells, 100 * np.nanmax(np.abs(ratio - 1))))

    # Plots: spectra.
    fig, ax = plt.subplots(1, 3, figsize=(16, 4.6))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, ((name, tag), c) in enumerate(sorted(curves.items())):
        n, k = c["n"], c["k"]
        col = colours[i % len(colours)]
        lab = "%s (%s, %s)" % (name, tag[0], tag[1])
        if "S_paint" in c:
            ax[0].semilogx(k, c["S_true"] / n, color=col, lw=2, alpha=0.5)
            ax[0].semilogx(k, c["S_paint"] / n, "--", color=col, label=lab)
        ax[1].semilogx(k, c["r_gas"] / n, color=col, label=lab)
        ax[2].semilogx(k, c["Pe_ratio"] / n, color=col, label=lab)
    ax[0].set(xlabel="k [h/Mpc]", ylabel="S(k) (thick: BCM truth, dashed: painter)", title="matter suppression")
    ax[1].set(xlabel="k [h/Mpc]", ylabel="r(k)", title="gas density: painter x truth", ylim=(0.5, 1.01))
    ax[2].set(xlabel="k [h/Mpc]", ylabel="P_painter / P_truth", title="electron pressure power", ylim=(0, 2))
    ax[2].axhspan(0.9, 1.1, color="0.9")
    for x in ax:
        x.axvline(5.0, color="0.6", lw=0.8)
        x.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "painter_power.png"), dpi=110)

    # Profiles.
    fig, ax = plt.subplots(2, 3, figsize=(14, 7.5), sharex=True)
    rc = np.sqrt(R_EDGES[1:] * R_EDGES[:-1])
    for (name, tag, fld), pr in sorted(prof.items()):
        row = 0 if fld == "gas_density" else 1
        for b, (lo, hi) in enumerate(MASS_BINS):
            ls = "-" if name == "U-Net" else ":"
            ax[row, b].loglog(rc, pr["p"][b] / pr["n"], ls, label="%s (%s, %s)" % (name, tag[0], tag[1]))
            if name == "U-Net":
                ax[row, b].loglog(rc, pr["t"][b] / pr["n"], "k", lw=0.8, alpha=0.6)
            ax[row, b].set_title("%s, log10 M_FoF %.1f-%.1f" % (fld, lo, hi), fontsize=9)
    for x in ax[1]:
        x.set_xlabel("r / R200m")
    ax[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "painter_profiles.png"), dpi=110)

    # Slices.
    dmo, t, painters = slices
    z = dmo.shape[2] // 2
    panels = [("DM 1+delta", 1 + dmo), ("gas truth", t["gas_density"])]
    for name, p in painters.items():
        panels.append(("gas " + name, p["gas_density"]))
    panels += [("T truth", t["gas_temperature"]), ("T U-Net", painters["U-Net"]["gas_temperature"]),
               ("P_e truth", t["electron_pressure"])]
    for name, p in painters.items():
        panels.append(("P_e " + name, p["electron_pressure"]))
    fig, ax = plt.subplots(2, (len(panels) + 1) // 2, figsize=(3.2 * ((len(panels) + 1) // 2), 6.6))
    for x, (title, f) in zip(ax.ravel(), panels):
        sl = f[:, :, z - 2:z + 2].mean(axis=2)
        x.imshow(np.log10(np.maximum(sl, sl[sl > 0].min() if (sl > 0).any() else 1e-30)).T,
                 origin="lower", cmap="magma")
        x.set_title(title, fontsize=9)
        x.set_xticks([])
        x.set_yticks([])
    for x in ax.ravel()[len(panels):]:
        x.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "painter_slices.png"), dpi=110)


if __name__ == "__main__":
    main()
