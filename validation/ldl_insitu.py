#!/usr/bin/env python3
"""LDL painters applied in-situ on held-out seeds against the BCM truth of the same runs: the gas
density painter, the single electron pressure painter and the product painter (gas density x
temperature), as validation/ldl_painter.sh runs them (OUT/insitu_<seed>/{gas,pe,pe_product}
_a1.0000.hdf5 beside the truth OUT/seed_<seed>/baryons_a1.0000/baryon_fields.hdf5 and the FoF
catalogue of the dark-matter run OUT/seed_<seed>/halos_a1p0000.0.hdf5), and the painters with a
halo layer (ldl-fit --halo-layer), which read the run's own FoF catalogue, from a second run with
[halos] enabled: OUT/insitu_halo_<seed>/{gas_halo,pe_halo,matter_halo}_a1.0000.hdf5 (the last a
total-matter painter, judged by S(k) = P / P_dmo against the BCM's).

Prints, as means over the seeds: the power ratio P_painter/P_BCM and r(k) (fields over the
truth's mean, log bins as validation/plot_painter.py), the worst |P/P_BCM - 1| up to k = 3 h/Mpc
per seed, the stacked profiles painter/truth in three FoF mass bins and shells of r / R200m from
0.2 to 2 (plot_painter.py's), and the hooks' cost against the run's time stepping
(run_summary.json; for the halo-layer painters with and without the run's FoF); plots them in
OUT/ldl_insitu.png. Usage:
ldl_insitu.py OUT --seeds 401 402
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from plot_painter import MASS_BINS, R_EDGES, haloes_of, profiles, read, spectra  # noqa: E402

K_TABLE = (0.3, 0.5, 1.0, 2.0, 3.0, 5.0)
K_PRESSURE = 3.0  # h/Mpc: issue 17's range for the electron pressure's P(k)
HOOKS = (("insitu", "gas", "gas_density", "gas density"),
         ("insitu", "pe", "electron_pressure", "electron pressure, one painter"),
         ("insitu", "pe_product", "electron_pressure", "electron pressure, gas x temperature painters"),
         ("insitu_halo", "gas_halo", "gas_density", "gas density, halo layer"),
         ("insitu_halo", "pe_halo", "electron_pressure",
          "electron pressure, gas x temperature painters, halo layer"))
RUNS = ("insitu", "insitu_halo")
# The total matter moved around the haloes (ldl-fit --halo-displacement), judged by S(k):
# P_painted / P_BCM = S_painter(k) / S_BCM(k), against the dark-matter-only field's.
MATTER = ("insitu_halo", "matter_halo")
K_MATTER = 5.0  # h/Mpc: issue 17's range for S(k)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--seeds", nargs="+", type=int, required=True)
    a = ap.parse_args()
    res = {}
    cost = []
    matter = {"ratio": [], "dmo": [], "r": []}
    for seed in a.seeds:
        truth = os.path.join(a.out, f"seed_{seed}", "baryons_a1.0000", "baryon_fields.hdf5")
        haloes, box = haloes_of(os.path.join(a.out, f"seed_{seed}", "halos_a1p0000.0.hdf5"))
        for run in RUNS:
            d = os.path.join(a.out, f"{run}_{seed}")
            t = json.load(open(os.path.join(d, "run_summary.json")))["timings_seconds_max_over_ranks"]
            hooks = {h: t.get(f"step:observer:emulator:{h}", np.nan) for r, h, _, _ in HOOKS
                     if r == run}
            if run == MATTER[0]:
                hooks[MATTER[1]] = t.get(f"step:observer:emulator:{MATTER[1]}", np.nan)
            fof = t.get("step:observer:fof")
            stepping = t["time_stepping_total"] - sum(v for k, v in t.items()
                                                      if k.startswith("step:observer:"))
            cost.append((seed, run, stepping, hooks, fof))
        tm = read(truth, "matter_density")
        pm = read(os.path.join(a.out, f"{MATTER[0]}_{seed}", f"{MATTER[1]}_a1.0000.hdf5"),
                  "matter_density")
        k, pp, pt, px = spectra(pm - 1, tm - 1, box)
        _, pd, _, _ = spectra(read(truth, "dmo_density_contrast"), tm - 1, box)
        matter["k"] = k
        matter["ratio"].append(pp / pt)
        matter["dmo"].append(pd / pt)
        matter["r"].append(px / np.sqrt(pp * pt))
        for run, hook, field, _ in HOOKS:
            tf = read(truth, field)
            pf = read(os.path.join(a.out, f"{run}_{seed}", f"{hook}_a1.0000.hdf5"), field)
            m = tf.mean()
            k, pp, pt, px = spectra(pf / m - 1, tf / m - 1, box)
            r = res.setdefault(hook, {"k": k, "ratio": [], "r": [], "prof": []})
            r["ratio"].append(pp / pt)
            r["r"].append(px / np.sqrt(pp * pt))
            r["prof"].append(profiles(pf, haloes, box) / profiles(tf, haloes, box))
    print(f"# LDL painters in-situ vs the BCM truth, held-out seeds {a.seeds} (z = 0; means over "
          "the seeds unless said)")
    print("\n| painter | quantity | " + " | ".join(f"k = {k:g}" for k in K_TABLE) + " |")
    print("|---|---|" + "---|" * len(K_TABLE))
    for _, hook, field, label in HOOKS:
        r = res[hook]
        k = r["k"]

        def row(v):
            return " | ".join(f"{np.interp(np.log(q), np.log(k), v):.3f}" for q in K_TABLE)
        print(f"| {label} | P/P_BCM | {row(np.mean(r['ratio'], axis=0))} |")
        print(f"| {label} | r(k) | {row(np.mean(r['r'], axis=0))} |")
    print()
    for _, hook, field, label in HOOKS:
        r = res[hook]
        sel = r["k"] <= K_PRESSURE
        print(f"- {label}: max |P/P_BCM - 1| for k <= {K_PRESSURE:g} h/Mpc per seed: " +
              ", ".join(f"{100 * np.max(np.abs(q[sel] - 1)):.1f}%" for q in r["ratio"]) +
              "; min r(k) there " + ", ".join(f"{np.min(q[sel]):.3f}" for q in r["r"]))
    sel = matter["k"] <= K_MATTER
    print(f"\nTotal matter moved around the haloes ({MATTER[1]}), S_painter(k) / S_BCM(k) - 1 per "
          "seed, k = " + ", ".join(f"{q:g}" for q in K_TABLE) + ":")
    for seed, q, dmo, r in zip(a.seeds, matter["ratio"], matter["dmo"], matter["r"]):
        print(f"- seed {seed}: " + " / ".join(
            f"{100 * (np.interp(np.log(k0), np.log(matter['k']), q) - 1):+.1f}%" for k0 in K_TABLE) +
            f"; worst for k <= {K_MATTER:g} h/Mpc {100 * np.max(np.abs(q[sel] - 1)):.1f}% (no painter "
            f"{100 * np.max(np.abs(dmo[sel] - 1)):.1f}%); r(k = 5) "
            f"{np.interp(np.log(5.0), np.log(matter['k']), r):.4f}")
    print("\nStacked profiles, painter / BCM truth (mean over the seeds), shells of r / R200m "
          + ", ".join(f"{R_EDGES[i]:g}-{R_EDGES[i + 1]:g}" for i in range(len(R_EDGES) - 1)) + ":\n")
    print("| painter | log10 M_FoF [Msun/h] | shells | worst |")
    print("|---|---|---|---|")
    for _, hook, field, label in HOOKS:
        p = np.nanmean(res[hook]["prof"], axis=0)
        for b, (lo, hi) in enumerate(MASS_BINS):
            worst = np.nanmax(np.abs(p[b] - 1))
            print(f"| {label} | {lo:g}-{hi:g} | " + " / ".join(f"{v:.2f}" for v in p[b]) +
                  f" | {100 * worst:.0f}% |")
    print("\nCost in-situ (run_summary.json, max over ranks):")
    for seed, run, stepping, hooks, fof in cost:
        line = (f"- seed {seed} ({run}_{seed}): time stepping {stepping:.2f} s without the hooks; " +
                ", ".join(f"{h} {v:.2f} s ({100 * v / stepping:.0f}%)" for h, v in hooks.items()))
        if fof is not None:
            line += (f"; the run's FoF {fof:.2f} s ({100 * fof / stepping:.0f}%), which the halo "
                     "layer reads: with it " + ", ".join(
                         f"{h} {100 * (v + fof) / stepping:.0f}%" for h, v in hooks.items()))
        print(line)
    plot(os.path.join(a.out, "ldl_insitu.png"), a.seeds, res, matter)


def plot(path, seeds, res, matter):
    """S(k) of the matter painter, the pressure's P(k) and the stacked profiles of the painters that
    read the FoF catalogue against the plain ones."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3))
    k = matter["k"]
    for seed, q, dmo in zip(seeds, matter["ratio"], matter["dmo"]):
        ax[0].semilogx(k, 100 * (q - 1), label=f"halo displacement, seed {seed}")
        ax[0].semilogx(k, 100 * (dmo - 1), ":", label=f"no painter, seed {seed}")
    ax[0].axhspan(-1, 1, color="0.9")
    ax[0].set(xlabel="k [h/Mpc]", ylabel="S_painter / S_BCM - 1 [%]", ylim=(-5, 20),
              title="total matter")
    for hook, style in (("pe_product", ":"), ("pe_halo", "-")):
        r = res[hook]
        for seed, q in zip(seeds, r["ratio"]):
            ax[1].semilogx(r["k"], q, style, label=f"{hook}, seed {seed}")
    ax[1].axhspan(0.9, 1.1, color="0.9")
    ax[1].set(xlabel="k [h/Mpc]", ylabel="P / P_BCM", ylim=(0.5, 1.5), title="electron pressure")
    mid = 0.5 * (R_EDGES[1:] + R_EDGES[:-1])
    for hook, style in (("gas", ":"), ("gas_halo", "-"), ("pe_product", "--"), ("pe_halo", "-.")):
        p = np.nanmean(res[hook]["prof"], axis=0)
        for b, (lo, hi) in enumerate(MASS_BINS):
            ax[2].plot(mid, p[b], style, color=f"C{b}", label=f"{hook}, {lo:g}-{hi:g}")
    ax[2].axhspan(0.8, 1.2, color="0.9")
    ax[2].set(xlabel="r / R200m", ylabel="stacked profile / BCM", yscale="log",
              title="stacked profiles (mean over seeds)")
    for x in ax:
        x.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
