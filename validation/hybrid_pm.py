#!/usr/bin/env python3
"""Hybrid PM validation (issue 15): runs against a high-resolution reference of the same seed.

usage: hybrid_pm.py --reference DIR --run LABEL=DIR [--run LABEL=DIR ...]
                    [--a 1.0] [--grid 128] [--kmax-pm K] -o OUTPREFIX

For the reference directory and every run directory it reads snapshot_a<a>.hdf5 (Gadget-4
layout: /Header BoxSize, /PartType1/Coordinates in Mpc/h, /PartType1/ParticleIDs), paints the
particles with CIC on a grid^3 periodic mesh, deconvolves the CIC window and measures, in
shells of width k_F = 2 pi / L centred on integer multiples of k_F up to the grid Nyquist:
  P(k) of the run and of the reference, P/P_ref - 1, and r(k) = P_xr / sqrt(P_xx P_rr).
Shot noise is not subtracted (run and reference have the same particles, so it is common to
both). It also measures the rms distance [Mpc/h] between the particles of the run and the
reference with the same ParticleIDs (nearest periodic image).

Writes OUTPREFIX.csv (per k bin: k, modes, P_ref, and per run P, P/P_ref - 1, r),
OUTPREFIX.md (the summary table, also printed) and OUTPREFIX.png (P/P_ref - 1 and 1 - r).
kmax-pm, the last scale of the "PM" column, is half the Nyquist frequency of the run's PM mesh,
pi * mesh / box / 2, with simulation.mesh from the snapshot's /Parameters attributes; --kmax-pm
sets it for every run instead.
"""
import argparse
import os
import sys

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

CHUNK = 1 << 21  # particles read and painted at a time (keeps memory modest at 256^3)


def snapshot_path(directory, a):
    return os.path.join(directory, f"snapshot_a{a:.4f}.hdf5")


class Snapshot:
    """An open snapshot: box, particle count, the run's PM mesh (if recorded), chunked reads."""

    def __init__(self, path):
        if not os.path.isfile(path):
            sys.exit(f"hybrid_pm.py: {path}: no such file")
        self.path = path
        self.f = h5py.File(path, "r")
        self.box = float(self.f["Header"].attrs["BoxSize"])
        self.time = float(self.f["Header"].attrs.get("Time", np.nan))
        self.x = self.f["PartType1/Coordinates"]
        self.ids = self.f["PartType1/ParticleIDs"]
        self.n = self.x.shape[0]
        self.mesh = None
        if "Parameters" in self.f and "simulation.mesh" in self.f["Parameters"].attrs:
            self.mesh = int(self.f["Parameters"].attrs["simulation.mesh"])

    def chunks(self):
        for i in range(0, self.n, CHUNK):
            j = min(i + CHUNK, self.n)
            yield self.x[i:j].astype(np.float64), self.ids[i:j].astype(np.int64)

    def close(self):
        self.f.close()


def cic_density(snap, grid):
    """Density contrast delta on a grid^3 periodic mesh, CIC assignment."""
    ng3 = grid ** 3
    rho = np.zeros(ng3, dtype=np.float64)
    scale = grid / snap.box
    for x, _ in snap.chunks():
        u = x * scale
        i0 = np.floor(u)
        f1 = u - i0  # weight of the upper neighbour
        f0 = 1.0 - f1
        i0 = i0.astype(np.int64) % grid
        i1 = (i0 + 1) % grid
        idx = ((i0[:, 0], f0[:, 0]), (i1[:, 0], f1[:, 0]))
        idy = ((i0[:, 1], f0[:, 1]), (i1[:, 1], f1[:, 1]))
        idz = ((i0[:, 2], f0[:, 2]), (i1[:, 2], f1[:, 2]))
        for ix, wx in idx:
            for iy, wy in idy:
                base = (ix * grid + iy) * grid
                wxy = wx * wy
                for iz, wz in idz:
                    rho += np.bincount(base + iz, weights=wxy * wz, minlength=ng3)
    rho /= snap.n / ng3
    rho -= 1.0
    return rho.reshape(grid, grid, grid)


def cic_window(grid):
    """CIC window W(k) on the rfftn half-mesh: prod_i sinc^2(pi n_i / grid)."""
    n = np.fft.fftfreq(grid, d=1.0 / grid)
    nz = np.fft.rfftfreq(grid, d=1.0 / grid)
    wx = np.sinc(n / grid) ** 2
    wz = np.sinc(nz / grid) ** 2
    return wx[:, None, None] * wx[None, :, None] * wz[None, None, :]


def delta_k(snap, grid, window):
    """Fourier modes of delta, CIC-deconvolved, normalised so that P = |d|^2 * V."""
    d = np.fft.rfftn(cic_density(snap, grid))
    d /= grid ** 3
    d /= window
    return d


class Shells:
    """Shells of width k_F centred on m k_F, m = 1 .. grid/2 (the Nyquist frequency)."""

    def __init__(self, grid, box):
        kf = 2 * np.pi / box
        n = np.fft.fftfreq(grid, d=1.0 / grid)
        nz = np.fft.rfftfreq(grid, d=1.0 / grid)
        nmag = np.sqrt(n[:, None, None] ** 2 + n[None, :, None] ** 2 + nz[None, None, :] ** 2)
        # rfftn keeps kz >= 0: the modes with 0 < kz < Nyquist stand for their mirror image too.
        w = np.full(nz.shape, 2.0)
        w[0] = 1.0
        if grid % 2 == 0:
            w[-1] = 1.0
        self.nbins = grid // 2
        b = np.rint(nmag).astype(np.int64).ravel()
        keep = (b >= 1) & (b <= self.nbins)
        self.bin = b[keep] - 1
        self.keep = keep
        self.weight = np.broadcast_to(w[None, None, :], nmag.shape).ravel()[keep]
        self.modes = np.bincount(self.bin, weights=self.weight, minlength=self.nbins)
        ksum = np.bincount(self.bin, weights=self.weight * nmag.ravel()[keep], minlength=self.nbins)
        self.k = kf * ksum / np.maximum(self.modes, 1)
        self.volume = box ** 3

    def average(self, field):
        s = np.bincount(self.bin, weights=self.weight * field.ravel()[self.keep],
                        minlength=self.nbins)
        return s / np.maximum(self.modes, 1)

    def power(self, a, b=None):
        prod = (a * np.conj(a)).real if b is None else (a * np.conj(b)).real
        return self.volume * self.average(prod)


def reference_positions(snap):
    """Reference positions ordered by ParticleID and the sorted IDs (float32 to save memory)."""
    ids = snap.ids[:].astype(np.int64)
    x = np.empty((snap.n, 3), dtype=np.float32)
    lo = int(ids.min())
    if int(ids.max()) - lo == snap.n - 1 and len(np.unique(ids)) == snap.n:
        x[ids - lo] = snap.x[:]  # IDs are a permutation of a contiguous range: no sort needed
        return x, None, lo
    order = np.argsort(ids)
    x[:] = snap.x[:][order]
    return x, ids[order], lo


def rms_displacement(run, ref_x, ref_ids_sorted, id_lo, box):
    """rms distance of the particles with equal IDs, nearest periodic image [Mpc/h]."""
    if run.n != ref_x.shape[0]:
        return np.nan
    s2 = 0.0
    for x, ids in run.chunks():
        if ref_ids_sorted is None:
            j = ids - id_lo
            if j.min() < 0 or j.max() >= ref_x.shape[0]:
                return np.nan
        else:
            j = np.searchsorted(ref_ids_sorted, ids)
            j = np.minimum(j, len(ref_ids_sorted) - 1)
            if not np.array_equal(ref_ids_sorted[j], ids):
                return np.nan
        dx = x - ref_x[j]
        dx -= box * np.rint(dx / box)
        s2 += float(np.sum(dx * dx))
    return np.sqrt(s2 / run.n)


def max_abs(y, k, kmax):
    sel = k <= kmax * (1 + 1e-9)
    return float(np.max(np.abs(y[sel]))) if np.any(sel) else np.nan


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--reference", required=True, help="reference run directory")
    ap.add_argument("--run", action="append", required=True, metavar="LABEL=DIR",
                    help="a run to compare (repeatable)")
    ap.add_argument("--a", type=float, default=1.0, help="scale factor of the snapshots (1.0)")
    ap.add_argument("--grid", type=int, default=128, help="analysis mesh per side (128)")
    ap.add_argument("--kmax-pm", type=float, default=None,
                    help="k [h/Mpc] of the 'PM' column for every run (default: pi * mesh / box / 2 "
                         "with the run's simulation.mesh)")
    ap.add_argument("--r-baseline", default="PGD", metavar="LABEL",
                    help="the run whose r(k) every other run's is compared with, bin by bin up to "
                         "its k_pm (default PGD; no column when there is no such run)")
    ap.add_argument("-o", "--output", required=True, help="output prefix (.csv, .md, .png)")
    args = ap.parse_args()
    if args.grid < 4 or args.grid % 2:
        sys.exit("hybrid_pm.py: --grid: expected an even integer >= 4")

    runs = []
    for spec in args.run:
        label, sep, directory = spec.partition("=")
        if not sep or not label or not directory:
            sys.exit(f"hybrid_pm.py: --run {spec}: expected LABEL=DIR")
        runs.append((label, directory))

    ref = Snapshot(snapshot_path(args.reference, args.a))
    box = ref.box
    window = cic_window(args.grid)
    shells = Shells(args.grid, box)
    k = shells.k
    d_ref = delta_k(ref, args.grid, window)
    p_ref = shells.power(d_ref)
    ref_x, ref_ids, id_lo = reference_positions(ref)
    ref.close()

    results = []
    for label, directory in runs:
        snap = Snapshot(snapshot_path(directory, args.a))
        if abs(snap.box - box) > 1e-9 * box:
            sys.exit(f"hybrid_pm.py: {snap.path}: box {snap.box} differs from the reference's {box}")
        if abs(snap.time - ref.time) > 1e-6:
            print(f"warning: {label}: snapshot a = {snap.time} but reference a = {ref.time}",
                  file=sys.stderr)
        d = delta_k(snap, args.grid, window)
        p = shells.power(d)
        pxr = shells.power(d, d_ref)
        del d
        rms = rms_displacement(snap, ref_x, ref_ids, id_lo, box)
        if np.isnan(rms):
            print(f"warning: {label}: particle IDs do not match the reference's; no rms error",
                  file=sys.stderr)
        if args.kmax_pm is not None:
            kpm = args.kmax_pm
        elif snap.mesh is not None:
            kpm = np.pi * snap.mesh / box / 2
        else:
            kpm = np.nan
            print(f"warning: {label}: no simulation.mesh in {snap.path}; give --kmax-pm",
                  file=sys.stderr)
        snap.close()
        ratio = p / p_ref - 1
        r = pxr / np.sqrt(p * p_ref)
        results.append(dict(label=label, p=p, ratio=ratio, r=r, rms=rms, kpm=kpm))

    # CSV
    header = ["k", "modes", "P_ref"]
    cols = [k, shells.modes, p_ref]
    for res in results:
        header += [f"P_{res['label']}", f"ratio_m1_{res['label']}", f"r_{res['label']}"]
        cols += [res["p"], res["ratio"], res["r"]]
    np.savetxt(args.output + ".csv", np.column_stack(cols), delimiter=",", header=",".join(header),
               comments="", fmt="%.8e")

    # Markdown summary
    knyq = np.pi * args.grid / box
    # r against the baseline's in every bin up to k_pm: the smallest r - r_baseline (negative: the
    # run is below the baseline somewhere), as the must-show "r(k) at least PGD's at every k" asks.
    base = next((res for res in results if res["label"] == args.r_baseline), None)
    base_head = f" min (r - r_{args.r_baseline}), k<=k_pm |" if base else ""

    def r_shortfall(res):
        sel = k <= res["kpm"] * (1 + 1e-9)
        return float(np.min(res["r"][sel] - base["r"][sel]))

    lines = [
        f"Hybrid PM at a = {args.a:g} against {args.reference} (analysis mesh {args.grid}^3, "
        f"CIC deconvolved, k_F = {2 * np.pi / box:.4f} h/Mpc, k <= {knyq:.3f} h/Mpc; shot noise "
        f"not subtracted)",
        "",
        "| run | max abs(P/P_ref-1), k<=0.5 | k<=1 | k<=k_pm (k_pm) | r(0.5) | r(1.0) | "
        "min r, k<=1 | rms dx [Mpc/h] |" + base_head,
        "|---|---|---|---|---|---|---|---|" + ("---|" if base else ""),
    ]
    for res in results:
        kpm = res["kpm"]
        r1 = np.interp(1.0, k, res["r"])
        rmin = min(np.min(res["r"][k <= 1.0 * (1 + 1e-9)]), r1)  # the bins and r(1.0) itself
        lines.append(
            f"| {res['label']} | {max_abs(res['ratio'], k, 0.5):.4f} | "
            f"{max_abs(res['ratio'], k, 1.0):.4f} | "
            f"{max_abs(res['ratio'], k, kpm):.4f} ({kpm:.3f}) | "
            f"{np.interp(0.5, k, res['r']):.5f} | {r1:.5f} | {rmin:.5f} | {res['rms']:.4f} |" +
            (f" {r_shortfall(res):+.1e} |" if base else ""))
    table = "\n".join(lines) + "\n"
    with open(args.output + ".md", "w") as f:
        f.write(table)
    sys.stdout.write(table)

    # Plot
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(7, 7),
                                   gridspec_kw=dict(height_ratios=[1, 1]))
    ax1.axhspan(-0.05, 0.05, color="0.92", lw=0)
    ax1.axhspan(-0.02, 0.02, color="0.82", lw=0)
    ax1.axhline(0, color="k", lw=0.6)
    for res in results:
        ax1.semilogx(k, res["ratio"], label=res["label"])
        ax2.loglog(k, np.maximum(1 - res["r"], 1e-8), label=res["label"])
    for kpm in sorted({res["kpm"] for res in results if np.isfinite(res["kpm"])}):
        for ax in (ax1, ax2):
            ax.axvline(kpm, color="k", ls=":", lw=1)
    ax1.set_ylabel(r"$P/P_\mathrm{ref} - 1$")
    lo = min(-0.1, min(np.min(res["ratio"]) for res in results) * 1.1)
    hi = max(0.1, max(np.max(res["ratio"]) for res in results) * 1.1)
    ax1.set_ylim(max(lo, -1.0), min(hi, 1.0))
    ax1.legend(fontsize=8)
    ax1.set_title(f"a = {args.a:g}: runs against the reference (grey: 2%, 5%; "
                  f"dotted: half the PM Nyquist)", fontsize=9)
    ax2.set_ylabel(r"$1 - r(k)$")
    ax2.set_xlabel(r"$k$ [$h$/Mpc]")
    ax2.set_xlim(k[0] * 0.9, k[-1] * 1.05)
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(args.output + ".png", dpi=120)


if __name__ == "__main__":
    main()
