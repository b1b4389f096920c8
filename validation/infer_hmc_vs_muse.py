#!/usr/bin/env python3
"""HMC against MUSE on one mock: the parameters' marginal posterior sampled, and MUSE's estimate.

  infer_hmc_vs_muse.py [--hmc-params params/infer_hmc_parameters_small.toml]
                       [--muse-params params/infer_muse_small.toml] [--seed 101]
                       [--noise-seed 501] [--burn-in 50] [--np 1] [--out output/infer_hmc_vs_muse]
                       [--skip-runs]

Runs `caustic infer` twice on the same mock (inference.mock.seed / noise_seed set in both):
HMC over the white noise and the parameters (OUT/hmc) and MUSE (OUT/muse), one after the
other (a run whose summary exists is kept; a stopped one resumes). HMC's chain, after
--burn-in trajectories, gives the marginal posterior's mean, standard deviations and
correlation, with their Monte Carlo errors from the integrated autocorrelation time (Sokal's
window, c = 5). Writes OUT/hmc_vs_muse.md (table) and OUT/hmc_vs_muse.png (the samples with
both methods' 68% and 95% ellipses and the truth; the chain's traces).
"""
import argparse
import json
import os
import subprocess
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, params, out):
    if os.path.exists(os.path.join(out, "inference_summary.json")):
        print("kept", out, flush=True)
        return
    resume = os.path.isdir(os.path.join(out, ".infer_checkpoint"))
    cmd = ["bash", os.path.join(ROOT, "jobs/mpirun.sh"), str(args.np),
           os.path.join(ROOT, "build/src/caustic"), "infer", params,
           "--resume" if resume else "--overwrite",
           "--set", 'output.directory="%s"' % out,
           "--set", "inference.mock.seed=%d" % args.seed,
           "--set", "inference.mock.noise_seed=%d" % args.noise_seed]
    print("$", " ".join(cmd), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(out + ".log", "a" if resume else "w") as log:
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        sys.exit("infer_hmc_vs_muse.py: %s exited with %d (log: %s.log)" % (params, r.returncode, out))


def autocorrelation_time(x, c=5.0):
    """Integrated autocorrelation time with Sokal's automatic window (the first M >= c tau)."""
    x = np.asarray(x, float) - np.mean(x)
    n = len(x)
    f = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n]
    acf /= acf[0]
    tau = 1.0
    for m in range(1, n):
        tau = 1.0 + 2.0 * np.sum(acf[1:m + 1])
        if m >= c * tau:
            break
    return max(tau, 1.0)


def ellipse(mean, cov, level):
    w, v = np.linalg.eigh(cov)
    t = np.linspace(0, 2 * np.pi, 200)
    r = np.sqrt(-2.0 * np.log(1.0 - level))  # the 2-d Gaussian's contour holding `level`
    e = v @ (np.sqrt(np.maximum(w, 0))[:, None] * r * np.array([np.cos(t), np.sin(t)]))
    return mean[0] + e[0], mean[1] + e[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hmc-params", default=os.path.join(ROOT, "params/infer_hmc_parameters_small.toml"))
    ap.add_argument("--muse-params", default=os.path.join(ROOT, "params/infer_muse_small.toml"))
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--noise-seed", type=int, default=501)
    ap.add_argument("--burn-in", type=int, default=50)
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "output/infer_hmc_vs_muse"))
    ap.add_argument("--skip-runs", action="store_true")
    args = ap.parse_args()
    args.out = os.path.abspath(args.out)
    hdir, mdir = os.path.join(args.out, "hmc"), os.path.join(args.out, "muse")
    if not args.skip_runs:
        run(args, os.path.abspath(args.hmc_params), hdir)
        run(args, os.path.abspath(args.muse_params), mdir)

    hs = json.load(open(os.path.join(hdir, "inference_summary.json")))["inference"]
    ms = json.load(open(os.path.join(mdir, "inference_summary.json")))["inference"]
    names = ms["muse"]["order"]
    if hs["hmc"]["order"] != names:
        sys.exit("infer_hmc_vs_muse.py: HMC fits %s, MUSE %s" % (hs["hmc"]["order"], names))
    with open(os.path.join(hdir, "inference_hmc.csv")) as f:
        header = f.readline().lstrip("# ").strip().split(",")
    chain = np.loadtxt(os.path.join(hdir, "inference_hmc.csv"), delimiter=",", comments="#", ndmin=2)
    cols = [header.index(n) for n in names]
    if len(chain) <= args.burn_in + 10:
        sys.exit("infer_hmc_vs_muse.py: %d trajectories, burn-in %d" % (len(chain), args.burn_in))
    samples = chain[args.burn_in:, cols]
    n = len(samples)
    mean, sd = samples.mean(0), samples.std(0, ddof=1)
    cov = np.cov(samples.T)
    corr = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
    tau = np.array([autocorrelation_time(samples[:, i]) for i in range(len(names))])
    ess = n / tau
    mu_theta = np.array([ms["muse"]["theta"][nm] for nm in names])
    mu_cov = np.array(ms["muse"]["covariance"])
    mu_sd = np.sqrt(np.diag(mu_cov))
    mu_corr = mu_cov[0, 1] / np.sqrt(mu_cov[0, 0] * mu_cov[1, 1])
    nsim = ms["muse"]["simulations"]
    truth = np.array([hs["truth"]["parameters"][nm] for nm in names])
    acc = chain[args.burn_in:, header.index("accepted")].mean()

    lines = ["# HMC against MUSE on mock (seed %d, noise seed %d)" % (args.seed, args.noise_seed), "",
             "HMC: `%s`, %d trajectories after a burn-in of %d, acceptance %.2f, %d gradients, "
             "%.0f s. MUSE: `%s`, %.0f s." %
             (os.path.relpath(os.path.abspath(args.hmc_params), ROOT), n, args.burn_in, acc,
              hs["hmc"]["gradients"], hs["hmc"]["seconds"],
              os.path.relpath(os.path.abspath(args.muse_params), ROOT), ms["muse"]["seconds"]), "",
             "Monte Carlo errors: HMC's from its effective samples; MUSE's estimate from its "
             "simulations' mean score (sigma / sqrt(%d)), its sigma from their scatter "
             "(sigma / sqrt(2 x %d))." % (nsim, nsim), "",
             "| parameter | truth | HMC mean | MUSE estimate | difference / both Monte Carlo errors | "
             "HMC sd | MUSE sigma | autocorrelation time (trajectories) | effective samples |",
             "|---|---|---|---|---|---|---|---|---|"]
    for i, nm in enumerate(names):
        mc_h, mc_m = sd[i] / np.sqrt(ess[i]), mu_sd[i] / np.sqrt(nsim)
        lines.append("| %s | %.4f | %.4f +- %.4f | %.4f +- %.4f | %+.2f | %.4f +- %.4f | %.4f +- %.4f "
                     "| %.1f | %.0f |" %
                     (nm, truth[i], mean[i], mc_h, mu_theta[i], mc_m,
                      (mu_theta[i] - mean[i]) / np.hypot(mc_h, mc_m), sd[i],
                      sd[i] / np.sqrt(2 * ess[i]), mu_sd[i], mu_sd[i] / np.sqrt(2 * nsim), tau[i],
                      ess[i]))
    lines += ["", "Correlation: HMC %.2f, MUSE %.2f." % (corr, mu_corr)]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "hmc_vs_muse.md"), "w") as f:
        f.write(text)
    print(text)

    fig, ax = plt.subplots(1, 2, figsize=(12, 4.8))
    ax[0].plot(samples[:, 0], samples[:, 1], ".", color="0.6", ms=3, label="HMC samples")
    for level, ls in [(0.68, "-"), (0.95, "--")]:
        ax[0].plot(*ellipse(mean, cov, level), "C0", ls=ls, label="HMC %.0f%%" % (100 * level))
        ax[0].plot(*ellipse(mu_theta, mu_cov, level), "C1", ls=ls, label="MUSE %.0f%%" % (100 * level))
    ax[0].plot(truth[0], truth[1], "r*", ms=14, label="truth")
    ax[0].set_xlabel(names[0])
    ax[0].set_ylabel(names[1])
    ax[0].legend(fontsize=8)
    ax[0].set_title("the parameters' marginal posterior")
    t = np.arange(len(chain))
    for i, nm in enumerate(names):
        ax[1].plot(t, chain[:, cols[i]], lw=0.8, label=nm)
    ax[1].axvline(args.burn_in, color="k", ls=":", label="burn-in")
    ax[1].set_xlabel("trajectory")
    ax[1].legend(fontsize=8)
    ax[1].set_title("HMC chain")
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "hmc_vs_muse.png"), dpi=110)
    print("wrote", os.path.join(args.out, "hmc_vs_muse.md"), "hmc_vs_muse.png")


if __name__ == "__main__":
    main()
