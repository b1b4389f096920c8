#!/usr/bin/env python3
"""Plot a Caustic power-spectrum table (k, P, modes[, P_lin]) against linear theory.

usage: plot_power.py TABLE [TABLE ...] -o OUT.png
Each table is drawn with its linear-theory column (if present) and the ratio to it.
"""
import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def read(path):
    header = []
    with open(path) as f:
        for line in f:
            if line.startswith("#"):
                header.append(line[1:].strip())
    return np.loadtxt(path, ndmin=2), header


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("tables", nargs="+")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--title", default=None)
    args = ap.parse_args()

    fig, (ax, axr) = plt.subplots(2, 1, figsize=(6.4, 6.4), sharex=True,
                                  gridspec_kw={"height_ratios": [3, 1.3]})
    for path in args.tables:
        t, header = read(path)
        k, p, modes = t[:, 0], t[:, 1], t[:, 2]
        err = p * np.sqrt(2.0 / np.maximum(modes, 1))  # Gaussian sample variance
        label = header[0] if header else path
        for h in header:
            if h.startswith("k_nyquist_particles"):
                knyq = float(h.split("=")[1].split()[0])
                ax.axvline(knyq, color="0.6", ls="--", lw=0.8, label="particle Nyquist")
                axr.axvline(knyq, color="0.6", ls="--", lw=0.8)
        ax.errorbar(k, p, yerr=err, fmt="o", ms=3, label=label)
        if t.shape[1] >= 4:
            ax.plot(k, t[:, 3], "k-", lw=1, label="linear theory")
            axr.errorbar(k, p / t[:, 3], yerr=err / t[:, 3], fmt="o", ms=3)
    axr.axhline(1.0, color="k", lw=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(r"$P(k)$ [$(h^{-1}\,\mathrm{Mpc})^3$]")
    axr.set_xlabel(r"$k$ [$h\,\mathrm{Mpc}^{-1}$]")
    axr.set_ylabel(r"$P / P_\mathrm{lin}$")
    axr.set_yscale("log")
    lo, hi = axr.get_ylim()
    axr.set_ylim(min(lo, 0.7), max(hi, 1.4))
    ax.legend(fontsize=8)
    if args.title:
        ax.set_title(args.title)
    fig.tight_layout()
    fig.savefig(args.output, dpi=120)
    print("wrote", args.output)


if __name__ == "__main__":
    main()
