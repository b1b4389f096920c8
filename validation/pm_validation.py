#!/usr/bin/env python3
"""PM validation: the z = 0 power spectrum of a run against linear theory and halofit.

usage: pm_validation.py OUTPUT_DIR [-o PLOT.png]
Reads power_a1.0000.txt and linear_power.txt from the run directory, prints the ratio table
(measured / linear, measured / halofit, with the shot noise V/N subtracted) and plots it.
"""
import argparse
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from halofit import halofit  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("-o", "--output", default=None)
    ap.add_argument("--a", default="1.0000")
    args = ap.parse_args()

    table = os.path.join(args.run, "power_a%s.txt" % args.a)
    header = open(table).read()
    shot = float(re.search(r"shot noise V/N = ([0-9.eE+-]+)", header).group(1))
    knyq = float(re.search(r"k_nyquist_particles = ([0-9.eE+-]+)", header).group(1))
    om = float(re.search(r"Omega_m = ([0-9.eE+-]+)", open(os.path.join(args.run, "linear_power.txt")).read()).group(1))
    t = np.loadtxt(table)
    k, p, modes, plin = t[:, 0], t[:, 1] - shot, t[:, 2], t[:, 3]
    lin = np.loadtxt(os.path.join(args.run, "linear_power.txt"))
    a = float(args.a)
    growth2 = plin[0] / np.interp(k[0], lin[:, 0], lin[:, 1])  # D1(a)^2 from the table itself
    om_a = om / (om + (1 - om) * a**3)
    phf, info = halofit(k, lin[:, 0], lin[:, 1], growth2, om_a)

    print("# PM validation at a = %s: %s" % (args.a, args.run))
    print("# halofit: k_sigma = %.4f h/Mpc, n_eff = %.4f, C = %.4f; shot noise %.3g (Mpc/h)^3 subtracted"
          % (info["k_sigma"], info["n_eff"], info["C"], shot))
    print("#  k [h/Mpc]   modes   P/P_lin   P/P_halofit   (+- sample variance)")
    for i in range(len(k)):
        if k[i] > knyq:
            break
        err = np.sqrt(2.0 / modes[i])
        print("  %8.4f  %7d  %8.4f  %8.4f   +-%.3f" % (k[i], modes[i], p[i] / plin[i], p[i] / phf[i], err))

    if args.output:
        fig, (ax, axr) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1.5]})
        sel = k <= knyq
        err = p * np.sqrt(2.0 / np.maximum(modes, 1))
        ax.errorbar(k[sel], p[sel], yerr=err[sel], fmt="o", ms=3, label="Caustic (shot noise subtracted)")
        ax.plot(k[sel], plin[sel], "k--", lw=1, label="linear")
        ax.plot(k[sel], phf[sel], "r-", lw=1, label="halofit (Takahashi+12)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel(r"$P(k)$ [$(h^{-1}\,\mathrm{Mpc})^3$]")
        ax.set_title("z = %.2f" % (1 / a - 1))
        ax.legend(fontsize=8)
        axr.errorbar(k[sel], (p / phf)[sel], yerr=(err / phf)[sel], fmt="o", ms=3, color="r", label="/ halofit")
        axr.errorbar(k[sel], (p / plin)[sel], yerr=(err / plin)[sel], fmt="s", ms=2, color="k", label="/ linear")
        axr.axhline(1, color="k", lw=0.8)
        axr.set_ylim(0.5, 2.0)
        axr.set_xlabel(r"$k$ [$h\,\mathrm{Mpc}^{-1}$]")
        axr.set_ylabel("ratio")
        axr.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.output, dpi=120)
        print("wrote", args.output)


if __name__ == "__main__":
    main()
