#!/usr/bin/env python3
"""Fits the PGD sharpening of super-resolved particles (issue 16) on training seeds.

The super-resolution network cannot make all the small-scale power of the high-resolution (HR)
truth: its particles sit in halos that are too diffuse, and T(k) = sqrt(P_SR / P_HR) falls below
1 towards the low-resolution particle Nyquist frequency. Potential gradient descent (PGD; Dai,
Feng & Seljak 2018) moves particles towards the peaks of the small-scale potential,
  S = alpha i k O_l O_s delta(k) / k^2,  O_l = exp(-(k_l/k)^2),  O_s = exp(-(k/k_s)^4),
which is what `[emulators.NAME] pgd = [alpha, k_l, k_s]` applies in-situ to the super-resolved
particles (pm/force/pgd.hpp: their CIC density on the PM mesh, the exact kernel, CIC readout).
This script fits (alpha, k_l, k_s) so that the mean over the training seeds of P_SR/P_HR is 1 up
to --k-max: it minimises the mean over the k shells of [ln mean_seeds(P_PGD(SR) / P_HR)]^2 by
Nelder-Mead in (ln alpha, ln k_l, ln k_s). The displacement is computed here with numpy, as the
C++ computes it (tests/check_superres.py checks PgdMesh against the in-situ hook); the spectra
are interlaced, compensated CIC on --mesh (validation/superres_particles.py's estimator).

Inputs per seed: the super-resolved particles of an LR run with the hook and no PGD
(--sr-run pattern, default output/superres/fit/s{seed}/sr_a1.0000.hdf5) and the HR truth
(--hr pattern). Never give it the held-out seeds the validation scores.

usage: superres_pgd_fit.py --seeds 201 ... -o FIT.json [--k-max K] [--pgd-mesh 128]
       [--mesh 128] [--start ALPHA K_L K_S] [--evaluations 45]
"""
import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from superres_particles import (bin_power, cic_stencil, delta_k, paint_stencil,  # noqa: E402
                                read_positions)


class PgdMesh:
    """PGD of particles x on an n^3 mesh as the in-situ hook computes it: their CIC density
    contrast, S(k) = alpha i k O_l O_s delta(k) / k^2 (exact kernel, no deconvolution), read out
    with CIC; the density, stencil and wavenumbers are kept for repeated evaluations."""

    def __init__(self, x, L, n):
        self.x, self.L, self.n = x, L, n
        self.stencil = cic_stencil(x, L, n)
        self.delta = np.fft.rfftn(paint_stencil(self.stencil, n) * (n**3 / len(x)) - 1.0)
        kf = 2 * np.pi / L
        k = np.fft.fftfreq(n) * n * kf
        kz = np.fft.rfftfreq(n) * n * kf
        self.kx, self.ky, self.kz = np.meshgrid(k, k, kz, indexing="ij")
        self.k2 = self.kx**2 + self.ky**2 + self.kz**2

    def displaced(self, theta):
        """The positions moved by PGD with theta = (alpha, k_l, k_s), wrapped into the box."""
        alpha, kl, ks = theta
        k2 = np.where(self.k2 > 0, self.k2, 1.0)
        filt = np.where(self.k2 > 0, np.exp(-kl**2 / k2 - (k2 / ks**2) ** 2) / k2, 0.0)
        n = self.n
        y = self.x.copy()
        for ax, kk in enumerate((self.kx, self.ky, self.kz)):
            s = np.fft.irfftn(1j * kk * filt * self.delta, s=(n, n, n)).ravel()
            y[:, ax] += alpha * sum(w * s[idx] for idx, w in self.stencil)
        return np.mod(y, self.L)


class PgdSeed:
    """One seed: its super-resolved particles' PGD and the HR truth's power spectrum."""

    def __init__(self, sr_x, hr_x, L, pgd_mesh, mesh):
        self.pgd = PgdMesh(sr_x, L, pgd_mesh)
        self.x, self.L, self.mesh = sr_x, L, mesh
        dh = delta_k(hr_x, L, mesh)
        self.k, self.p_hr = bin_power(dh, dh, L, mesh, mesh // 2)

    def power_ratio(self, theta):
        """P(k) of the particles after PGD (before, for theta None) over the truth's."""
        d = delta_k(self.pgd.displaced(theta) if theta is not None else self.x, self.L, self.mesh)
        _, p = bin_power(d, d, self.L, self.mesh, self.mesh // 2)
        return p / self.p_hr


def nelder_mead(f, x0, step, evaluations):
    """Minimises f from x0 (simplex edges `step`); stops after the iteration in which the number
    of calls reaches `evaluations` (a shrink may take it a few beyond)."""
    pts = [np.array(x0, float)] + [np.array(x0, float) + np.eye(len(x0))[i] * step[i]
                                   for i in range(len(x0))]
    vals = [f(p) for p in pts]
    calls = len(pts)
    while calls < evaluations:
        o = np.argsort(vals)
        pts, vals = [pts[i] for i in o], [vals[i] for i in o]
        c = np.mean(pts[:-1], axis=0)
        xr = c + (c - pts[-1])
        fr = f(xr)
        calls += 1
        if fr < vals[0]:
            xe = c + 2 * (c - pts[-1])
            fe = f(xe)
            calls += 1
            pts[-1], vals[-1] = (xe, fe) if fe < fr else (xr, fr)
        elif fr < vals[-2]:
            pts[-1], vals[-1] = xr, fr
        else:
            xc = c + 0.5 * (pts[-1] - c)
            fc = f(xc)
            calls += 1
            if fc < vals[-1]:
                pts[-1], vals[-1] = xc, fc
            else:
                for i in range(1, len(pts)):
                    pts[i] = pts[0] + 0.5 * (pts[i] - pts[0])
                    vals[i] = f(pts[i])
                    calls += 1
    i = int(np.argmin(vals))
    return pts[i], vals[i], calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", nargs="+", required=True)
    ap.add_argument("--sr-run", default="output/superres/fit/s{seed}/sr_a1.0000.hdf5")
    ap.add_argument("--hr", default="output/superres/pairs/s{seed}_hr/snapshot_a1.0000.hdf5")
    ap.add_argument("--k-max", type=float, default=None,
                    help="[h/Mpc] fit up to here (default: the LR particle Nyquist frequency)")
    ap.add_argument("--pgd-mesh", type=int, default=128, help="the run's PM mesh per side")
    ap.add_argument("--mesh", type=int, default=128, help="mesh of the power spectra")
    ap.add_argument("--start", nargs=3, type=float, default=[0.003, 2.0, 6.0])
    ap.add_argument("--evaluations", type=int, default=45)
    ap.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    t0 = time.time()
    seeds = []
    for s in a.seeds:
        sr_x, L = read_positions(a.sr_run.format(seed=s))
        hr_x, _ = read_positions(a.hr.format(seed=s))
        seeds.append(PgdSeed(sr_x, hr_x, L, a.pgd_mesh, a.mesh))
    n_lr = round((len(seeds[0].x) / 8) ** (1 / 3))  # the LR lattice of a x2 super-resolution
    k_max = a.k_max if a.k_max else np.pi * n_lr / L
    k = seeds[0].k
    sel = (k > 0) & (k <= k_max * 1.0001)

    def objective_of(ratio):
        return float(np.mean(np.log(ratio[sel]) ** 2))

    def mean_ratio(theta):
        return np.mean([s.power_ratio(theta) for s in seeds], axis=0)

    history = []

    def f(u):
        theta = np.exp(u)
        j = objective_of(mean_ratio(theta))
        history.append([float(v) for v in theta] + [j])
        print("alpha %.5g  k_l %.4g  k_s %.4g  ->  %.3e" % (*theta, j), flush=True)
        return j

    none = mean_ratio(None)
    u, j, calls = nelder_mead(f, np.log(a.start), [0.3, 0.3, 0.3], a.evaluations)
    theta = np.exp(u)
    best = mean_ratio(theta)
    out = {
        "pgd": [float(v) for v in theta],
        "objective": j,
        "objective_without_pgd": objective_of(none),
        "k_max": k_max,
        "seeds": [int(s) for s in a.seeds],
        "evaluations": calls,
        "mesh": a.mesh,
        "pgd_mesh": a.pgd_mesh,
        "max_abs_T_minus_1_without_pgd": float(np.max(np.abs(np.sqrt(none[sel]) - 1))),
        "max_abs_T_minus_1": float(np.max(np.abs(np.sqrt(best[sel]) - 1))),
        "seconds": time.time() - t0,
        "history": history,
        "command": " ".join(sys.argv),
    }
    with open(a.output, "w") as fh:
        json.dump(out, fh, indent=1)
    print("pgd = [%.6g, %.6g, %.6g]: training seeds' max |T - 1| up to k = %.3g h/Mpc %.4f "
          "(without PGD %.4f); wrote %s" % (*theta, k_max, out["max_abs_T_minus_1"],
                                            out["max_abs_T_minus_1_without_pgd"], a.output))


if __name__ == "__main__":
    main()
