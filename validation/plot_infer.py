#!/usr/bin/env python3
"""Table and plots of a `caustic infer` mock (validation/infer_mock.sh).

  plot_infer.py OUTDIR

Writes OUTDIR/infer_table.md (r(k), T(k) of the reconstructed linear density at k = 0.1, 0.2,
0.5 h/Mpc against the thresholds of issue 19; the MAP's -log posterior against the truth's; time
and memory) and OUTDIR/infer_slices.png, infer_rk.png, infer_loss.png.

The baseline beside the MAP is the data itself: the best linear filter of the data in each |k|
shell (a Wiener filter with the realisation's own spectra) has the data's r(k) with the truth,
since a factor per shell leaves r unchanged. Against the final field this is the noise limit
sqrt(P / (P + P_N)) of a Gaussian field; against the linear density it is what linear
reconstruction without a forward model can reach.
"""
import json
import os
import sys

import h5py
import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def interp(k, v, k0):
    ok = np.isfinite(v)
    return float(np.interp(k0, k[ok], v[ok])) if ok.sum() > 1 and k0 <= k[ok].max() else float("nan")


def shell_r(a, b, box):
    """r(k) in shells of width k_f (nearest integer |m|) of two rfftn transforms of an n^3 mesh."""
    n = a.shape[0]
    kf = 2 * np.pi / box
    m = np.fft.fftfreq(n, 1.0 / n)
    mz = np.arange(n // 2 + 1)
    k = kf * np.sqrt(m[:, None, None] ** 2 + m[None, :, None] ** 2 + mz[None, None, :] ** 2)
    # Modes of the half space stand for their conjugates too, except the kz = 0 and Nyquist planes.
    w = np.broadcast_to(np.where((mz == 0) | (mz == n // 2), 1.0, 2.0)[None, None, :], k.shape)
    shell = np.floor(k / kf + 0.5).astype(int).ravel()

    def total(v):
        return np.bincount(shell, (w * v).ravel())

    cross, aa, bb = total((a * b.conj()).real), total(np.abs(a) ** 2), total(np.abs(b) ** 2)
    kmean = total(k) / np.maximum(total(np.ones_like(k)), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return kmean[1:], (cross / np.sqrt(aa * bb))[1:]


def data_baseline(m, l, box):
    """r(k) of the data with the final truth (mesh) and with the linear truth (lattice modes)."""
    d = np.fft.rfftn(m["Fields/data"][:].astype(np.float64))
    kf, rf = shell_r(d, np.fft.rfftn(m["Fields/truth"][:].astype(np.float64)), box)
    lin = l["Fields/linear_density_truth"][:].astype(np.float64)
    n, nl = d.shape[0], lin.shape[0]
    idx = np.r_[0:nl // 2, -nl // 2:0] % n  # the lattice's modes within the mesh's
    kl, rl = shell_r(d[np.ix_(idx, idx, np.arange(nl // 2 + 1))], np.fft.rfftn(lin), box)
    return kf, rf, kl, rl


def main():
    out = sys.argv[1]
    s = json.load(open(os.path.join(out, "inference_summary.json")))
    inf = s["inference"]
    rec = np.loadtxt(os.path.join(out, "inference_reconstruction.txt"))
    k, r, T, rf = rec[:, 0], rec[:, 3], rec[:, 4], rec[:, 8]
    with h5py.File(os.path.join(out, "inference_map_mesh.hdf5"), "r") as m, \
            h5py.File(os.path.join(out, "inference_map_lattice.hdf5"), "r") as l:
        kdf, rdf, kdl, rdl = data_baseline(m, l, float(m["Header"].attrs["BoxSize"]))
    rows = []
    for k0, need in [(0.1, 0.98), (0.2, 0.9), (0.5, 0.6)]:
        rk = interp(k, r, k0)
        rows.append((k0, rk, interp(k, T, k0), interp(k, rf, k0), interp(kdl, rdl, k0),
                     interp(kdf, rdf, k0), need,
                     "yes" if rk >= need else ("no" if np.isfinite(rk) else "beyond k_Nyq")))
    ratio = inf["map"]["minus_log_posterior"] / inf["truth"]["minus_log_posterior"]
    with open(os.path.join(out, "infer_table.md"), "w") as f:
        f.write("| k [h/Mpc] | r(k) linear | T(k) linear | r(k) final field | data's r: linear | "
                "data's r: final | needed r (linear) | met |\n")
        f.write("|---|---|---|---|---|---|---|---|\n")
        for k0, rk, tk, rfk, rdlk, rdfk, need, ok in rows:
            f.write(f"| {k0} | {rk:.3f} | {tk:.3f} | {rfk:.3f} | {rdlk:.3f} | {rdfk:.3f} | >= {need} "
                    f"| {ok} |\n")
        f.write("\nData's r: the data against the truth, the r(k) of the best linear filter of the data "
                "in each |k| shell (no forward model).\n")
        f.write(f"\n-log posterior: MAP {inf['map']['minus_log_posterior']:.1f}, truth "
                f"{inf['truth']['minus_log_posterior']:.1f} (ratio {ratio:.4f}; needed <= 1.01)\n")
        f.write(f"\n{inf['iterations']} iterations, {inf['evaluations']} posterior evaluations, "
                f"{inf['gradients']} gradients; {s['ranks']} ranks, {s['wall_seconds']:.0f} s; peak "
                f"memory per rank {max(s['peak_memory_bytes_per_rank']) / 2**30:.2f} GB\n")
        if inf["map"].get("parameters"):
            f.write(f"\nMAP parameters: {inf['map']['parameters']} (truth {inf['truth']['parameters']})\n")
    print(open(os.path.join(out, "infer_table.md")).read())

    with h5py.File(os.path.join(out, "inference_map_mesh.hdf5"), "r") as m, \
            h5py.File(os.path.join(out, "inference_map_lattice.hdf5"), "r") as l:
        n = m["Fields/data"].shape[0]
        nl = l["Fields/noise"].shape[0]
        panels = [("data", m["Fields/data"][n // 2]), ("truth (final)", m["Fields/truth"][n // 2]),
                  ("MAP model (final)", m["Fields/model"][n // 2]),
                  ("truth (linear)", l["Fields/linear_density_truth"][nl // 2]),
                  ("MAP (linear)", l["Fields/linear_density"][nl // 2])]
    fig, axes = plt.subplots(1, 5, figsize=(20, 4.4))
    for ax, (name, img) in zip(axes, panels):
        lim = np.percentile(np.abs(panels[1][1] if "final" in name or name == "data" else panels[3][1]), 99)
        ax.imshow(img.T, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    fig.savefig(os.path.join(out, "infer_slices.png"), dpi=90)

    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.plot(k, r, label="r(k), linear density")
    ax.plot(k, T, label="T(k), linear density")
    ax.plot(k, rf, "--", label="r(k), final field")
    ax.plot(kdl, rdl, ":", color="C0", label="data's r(k) with the linear truth")
    ax.plot(kdf, rdf, ":", color="C2", label="data's r(k) with the final truth")
    for k0, need in [(0.1, 0.98), (0.2, 0.9), (0.5, 0.6)]:
        ax.plot([k0], [need], "kv")
    ax.set_xscale("log")
    ax.set_xlabel("k [h/Mpc]")
    ax.set_ylim(0, 1.1)
    ax.legend()
    ax.set_title("reconstruction against the truth (triangles: issue 19's r thresholds)")
    fig.tight_layout()
    fig.savefig(os.path.join(out, "infer_rk.png"), dpi=90)

    loss = np.genfromtxt(os.path.join(out, "inference_loss.csv"), delimiter=",")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for st in np.unique(loss[:, 0]):
        sel = loss[:, 0] == st
        ax.semilogy(loss[sel, 2], loss[sel, 4], label=f"stage {int(st)}: R = {loss[sel, 3][0]:g} Mpc/h")
    ax.axhline(inf["truth"]["minus_log_posterior"], color="k", ls=":", label="truth (R = 0)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("-log posterior")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(out, "infer_loss.png"), dpi=90)


if __name__ == "__main__":
    main()
