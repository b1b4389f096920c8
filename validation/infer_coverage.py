#!/usr/bin/env python3
"""Coverage of `caustic infer`'s parameter intervals over mocks of different seeds (issue 19).

  infer_coverage.py [--params params/infer_muse_small.toml] [--mocks 20] [--first 1] [--jobs 2]
                    [--np 1] [--out output/infer_coverage] [--records DIR] [--caustic PATH]
                    [--skip-runs] [--set KEY=VALUE ...]

Runs `caustic infer PARAMS` once per mock (inference.mock.seed = 100 + m, noise_seed = 500 + m,
m = 1..mocks; with MUSE its simulations' inference.muse.seed = 1000000 + 100 m; `--jobs` runs
at once, each on `--np` ranks; a mock whose summary exists is not run again unless --overwrite
or its MUSE seed differs, and one stopped part-way resumes from its checkpoint), then reads
each inference_summary.json: the estimate and its covariance (MUSE's, or the Laplace covariance
at the joint MAP) against the mock's truth. It
counts the mocks whose truth lies inside the 68% and 95% intervals, per parameter and jointly
(d^T C^-1 d of the parameters), with two kinds of quantiles: the normal and chi^2 ones of a
known covariance, and for MUSE, whose covariance comes from N simulations, Student's t with
N - 1 degrees of freedom and Hotelling's T^2 (the intervals `caustic infer` reports); it writes
OUT/coverage.md (table), OUT/coverage.csv (one row per mock) and OUT/coverage.png (estimates
with their 1-sigma ellipses and the truth; histogram of the pulls against N(0, 1)).

Records. A mock costs 18-36 min on one core, so 20 are made over several sessions. Every
finished mock leaves a small record (RECORDS/<params stem>[+<hash of the --set options>]/
mock_NNN.json: its seeds, the parameter file's hash, the caustic commit that ran it, the
estimate, its covariance, the truth and, for MUSE, how far it was from converging), written
when its run exits cleanly; the records are committed, a mock with a record for
the same parameters and seeds is not run again, and the table is made from the records of mocks
FIRST..MOCKS, whichever session ran them. Each run in OUT carries a stamp of the parameters it
was made from, so a summary or checkpoint of other parameters is neither kept nor resumed.
`--skip-runs` runs nothing: the table from the records, and from OUT's stamped summaries of
mocks without one.
"""
import argparse
import concurrent.futures as cf
import csv
import functools
import hashlib
import json
import math
import os
import subprocess
import sys
import time
import tomllib

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def muse_seed(m):
    """Mock m's MUSE simulations draw from their own seeds: with one set shared by all mocks,
    the error of the simulations' mean score would be common to every mock's estimate, and the
    mocks would not be independent trials of the estimator."""
    return 1000000 + 100 * m


def record_path(args, m):
    """RECORDS/<params stem>/mock_NNN.json; with --set options the directory's name adds a hash
    of them (<stem>+<8 hex digits>), so that each protocol keeps its own records."""
    stem = os.path.splitext(os.path.basename(args.params))[0]
    if args.set:
        stem += "+" + hashlib.sha256("\n".join(args.set).encode()).hexdigest()[:8]
    return os.path.join(args.records, stem, "mock_%03d.json" % m)


def mock_seeds(args, m):
    seeds = {"mock_seed": 100 + m, "noise_seed": 500 + m}
    if args.muse:
        seeds["muse_seed"] = muse_seed(m)
    return seeds


def read_record(args, m):
    """Mock m's record when it was made from these parameters (same file hash, same seeds, no
    --set), else None."""
    path = record_path(args, m)
    if not os.path.exists(path):
        return None
    rec = json.load(open(path))
    if (rec.get("params_sha256") != args.params_sha256 or rec.get("seeds") != mock_seeds(args, m)
            or rec.get("set", []) != args.set):
        return None
    return rec


def write_record(args, m, summary):
    """The record of mock m from its summary: what the table needs and what made it."""
    method, names, theta, cov = estimate(summary)
    if theta is None:
        return None
    inf = summary["inference"]
    rec = {"mock": m, "params": os.path.relpath(args.params, ROOT),
           "params_sha256": args.params_sha256, "set": args.set, "seeds": mock_seeds(args, m),
           "git_commit": summary.get("versions", {}).get("git_commit", "unknown"),
           "ranks": summary.get("ranks"), "method": method, "order": names,
           "theta": theta, "covariance": cov.tolist(),
           "truth": [inf["truth"]["parameters"][n] for n in names],
           # of the run that finished it (a resumed mock's earlier runs are not counted)
           "seconds": inf.get("muse", {}).get("seconds", summary.get("wall_seconds"))}
    if method == "MUSE":  # how far the Newton iteration was from its fixed point
        mu = inf["muse"]
        rec["muse_last_step_sigmas"] = mu.get("last_step_sigmas")
        rec["muse_residual_sigmas"] = mu.get("residual_sigmas")
        rec["muse_newton_steps"] = mu.get("newton_steps", mu.get("iterations"))
        rec["simulations"] = mu.get("simulations")
        if "intervals" in mu:  # the scales caustic reported, checked against this script's
            rec["interval_scales"] = {k: {"sigmas": v["sigmas"], "joint_bound": v["joint_bound"]}
                                      for k, v in mu["intervals"].items()}
    path = record_path(args, m)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(rec, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    return rec


def stamp_path(args, m):
    return os.path.join(args.out, "mock_%03d" % m, "coverage_stamp.json")


def stamp(args):
    """What a mock's run in OUT was made from, beside its seeds."""
    return {"params_sha256": args.params_sha256, "set": args.set}


def stamped(args, m):
    """Whether mock m's run in OUT was made from these parameters."""
    path = stamp_path(args, m)
    return os.path.exists(path) and json.load(open(path)) == stamp(args)


def summary_of_these(args, m):
    """Mock m's summary in OUT when its run was made from these parameters (its stamp) and
    seeds, else None."""
    path = os.path.join(args.out, "mock_%03d" % m, "inference_summary.json")
    if not os.path.exists(path) or not stamped(args, m):
        return None
    s = json.load(open(path))
    truth = s["inference"].get("truth", {}).get("parameters", {})
    seeds = {"mock_seed": truth.get("seed"), "noise_seed": truth.get("noise_seed")}
    if args.muse:
        seeds["muse_seed"] = s["inference"].get("muse", {}).get("seed")
    return s if seeds == mock_seeds(args, m) else None


def run_mock(args, m):
    """Runs mock m unless it has a record or a finished run of these parameters in OUT (a stopped
    one resumes); records it when it finishes."""
    if not args.overwrite:
        if read_record(args, m) is not None:
            return m, 0.0, "recorded"
        s = summary_of_these(args, m)
        if s is not None:
            return m, 0.0, "kept" + (", recorded" if write_record(args, m, s) else "")
    out = os.path.join(args.out, "mock_%03d" % m)
    keys = {"mock_seed": "inference.mock.seed", "noise_seed": "inference.mock.noise_seed",
            "muse_seed": "inference.muse.seed"}
    sets = ['output.directory="%s"' % out]
    sets += ["%s=%d" % (keys[k], v) for k, v in mock_seeds(args, m).items()] + args.set
    # A mock stopped part-way by a run of these parameters continues where it stopped.
    resume = (os.path.isdir(os.path.join(out, ".infer_checkpoint")) and stamped(args, m) and
              not args.overwrite)
    os.makedirs(out, exist_ok=True)
    if not resume:
        # No earlier result may stand for this run's if it fails.
        for name in ("inference_summary.json", "coverage_stamp.json"):
            if os.path.exists(os.path.join(out, name)):
                os.remove(os.path.join(out, name))
        with open(stamp_path(args, m), "w") as f:
            json.dump(stamp(args), f)
    cmd = ["bash", os.path.join(ROOT, "jobs/mpirun.sh"), str(args.np), args.caustic, "infer",
           args.params, "--resume" if resume else "--overwrite"]
    for a in sets:
        cmd += ["--set", a]
    t0 = time.time()
    with open(os.path.join(args.out, "mock_%03d.log" % m), "a" if resume else "w") as log:
        r = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    status = "exit %d" % r.returncode
    if r.returncode == 0:
        s = summary_of_these(args, m)
        if s is not None and write_record(args, m, s):
            status += ", recorded"
    return m, time.time() - t0, status


def protocol_simulations(args, config):
    """inference.muse.simulations of the parameter file `config` with this protocol's --set
    options (None without [inference.muse])."""
    if not args.muse:
        return None
    for a in reversed(args.set):
        key, _, value = a.partition("=")
        if key.strip() == "inference.muse.simulations":
            return int(value)
    return int(config["inference"]["muse"].get("simulations", 20))


def simulations_of(args, rec):
    """The number of simulations behind a MUSE record's covariance (None for Laplace): the
    record's own, or for records made before it was kept, the protocol's (the record's hash is
    the parameter file's)."""
    if rec.get("method") != "MUSE":
        return None
    if rec.get("simulations") is not None:
        return int(rec["simulations"])
    return args.simulations


def check_scales(rec, simulations):
    """A record with the interval scales `caustic infer` reported must agree with this script's
    quantiles (two implementations: Boost.Math's and the continued fraction above)."""
    for key, sc in rec.get("interval_scales", {}).items():
        m, bound = interval_scales(int(key) / 100.0, len(rec["order"]), simulations)
        if abs(m / sc["sigmas"] - 1) > 1e-6 or abs(bound / sc["joint_bound"] - 1) > 1e-6:
            sys.exit("infer_coverage.py: mock %d: caustic's %s%% interval scales %s differ from "
                     "this script's (%.8g, %.8g)" % (rec["mock"], key, sc, m, bound))


# A MUSE estimate whose last Newton step or the step a further one would take exceeds this (in
# the covariance's metric) has not converged: `caustic infer` says so in its log.
CONVERGED_SIGMAS = 0.3


def converged(rec):
    """True, False, or None (not MUSE, or a record without the convergence measures)."""
    steps = [rec.get("muse_last_step_sigmas"), rec.get("muse_residual_sigmas")]
    if rec.get("method") != "MUSE" or any(v is None for v in steps):
        return None
    return max(steps) <= CONVERGED_SIGMAS


def estimate(summary):
    inf = summary["inference"]
    if "muse" in inf:
        mu = inf["muse"]
        order = mu["order"]
        return "MUSE", order, [mu["theta"][n] for n in order], np.array(mu["covariance"])
    lap = inf.get("laplace", {})
    order = lap.get("order", [])
    if "covariance" not in lap:
        return "Laplace", order, None, None
    return "Laplace", order, [inf["map"]["parameters"][n] for n in order], np.array(lap["covariance"])


# Quantiles without scipy (numpy, h5py and matplotlib are the scripts' packages): the regularised
# incomplete beta function by its continued fraction (modified Lentz), the lower incomplete gamma
# function by its series, and bisection.
def incomplete_beta(x, a, b):
    """I_x(a, b), the regularised incomplete beta function, for 0 <= x <= 1."""
    if x <= 0.0 or x >= 1.0:
        return 0.0 if x <= 0.0 else 1.0
    if x > (a + 1.0) / (a + b + 2.0):  # the continued fraction converges fast below this
        return 1.0 - incomplete_beta(1.0 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) +
                     a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    f = d
    for m in range(1, 500):
        for num in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            f *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * f


def lower_gamma(s, x):
    """P(s, x), the regularised lower incomplete gamma function (series; x up to ~100)."""
    if x <= 0.0:
        return 0.0
    term = total = 1.0 / s
    k = 0
    while term > 1e-17 * total:
        k += 1
        term *= x / (s + k)
        total += term
    return math.exp(s * math.log(x) - x - math.lgamma(s)) * total


def solve_increasing(cdf, q):
    """x >= 0 with cdf(x) = q for an increasing cdf (bisection)."""
    lo, hi = 0.0, 1.0
    while cdf(hi) < q:
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < q else (lo, mid)
    return 0.5 * (lo + hi)


@functools.lru_cache(maxsize=None)
def interval_scales(level, parameters, simulations=None):
    """(a parameter's half-width in sigmas, the joint region's bound on d^T C^-1 d) at
    probability `level`: for a known covariance the normal and chi^2 quantiles; for MUSE's
    covariance from N simulations Student's t with N - 1 degrees of freedom and Hotelling's T^2,
    p (N - 1) / (N - p) F(p, N - p), as `caustic infer` reports them (museIntervalScale)."""
    p = parameters
    if simulations is None:
        z = solve_increasing(lambda x: math.erf(x / math.sqrt(2.0)), level)
        return z, solve_increasing(lambda x: lower_gamma(0.5 * p, 0.5 * x), level)
    nu, d2 = simulations - 1.0, float(simulations - p)
    # P(|T| < x) = 1 - I_{nu / (nu + x^2)}(nu / 2, 1 / 2); P(F < x) = I_{p x / (p x + d2)}(p / 2, d2 / 2)
    t = solve_increasing(lambda x: 1.0 - incomplete_beta(nu / (nu + x * x), 0.5 * nu, 0.5), level)
    f = solve_increasing(lambda x: incomplete_beta(p * x / (p * x + d2), 0.5 * p, 0.5 * d2), level)
    return t, p * nu / d2 * f


def coverage_tables(rows, names, title):
    """The coverage and pull tables (markdown lines) of the mocks in `rows`: with the normal and
    chi^2 quantiles of a known covariance and, for MUSE, with the t and Hotelling quantiles of a
    covariance from its simulations (the intervals `caustic infer` reports)."""
    n = len(rows)
    pulls = np.array([r["pull"] for r in rows])
    frac = lambda x: 100.0 * np.mean(x)
    binom = lambda p: 100.0 * np.sqrt(p * (1 - p) / n)
    sims = sorted({r["simulations"] for r in rows if r["simulations"] is not None})
    kinds = [("normal, chi^2", None)]
    if sims and all(r["simulations"] is not None for r in rows):
        kinds.append(("t, Hotelling T^2 (N = %s)" % "/".join(map(str, sims)), "sims"))
    lines = ["", "Over %s:" % title, "",
             "| interval | quantiles | expected | " + " | ".join(names) +
             " | joint (%d parameters) |" % len(names),
             "|---|---|---|" + "---|" * len(names) + "---|"]
    for level in (0.68, 0.95):
        for label, kind in kinds:
            inside = np.zeros((n, len(names) + 1), dtype=bool)
            for k, r in enumerate(rows):
                m, bound = interval_scales(level, len(names),
                                           r["simulations"] if kind else None)
                inside[k, :-1] = np.abs(r["pull"]) < m
                inside[k, -1] = r["chi2"] < bound
            cells = ["%.0f%%" % frac(inside[:, i]) for i in range(len(names) + 1)]
            lines.append("| %.0f%% | %s | %.0f +- %.0f%% (binomial, %d mocks) | %s |" %
                         (100 * level, label, 100 * level, binom(level), n, " | ".join(cells)))
    lines += ["", "| parameter | mean pull | rms pull | mean estimate | scatter of the estimates | "
              "mean sigma |", "|---|---|---|---|---|---|"]
    for i, nm in enumerate(names):
        th = np.array([r["theta"][i] for r in rows])
        spread = lambda x: x.std(ddof=1) if n > 1 else float("nan")
        lines.append("| %s | %+.2f +- %.2f | %.2f | %.4f (truth %.4f) | %.4f | %.4f |" %
                     (nm, pulls[:, i].mean(), spread(pulls[:, i]) / np.sqrt(n),
                      np.sqrt(np.mean(pulls[:, i] ** 2)), th.mean(), rows[0]["truth"][i],
                      spread(th), np.mean([r["sigma"][i] for r in rows])))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--params", default=os.path.join(ROOT, "params/infer_muse_small.toml"))
    ap.add_argument("--mocks", type=int, default=20, help="the last mock")
    ap.add_argument("--first", type=int, default=1, help="the first mock")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(ROOT, "output/infer_coverage"))
    ap.add_argument("--records", default=os.path.join(ROOT, "validation/records/infer_coverage"))
    ap.add_argument("--caustic", default=os.path.join(ROOT, "build/src/caustic"),
                    help="the caustic binary (a copy keeps long runs apart from rebuilds)")
    ap.add_argument("--skip-runs", action="store_true")
    ap.add_argument("--overwrite", action="store_true")
    ap.add_argument("--set", action="append", default=[])
    args = ap.parse_args()
    args.params = os.path.abspath(args.params)
    with open(args.params, "rb") as f:
        raw = f.read()
    args.params_sha256 = hashlib.sha256(raw).hexdigest()
    config = tomllib.loads(raw.decode())
    args.muse = "muse" in config.get("inference", {})
    args.simulations = protocol_simulations(args, config)
    args.out = os.path.abspath(args.out)
    args.records = os.path.abspath(args.records)
    args.caustic = os.path.abspath(args.caustic)
    if args.first < 1 or args.mocks < args.first or args.jobs < 1 or args.np < 1:
        sys.exit("infer_coverage.py: need 1 <= --first <= --mocks, --jobs >= 1 and --np >= 1 "
                 "(got --first %d, --mocks %d, --jobs %d, --np %d)" %
                 (args.first, args.mocks, args.jobs, args.np))
    mocks = range(args.first, args.mocks + 1)
    if not args.skip_runs:
        if not os.access(args.caustic, os.X_OK):
            sys.exit("infer_coverage.py: --caustic %s is not an executable (build first: "
                     "scripts/build.sh release)" % args.caustic)

        with cf.ThreadPoolExecutor(max_workers=args.jobs) as ex:
            for m, sec, status in ex.map(lambda m: run_mock(args, m), mocks):
                print("mock %3d: %s, %.0f s" % (m, status, sec), flush=True)

    good, method, names = [], None, None
    for m in mocks:
        rec = read_record(args, m)
        if rec is None and args.skip_runs:
            s = summary_of_these(args, m)
            rec = write_record(args, m, s) if s is not None else None
        if rec is None:
            print("mock %d: no record of these parameters and seeds (%s)" %
                  (m, record_path(args, m)))
            continue
        method, names = rec["method"], rec["order"]
        theta, cov, t = rec["theta"], np.array(rec["covariance"]), np.array(rec["truth"])
        d = np.array(theta) - t
        chi2 = float(d @ np.linalg.solve(cov, d))
        sig = np.sqrt(np.diag(cov))
        sims = simulations_of(args, rec)
        check_scales(rec, sims)
        good.append({"mock": m, "theta": theta, "truth": t, "sigma": sig, "simulations": sims,
                     "pull": d / sig, "chi2": chi2, "cov": cov, "seconds": rec["seconds"],
                     "commit": rec["git_commit"], "converged": converged(rec),
                     "steps": (rec.get("muse_last_step_sigmas"), rec.get("muse_residual_sigmas"))})
    if not good:
        sys.exit("infer_coverage.py: no mock with an estimate and a covariance")
    n = len(good)
    pulls = np.array([r["pull"] for r in good])
    lines = ["# Coverage of the %s intervals over %d mocks" % (method, n), "",
             "Parameters: `%s`; truth %s; %d of %d mocks with an estimate." %
             (os.path.relpath(args.params, ROOT), ", ".join(
                 "%s = %g" % (nm, good[0]["truth"][i]) for i, nm in enumerate(names)), n, len(mocks))]
    unconverged = [r for r in good if r["converged"] is False]
    if method == "MUSE":
        unknown = [r["mock"] for r in good if r["converged"] is None]
        lines += ["", "Converged (the last Newton step and the next below %g sigma): %d of %d%s%s." %
                  (CONVERGED_SIGMAS, n - len(unconverged) - len(unknown), n,
                   "; not converged: " + ", ".join(
                       "mock %d (%.2f, %.2f sigma)" % (r["mock"], *r["steps"]) for r in unconverged)
                   if unconverged else "",
                   "; no convergence record: mocks " + ", ".join(map(str, unknown)) if unknown else "")]
    lines += coverage_tables(good, names, "all %d mocks" % n)
    if unconverged:
        lines += coverage_tables([r for r in good if r["converged"] is not False], names,
                                 "the %d converged mocks" % (n - len(unconverged)))
    secs = [r["seconds"] for r in good if r["seconds"] is not None and np.isfinite(r["seconds"])]
    if secs:
        lines += ["", "Time per mock (the estimate alone): %.0f-%.0f s." % (min(secs), max(secs))]
    commits = sorted({r["commit"] for r in good})
    lines += ["", "Mocks %s, run by caustic %s (records in `%s`)." %
              (", ".join(str(r["mock"]) for r in good),
               ", ".join(c[:10] + ("+dirty" if c.endswith("+dirty") else "") for c in commits),
               os.path.relpath(os.path.dirname(record_path(args, 1)), ROOT))]
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "coverage.md"), "w") as f:
        f.write(text)
    print(text)
    with open(os.path.join(args.out, "coverage.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["mock"] + ["%s" % nm for nm in names] + ["sigma_" + nm for nm in names] +
                   ["pull_" + nm for nm in names] + ["chi2", "git_commit"])
        for r in good:
            w.writerow([r["mock"]] + list(r["theta"]) + list(r["sigma"]) + list(r["pull"]) +
                       [r["chi2"], r["commit"]])

    fig, ax = plt.subplots(1, 2, figsize=(11, 4.6))
    if len(names) >= 2:
        for r in good:
            c = r["cov"][:2, :2]
            w, v = np.linalg.eigh(c)
            t = np.linspace(0, 2 * np.pi, 100)
            e = v @ (np.sqrt(np.maximum(w, 0))[:, None] * np.array([np.cos(t), np.sin(t)]))
            col = "C3" if r["converged"] is False else "C0"  # red: MUSE not converged
            ax[0].plot(r["theta"][0] + e[0], r["theta"][1] + e[1], color=col, alpha=0.4, lw=0.8)
            ax[0].plot(r["theta"][0], r["theta"][1], ".", color=col)
        ax[0].plot(good[0]["truth"][0], good[0]["truth"][1], "r*", ms=14, label="truth")
        ax[0].set_xlabel(names[0])
        ax[0].set_ylabel(names[1])
        ax[0].set_title("%s estimates and 1-sigma ellipses (%d mocks)" % (method, n))
        ax[0].legend()
    x = np.linspace(-4, 4, 200)
    bins = np.linspace(-4, 4, 17)
    for i, nm in enumerate(names):
        ax[1].hist(np.clip(pulls[:, i], -4, 4), bins=bins, histtype="step", lw=1.5, label=nm)
    ax[1].plot(x, n * (bins[1] - bins[0]) * np.exp(-x * x / 2) / np.sqrt(2 * np.pi), "k--",
               label="N(0, 1)")
    ax[1].set_xlabel("(estimate - truth) / sigma")
    ax[1].set_ylabel("mocks")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "coverage.png"), dpi=110)
    print("wrote", os.path.join(args.out, "coverage.md"), "coverage.csv", "coverage.png")


if __name__ == "__main__":
    main()
