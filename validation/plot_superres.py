#!/usr/bin/env python3
"""Validation plot of the super-resolution emulator applied in-situ: projected slabs of the
run's density (input), the emulator's output and the high-resolution truth from the same white
noise, and their power spectra with ratios to the truth; prints the ratio table and the
cell-by-cell correlation with the truth.

usage: plot_superres.py INPUT.hdf5 EMULATED.hdf5 TRUTH.hdf5 -o OUT.png
(fields under /Fields: the first dataset of each file is used)
"""
import argparse

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def load(path):
    with h5py.File(path, "r") as f:
        name = sorted(f["Fields"].keys())[0]
        return f["Fields/" + name][...].astype(np.float64), float(f["Header"].attrs["BoxSize"])


def power(d, L):
    """P(k) = V |delta_k|^2 / N^6 in shells of width k_F (no window correction: all three
    fields are painted the same way)."""
    n = d.shape[0]
    dk = np.fft.rfftn(d)
    p = np.abs(dk) ** 2 * L**3 / n**6
    kf = 2 * np.pi / L
    kx = np.fft.fftfreq(n, 1.0 / n)
    kz = np.fft.rfftfreq(n, 1.0 / n)
    k = np.sqrt(kx[:, None, None] ** 2 + kx[None, :, None] ** 2 + kz[None, None, :] ** 2)
    w = np.ones_like(k)
    w[:, :, 1:-1] = 2  # the rfft half-space counts the conjugate modes once
    b = np.rint(k).astype(int)
    nb = n // 2
    sel = (b > 0) & (b <= nb)
    cnt = np.bincount(b[sel], weights=w[sel], minlength=nb + 1)
    ps = np.bincount(b[sel], weights=(w * p)[sel], minlength=nb + 1)
    ks = np.bincount(b[sel], weights=(w * k)[sel], minlength=nb + 1)
    m = cnt > 0
    return ks[m] / cnt[m] * kf, ps[m] / cnt[m]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("input")
    ap.add_argument("emulated")
    ap.add_argument("truth")
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    (a, L), (e, _), (t, _) = load(args.input), load(args.emulated), load(args.truth)
    n = a.shape[0]
    fig, axes = plt.subplots(1, 4, figsize=(20, 4.6), constrained_layout=True)
    th = max(1, n // 16)
    vmin, vmax = None, None
    for ax, f, title in zip(axes[:3], (a, e, t), ("run (input)", "emulated", "high-resolution truth")):
        img = np.log10(np.clip(1.0 + f[:, :, :th].mean(axis=2), 1e-2, None))
        if vmin is None:
            vmin, vmax = np.percentile(img, [1, 99.8])
        im = ax.imshow(img.T, origin="lower", extent=[0, L, 0, L], cmap="magma", vmin=vmin, vmax=vmax)
        ax.set_title(title)
        ax.set_xlabel(r"$x$ [$h^{-1}$Mpc]")
    # One colour scale for the three slices.
    fig.colorbar(im, ax=list(axes[:3]), label=r"$\log_{10}(1 + \delta)$, slab mean", shrink=0.9, pad=0.01)
    ax = axes[3]
    kt, pt = power(t, L)
    print("# k [h/Mpc]  P_input/P_truth  P_emulated/P_truth")
    for f, lab, c in ((a, "run (input)", "C0"), (e, "emulated", "C3")):
        k, p = power(f, L)
        ax.semilogx(k, p / pt, color=c, label=lab)
    ka, pa = power(a, L)
    ke, pe = power(e, L)
    for i in range(0, len(kt), max(1, len(kt) // 12)):
        print("%.3f  %.3f  %.3f" % (kt[i], pa[i] / pt[i], pe[i] / pt[i]))
    ax.axhline(1, color="k", lw=0.8)
    ax.set_xlabel(r"$k$ [$h$/Mpc]")
    ax.set_ylabel(r"$P(k) / P_\mathrm{truth}(k)$")
    ax.set_ylim(0.5, 1.5)
    ax.legend()
    r_in = np.corrcoef(a.ravel(), t.ravel())[0, 1]
    r_em = np.corrcoef(e.ravel(), t.ravel())[0, 1]
    print("cell correlation with the truth: input %.4f, emulated %.4f" % (r_in, r_em))
    ax.set_title("correlation with truth: %.3f -> %.3f" % (r_in, r_em))
    fig.savefig(args.output, dpi=110)
    print("wrote " + args.output)


if __name__ == "__main__":
    main()
