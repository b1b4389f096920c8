#!/usr/bin/env python3
"""FoF halo mass function of a run against Sheth & Tormen (1999) and Tinker et al. (2008).

usage: hmf_validation.py OUTPUT_DIR [--a 1.0000] [-o PLOT.png]
The fits use the run's own linear spectrum (linear_power.txt, at a = 1) scaled by D1(a)^2
(read off the power table of the same a). Prints the ratio table per mass bin.
"""
import argparse
import os
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

RHO_CRIT = 2.77536627e11  # h^2 Msun / Mpc^3, i.e. Msun/h per (Mpc/h)^3
DELTA_C = 1.686


def sigma(R, k, pk):
    x = np.outer(R, k)
    w = 3 * (np.sin(x) - x * np.cos(x)) / x**3
    return np.sqrt(np.trapz(k**3 * pk * w**2 / (2 * np.pi**2), np.log(k), axis=1))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("run")
    ap.add_argument("--a", default="1.0000")
    ap.add_argument("-o", "--output", default=None)
    args = ap.parse_args()
    a = float(args.a)
    lin = np.loadtxt(os.path.join(args.run, "linear_power.txt"))
    om = float(re.search(r"Omega_m = ([0-9.eE+-]+)", open(os.path.join(args.run, "linear_power.txt")).read()).group(1))
    pt = np.loadtxt(os.path.join(args.run, "power_a%s.txt" % args.a))
    growth2 = pt[0, 3] / np.interp(pt[0, 0], lin[:, 0], lin[:, 1])
    mf = np.loadtxt(os.path.join(args.run, "mass_function_a%s.txt" % args.a), ndmin=2)
    M, dn, err, ngroups = mf[:, 1], mf[:, 2], mf[:, 3], mf[:, 4]
    rho = om * RHO_CRIT
    k, pk = lin[:, 0], lin[:, 1] * growth2
    R = (3 * M / (4 * np.pi * rho)) ** (1 / 3)
    s = sigma(R, k, pk)
    eps = 0.01
    s_hi = sigma(R * (1 + eps) ** (1 / 3), k, pk)
    s_lo = sigma(R * (1 - eps) ** (1 / 3), k, pk)
    dlninvs_dlnm = -(np.log(s_hi) - np.log(s_lo)) / (np.log(1 + eps) - np.log(1 - eps))
    nu = DELTA_C / s
    A, aa, p = 0.3222, 0.707, 0.3
    f_st = A * np.sqrt(2 * aa / np.pi) * (1 + (aa * nu**2) ** (-p)) * nu * np.exp(-aa * nu**2 / 2)
    z = 1 / a - 1
    alpha = 10 ** (-((0.75 / np.log10(200 / 75)) ** 1.2))
    At, at, bt, ct = 0.186 * (1 + z) ** -0.14, 1.47 * (1 + z) ** -0.06, 2.57 * (1 + z) ** -alpha, 1.19
    f_t = At * ((s / bt) ** -at + 1) * np.exp(-ct / s**2)
    n_st = f_st * rho / M * dlninvs_dlnm
    n_t = f_t * rho / M * dlninvs_dlnm
    print("# FoF mass function at a = %s (z = %.2f): %s" % (args.a, z, args.run))
    print("#  M [Msun/h]   groups   dn/dlnM [(h/Mpc)^3]   +-Poisson   /Sheth-Tormen   /Tinker08")
    for i in range(len(M)):
        if ngroups[i] == 0:
            continue
        print("  %.3e  %6d   %.3e   %.2e   %6.3f   %6.3f" % (M[i], ngroups[i], dn[i], err[i], dn[i] / n_st[i],
                                                          dn[i] / n_t[i]))
    if args.output:
        fig, (ax, axr) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True, gridspec_kw={"height_ratios": [3, 1.5]})
        sel = ngroups > 0
        ax.errorbar(M[sel], dn[sel], yerr=err[sel], fmt="o", ms=3, label="Caustic FoF (b = 0.2)")
        ax.plot(M, n_st, "k--", label="Sheth & Tormen 1999")
        ax.plot(M, n_t, "r-", label="Tinker et al. 2008 (200m)")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_ylabel(r"$dn/d\ln M$ [$h^3\,\mathrm{Mpc}^{-3}$]")
        ax.set_title("z = %.2f" % z)
        ax.legend(fontsize=8)
        axr.errorbar(M[sel], (dn / n_st)[sel], yerr=(err / n_st)[sel], fmt="o", ms=3, color="k", label="/ ST")
        axr.errorbar(M[sel], (dn / n_t)[sel], yerr=(err / n_t)[sel], fmt="s", ms=3, color="r", label="/ Tinker")
        axr.axhline(1, color="k", lw=0.8)
        axr.set_ylim(0, 2)
        axr.set_xlabel(r"$M$ [$h^{-1}\,M_\odot$]")
        axr.set_ylabel("ratio")
        axr.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.output, dpi=120)
        print("wrote", args.output)


if __name__ == "__main__":
    main()
