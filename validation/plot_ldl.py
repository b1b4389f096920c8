#!/usr/bin/env python3
"""LDL painter validation: held-out T(k) = sqrt(P_LDL / P_target) and r(k) of `caustic ldl-fit`
outputs (ldl.json), as a table (stdout) and a plot (OUTDIR/ldl_painter.png). For a total-matter
painter (field matter_density) P_LDL/P_target is S_LDL(k) / S_BCM(k), and the table adds the
dark-matter-only field's P_dmo/P_bcm from the same target files (what no painter gives) and the
worst |P/P_target - 1| up to k = 5 h/Mpc; for an electron pressure painter, the worst
|P/P_target - 1| up to k = 3 h/Mpc. A product painter (ldl-fit --factor) is labelled with its
factors.

Usage: plot_ldl.py FIT_DIR [FIT_DIR ...] -o OUTDIR
"""
import argparse
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

K_WORST = 5.0  # h/Mpc: issue 17's range for S(k)
K_PRESSURE = 3.0  # h/Mpc: issue 17's range for the electron pressure's P(k)


def shell_power(field, box):
    """Mean |m| [h/Mpc] and mean power (unnormalised) in shells round(|m|) = 1 .. N/2, as
    caustic ldl-fit's crossSpectra bins them."""
    n = field.shape[0]
    fk = np.fft.rfftn(field)
    m = np.fft.fftfreq(n, 1.0 / n)
    mz = np.arange(n // 2 + 1)
    mag = np.sqrt(m[:, None, None] ** 2 + m[None, :, None] ** 2 + mz[None, None, :] ** 2)
    w = np.full(mag.shape, 2.0)
    w[:, :, 0] = 1
    w[:, :, -1] = 1
    b = np.floor(mag + 0.5).astype(int).ravel()
    wsum = np.bincount(b, w.ravel())
    ksum = np.bincount(b, (w * mag).ravel())
    psum = np.bincount(b, (w * np.abs(fk) ** 2).ravel())
    sel = slice(1, n // 2 + 1)
    return ksum[sel] / wsum[sel] * 2 * np.pi / box, psum[sel] / wsum[sel]


def dmo_ratio(target, box):
    """P_dmo / P_bcm of a baryonify field file (dmo_density_contrast against matter_density)."""
    import h5py
    with h5py.File(target, "r") as h:
        bcm = h["Fields/matter_density"][...]
        dmo = h["Fields/dmo_density_contrast"][...]
    k, pb = shell_power(bcm, box)
    _, pd = shell_power(dmo, box)
    return k, pd / pb

K_TABLE = [0.3, 0.5, 1.0, 2.0, 3.0, 5.0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("fits", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    fig, axs = plt.subplots(1, 2, figsize=(11, 4.3))
    lines = ["| field | quantity | " + " | ".join(f"k = {k:g}" for k in K_TABLE) + " |",
             "|---|---|" + "---|" * len(K_TABLE)]
    notes = []
    for i, d in enumerate(a.fits):
        path = os.path.join(d, "ldl.json")
        if not os.path.isfile(path):
            sys.exit(f"{path} missing (run caustic ldl-fit first)")
        with open(path) as f:
            j = json.load(f)
        if not j["test"]:
            sys.exit(f"{path}: no held-out pairs")
        rows = [np.array(t["k_T_r"]) for t in j["test"]]
        k = rows[0][:, 0]
        tk = np.mean([r[:, 1] for r in rows], axis=0)
        rk = np.mean([r[:, 2] for r in rows], axis=0)
        name = j["field"]
        if j.get("factors"):
            name += " = " + " x ".join(f["field"] for f in j["factors"])
        interp = lambda y, kk=k: [np.interp(np.log(q), np.log(kk), y) if kk[0] <= q <= kk[-1] else np.nan
                                  for q in K_TABLE]
        lines.append(f"| {name} | T(k) | " + " | ".join(f"{v:.3f}" for v in interp(tk)) + " |")
        lines.append(f"| {name} | P_LDL/P_target | " + " | ".join(f"{v * v:.3f}" for v in interp(tk)) + " |")
        lines.append(f"| {name} | r(k) | " + " | ".join(f"{v:.3f}" for v in interp(rk)) + " |")
        if j["field"] == "electron_pressure":
            sel = k <= K_PRESSURE
            notes.append(f"- {name}, held-out pairs: max |P_LDL/P_BCM - 1| for k <= {K_PRESSURE:g} h/Mpc = " +
                         ", ".join(f"{100 * np.max(np.abs(r[sel, 1] ** 2 - 1)):.1f}%" for r in rows) +
                         "; min r(k) there " + ", ".join(f"{np.min(r[sel, 2]):.3f}" for r in rows))
        if j["field"] == "matter_density":
            sel = k <= K_WORST
            worst = [np.max(np.abs(r[sel, 1] ** 2 - 1)) for r in rows]
            ratios = [dmo_ratio(t["target"], j["box"]) for t in j["test"]]
            dmo = np.mean([q for _, q in ratios], axis=0)
            kd = ratios[0][0]
            lines.append("| matter_density | no painter: P_dmo/P_bcm | " + " | ".join(
                f"{v:.3f}" for v in interp(dmo, kd)) + " |")
            dworst = [np.max(np.abs(q[kd <= K_WORST] - 1)) for _, q in ratios]
            # A conditioned painter's held-out pairs carry their settings: name them.
            at = [" (" + ", ".join(f"{n.split('.')[-1]} {v:g}" for n, v in t["settings"].items()) + ")"
                  if t.get("settings") else "" for t in j["test"]]
            notes.append(f"- matter_density, held-out pairs: max |P_LDL/P_BCM - 1| for k <= {K_WORST:g} h/Mpc = " +
                         ", ".join(f"{100 * v:.2f}%{w}" for v, w in zip(worst, at)) + " (no painter: " +
                         ", ".join(f"{100 * v:.2f}%" for v in dworst) + ")")
        cond = j.get("conditioning", [])
        if cond:
            notes.append(f"- {j['field']}: conditioned on " + ", ".join(
                f"{c['name']} in [{c['min']:g}, {c['max']:g}]" for c in cond) +
                f" ({len(j['train'])} training pairs)")
        notes.append(f"- {name}: {j['layers']} layers{' (displacement only)' if j.get('displacement_only') else ''} on a {j['mesh']}^3 mesh (box {j['box']:g} Mpc/h), "
                     f"{j['iterations']} iterations ({j['stop']}), power weight {j.get('power_weight', 0):g}, training loss {j['loss_initial']:.4f} -> "
                     f"{j['loss_final']:.4f}, held-out loss " +
                     ", ".join(f"{t['loss']:.4f}" for t in j["test"]) +
                     "; parameters " + ", ".join(f"{n}={v:.4g}" for n, v in zip(j["parameter_names"], j["parameters"])))
        c = f"C{i}"
        axs[0].semilogx(k, tk, color=c, label=name)
        axs[1].semilogx(k, rk, color=c, label=name)
    for ax, lab in zip(axs, ["T(k) = sqrt(P_LDL / P_BCM)", "r(k)"]):
        ax.axhline(1, color="k", lw=0.5)
        ax.set_xlabel("k [h/Mpc]")
        ax.set_ylabel(lab)
        ax.legend(fontsize=8)
    axs[0].set_ylim(0.5, 1.5)
    axs[1].set_ylim(0, 1.05)
    fig.suptitle("LDL painter on held-out seeds against the BCM truth (z = 0)")
    fig.tight_layout()
    os.makedirs(a.output, exist_ok=True)
    fig.savefig(os.path.join(a.output, "ldl_painter.png"), dpi=120)
    print("\n".join(lines) + "\n\n" + "\n".join(notes))


if __name__ == "__main__":
    main()
