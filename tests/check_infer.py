#!/usr/bin/env python3
"""`caustic infer` end to end on a small mock (issue 19).

- At 1 rank: exit 0; the posterior decreases within each stage; the summary's likelihood at the
  MAP equals 1/2 sum (model - data)^2 / variance recomputed here from the written fields; the
  MAP is at least as probable as the truth; the reconstruction correlates with the truth on the
  largest scales; the fields have the documented shapes.
- Stopped by SIGTERM and resumed: the same table and MAP as the uninterrupted run, bit for bit.
- At 2 ranks: the same loss table to rounding in the first 20 iterations (the optimiser is
  rank-count independent; rounding differences grow with the iterations).
- The mock's data file read back as observed data at 2 ranks (by slab): the first iterations as
  the mock's.
- MUSE (Omega_m, sigma8): the estimate (from the first step's scores and H), J, the covariance
  and the residual at the estimate (from the scores and H measured there) in the summary follow
  from its own numbers (recomputed here); stopped by SIGTERM and resumed, it reuses the scores it
  kept and ends with the uninterrupted run's estimate, bit for bit.
- Bad input: exit 2, a message naming the setting, nothing written.
"""
import argparse
import csv
import json
import os
import re
import shlex
import shutil
import signal
import subprocess

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks, run

check = Checks()

PARAMS = COSMOLOGY + """
[simulation]
box = 128.0
particles = 16
mesh = 32
a_start = 0.1
a_end = 1.0
steps = 4
seed = 11

[output]
directory = "{out}"

[inference]
number_density = 0.005
smoothing = [16.0, 0.0]
iterations = [15, 80]
fit = ["sigma8"]
laplace = false
{extra}
"""

MOCK = """
[inference.mock]
seed = 11
noise_seed = 3
"""


def write(path, out, extra=MOCK, infer_extra=""):
    with open(path, "w") as f:
        f.write(PARAMS.format(out=out, extra=infer_extra) + extra)
    return path


def table(out):
    with open(os.path.join(out, "inference_loss.csv")) as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    return [[float(v) for v in r] for r in rows]


def stopped_at(cmd, marker):
    """Runs cmd, sends SIGTERM when a line of its output holds `marker`; (exit code, stderr)."""
    print("$", " ".join(cmd), "# then SIGTERM at:", marker, flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if marker in line:
            proc.send_signal(signal.SIGTERM)
            break
    _, err = proc.communicate(timeout=300)
    return proc.returncode, err


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    shutil.rmtree(a.work, ignore_errors=True)
    os.makedirs(a.work)
    os.chdir(a.work)

    # ---- 1 rank
    p1 = write("one.toml", "one")
    r = run([a.caustic, "infer", p1])
    if not check(r.returncode == 0, "infer at 1 rank failed: " + r.stderr[-800:]):
        check.finish()
    s = json.load(open("one/inference_summary.json"))
    inf = s["inference"]
    rows = table("one")
    check(len(rows) >= 10, "only %d iterations in the loss table" % len(rows))
    for prev, cur in zip(rows, rows[1:]):
        if cur[0] == prev[0]:
            check(cur[4] <= prev[4] * (1 + 1e-12),
                  "the posterior rose within stage %d: %g -> %g" % (cur[0], prev[4], cur[4]))
    var = inf["noise_variance_per_cell"]
    check(abs(var - 1.0 / (0.005 * 4.0 ** 3)) < 1e-12 * var, "noise variance %g" % var)
    with h5py.File("one/inference_map_mesh.hdf5", "r") as m:
        data = m["Fields/data"][...].astype(np.float64)
        model = m["Fields/model"][...].astype(np.float64)
        truth = m["Fields/truth"][...].astype(np.float64)
    check(data.shape == (32, 32, 32), "mesh fields have shape %s" % (data.shape,))
    chi2 = 0.5 * np.sum((model - data) ** 2) / var
    like = inf["map"]["likelihood"]
    check(abs(chi2 - like) < 1e-4 * like,
          "likelihood at the MAP: summary %.8g, recomputed from the fields %.8g" % (like, chi2))
    check(inf["map"]["minus_log_posterior"] <= inf["truth"]["minus_log_posterior"],
          "the MAP (%.6g) is less probable than the truth (%.6g)" %
          (inf["map"]["minus_log_posterior"], inf["truth"]["minus_log_posterior"]))
    with h5py.File("one/inference_map_lattice.hdf5", "r") as l:
        lin = l["Fields/linear_density"][...]
        lin_t = l["Fields/linear_density_truth"][...]
        check(lin.shape == (16, 16, 16), "lattice fields have shape %s" % (lin.shape,))
    r0 = inf["reconstruction"][0]["r"]
    check(r0 > 0.95, "r(k) in the first bin %.3f (expected > 0.95)" % r0)
    # The final field of the MAP correlates with the truth's far better than the data does.
    cc = lambda x, y: np.corrcoef(x.ravel(), y.ravel())[0, 1]
    check(cc(model, truth) > cc(data, truth),
          "the MAP's final field (corr %.3f) is no closer to the truth than the data (%.3f)" %
          (cc(model, truth), cc(data, truth)))
    for name in ["inference_loss.svg", "inference_reconstruction.svg", "inference_reconstruction.txt"]:
        check(os.path.getsize(os.path.join("one", name)) > 0, name + " missing")
    print("  1 rank: %d iterations, -log P %.2f at the MAP, %.2f at the truth, r(k_1) %.3f, "
          "sigma8 %.4f" % (len(rows), inf["map"]["minus_log_posterior"],
                           inf["truth"]["minus_log_posterior"], r0,
                           inf["map"]["parameters"]["sigma8"]))

    # ---- 2 ranks: the same iterations
    p2 = write("two.toml", "two")
    r = run(shlex.split(a.mpiexec) + ["-n", "2", a.caustic, "infer", p2])
    if check(r.returncode == 0, "infer at 2 ranks failed: " + r.stderr[-800:]):
        rows2 = table("two")
        check(len(rows2) == len(rows), "%d iterations at 2 ranks, %d at 1" % (len(rows2), len(rows)))
        # Rounding differences (reduction order) grow through the iterations of a non-convex,
        # ill-conditioned problem; the first 20 agree to 1e-6.
        diffs = [abs(x[4] - y[4]) / abs(x[4]) for x, y in zip(rows, rows2)]
        check(max(diffs[:20]) < 1e-6, "the loss at 2 ranks differs from 1 rank by %.2e (relative) "
              "in the first 20 iterations" % max(diffs[:20]))
        print("  2 ranks: relative difference of the loss to 1 rank: %.2e in the first 20 "
              "iterations, %.2e over all %d" % (max(diffs[:20]), max(diffs), len(diffs)))

    # ---- the mock's data file as the observed field at 2 ranks (each rank reads its own planes):
    # the first iterations as the mock's at 1 rank, to the float32 rounding of the file
    p4 = write("data.toml", "data", extra="",
               infer_extra='data = "one/inference_map_mesh.hdf5"\ndataset = "data"')
    r = run(shlex.split(a.mpiexec) + ["-n", "2", a.caustic, "infer", p4, "--set",
                                      "inference.iterations=[5, 1]"])
    if check(r.returncode == 0, "infer of a data file at 2 ranks failed: " + r.stderr[-800:]):
        rows4 = table("data")
        diffs = [abs(x[4] - y[4]) / abs(x[4]) for x, y in zip(rows[:5], rows4[:5])]
        check(max(diffs) < 1e-5, "the data file's first iterations differ from the mock's by %.2e "
              "(relative)" % max(diffs))
        print("  data file at 2 ranks: relative difference of the loss to the mock's in its first "
              "5 iterations: %.2e" % max(diffs))

    # ---- stopped by SIGTERM in the second stage, resumed: the same iterations as the
    # uninterrupted run, bit for bit (the table's values; its counters and seconds aside)
    p3 = write("stop.toml", "stop", infer_extra="checkpoint_every = 7")
    code, err = stopped_at([a.caustic, "infer", p3], "stage 1 (R 0 Mpc/h) iteration 12:")
    check(code == 128 + signal.SIGTERM, "stopped inference: exit %d %s" % (code, err[-300:]))
    check(os.path.exists("stop/.infer_checkpoint/state.json"), "no checkpoint after the stop")
    r = run([a.caustic, "infer", p3])
    check(r.returncode == 2 and "--resume to continue it" in r.stderr,
          "a plain run over an interrupted inference: %d %s" % (r.returncode, r.stderr[-300:]))
    r = run([a.caustic, "infer", p3, "--resume"])
    if check(r.returncode == 0, "resume failed: " + r.stderr[-500:]):
        # Without the counters and the seconds: the resumed run evaluates the checkpoint's
        # iterate once more.
        strip = lambda rows: [row[:-3] for row in rows]
        check(strip(table("stop")) == strip(rows),
              "the resumed run's table differs from the uninterrupted run's")
        with h5py.File("stop/inference_map_lattice.hdf5", "r") as f1, \
                h5py.File("one/inference_map_lattice.hdf5", "r") as f2:
            check(np.array_equal(f1["Fields/noise"][...], f2["Fields/noise"][...]),
                  "the resumed MAP noise differs from the uninterrupted run's")
        check(not os.path.exists("stop/.infer_checkpoint"), "the checkpoint was left after completion")
    r = run([a.caustic, "infer", p3, "--resume"])
    check(r.returncode == 2 and "nothing to resume" in r.stderr,
          "resume of a complete inference: %d %s" % (r.returncode, r.stderr[-300:]))

    # ---- MUSE (Omega_m, sigma8): the summary's estimate and covariance follow from its own
    # scores (recomputed here); a run stopped by SIGTERM and resumed skips the scores it has and
    # ends with the uninterrupted run's estimate, bit for bit
    muse_extra = 'fit = ["Omega_m", "sigma8"]\n[inference.muse]\nsimulations = 3\niterations = 1\n'
    muse_text = (PARAMS.format(out="muse", extra="").replace('fit = ["sigma8"]\nlaplace = false\n',
                                                              muse_extra)
                 .replace("iterations = [15, 80]", "iterations = [5, 20]") + MOCK)
    with open("muse.toml", "w") as f:
        f.write(muse_text)
    r = run([a.caustic, "infer", "muse.toml"])
    if check(r.returncode == 0, "MUSE at 1 rank failed: " + r.stderr[-800:]):
        inf = json.load(open("muse/inference_summary.json"))["inference"]
        mu = inf["muse"]
        order = mu["order"]
        check(order == ["Omega_m", "sigma8"], "MUSE order %s" % order)
        # One Newton step (data + 3 simulations, H from 2 x 3 more), then the same again at the
        # estimate for the covariance.
        check(mu["scores"] == 2 * ((3 + 1) + 2 * 3), "MUSE computed %d scores, expected 20" % mu["scores"])
        check(mu["covariance_at_estimate"] is True, "MUSE covariance not at the estimate")
        st = mu["steps"][0]
        S0 = np.array(st["simulation_scores"])
        m0 = S0.mean(axis=0)
        th0 = np.array(mu["history"][0])
        check(st["newton_H"] == mu["newton_H"], "the first step's H %s is not the one measured at the start %s"
              % (st["newton_H"], mu["newton_H"]))
        step = np.linalg.solve(np.array(mu["newton_H"]), np.array(st["observed_score"]) - m0)
        th = th0 + step * min(1.0, mu["max_step"] / np.max(np.abs(step / th0)))
        check(np.allclose(m0, st["mean_score"], rtol=1e-12, atol=0), "mean score %s vs %s" % (m0, st["mean_score"]))
        est = np.array([mu["theta"][n] for n in order])
        check(np.allclose(th, est, rtol=1e-12, atol=0), "MUSE estimate %s, recomputed %s" % (est, th))
        fin = mu["at_estimate"]
        S = np.array(fin["simulation_scores"])
        J = np.cov(S.T, ddof=1)
        H = np.array(mu["H"])
        Hi = np.linalg.inv(H)
        cov = (1 + 1.0 / 3) * Hi @ J @ Hi.T
        check(np.allclose(J, mu["J"], rtol=1e-10, atol=0), "J %s vs the scores' covariance at the estimate %s" % (mu["J"], J))
        r_next = Hi @ (np.array(fin["observed_score"]) - S.mean(axis=0))
        res = float(np.sqrt(r_next @ np.linalg.solve(cov, r_next)))
        check(abs(res - mu["residual_sigmas"]) <= 1e-8 * max(1.0, res),
              "MUSE residual %s sigma, recomputed %s" % (mu["residual_sigmas"], res))
        check(np.allclose(cov, mu["covariance"], rtol=1e-10, atol=0),
              "MUSE covariance %s, recomputed %s" % (mu["covariance"], cov))
        check(np.all(np.linalg.eigvalsh(np.array(mu["covariance"])) > 0), "MUSE covariance not positive")
        # Intervals for a covariance from 3 simulations: Student's t with 2 degrees of freedom,
        # (2u - 1) / sqrt(2u (1 - u)) at u = (1 + level) / 2, and Hotelling's T^2 for 2
        # parameters, 2 (N - 1) / (N - 2) F(2, N - 2) with F(2, 1)'s quantile ((1 - level)^-2 - 1) / 2.
        for key, level in (("68", 0.68), ("95", 0.95)):
            iv = mu["intervals"][key]
            u = (1 + level) / 2
            t = (2 * u - 1) / np.sqrt(2 * u * (1 - u))
            t2 = 2 * 2 / 1 * 0.5 * ((1 - level) ** -2 - 1)
            check(abs(iv["sigmas"] - t) <= 1e-9 * t and abs(iv["joint_bound"] - t2) <= 1e-9 * t2,
                  "MUSE %s%% interval scales %s, %s; expected %s, %s" % (key, iv["sigmas"], iv["joint_bound"], t, t2))
            for i, n in enumerate(order):
                half = t * np.sqrt(cov[i, i])
                check(np.allclose(iv["bounds"][n], [est[i] - half, est[i] + half], rtol=1e-9, atol=0),
                      "MUSE %s%% interval of %s %s; expected %s +- %s" % (key, n, iv["bounds"][n], est[i], half))
        check(all(inf["map"]["parameters"][n] == mu["theta"][n] for n in order),
              "the MAP's parameters %s are not the MUSE estimate %s" % (inf["map"]["parameters"], mu["theta"]))
        # Scores from MAPs stopped at the iteration cap: counted as the log marks them.
        n_cap = r.stdout.count("(the cap, not converged)")
        check(mu["maps_at_iteration_cap"] == n_cap, "MUSE counts %s capped MAPs, the log %d"
              % (mu["maps_at_iteration_cap"], n_cap))
        # -log P of the data's MAP at the estimate against the simulations' there, from the log
        # (the last "(the data)" score and the three after it).
        rows = re.findall(r"MUSE score \d+ of \d+ \((.*?)\): MAP in .*?-log P ([-0-9.e+]+)", r.stdout)
        last = max(i for i, (who, _) in enumerate(rows) if who == "the data")
        lp = np.array([float(v) for _, v in rows[last:last + 4]])
        ml = mu["minus_log_p_at_estimate"]
        z = (lp[0] - lp[1:].mean()) / lp[1:].std(ddof=1)
        check(abs(ml["data"] - lp[0]) <= 1e-7 * abs(lp[0]) and abs(ml["z"] - z) <= 1e-3 * max(1.0, abs(z)),
              "MUSE -log P at the estimate %s, from the log %s (z %.4f)" % (ml, lp, z))
        check("laplace" not in inf, "a Laplace covariance beside MUSE's")
        check(os.path.getsize("muse/inference_parameters.svg") > 0, "no parameter plot for MUSE")
        print("  MUSE: Omega_m %.4f +- %.4f, sigma8 %.4f +- %.4f from %s; %d MAPs at the cap" %
              (est[0], np.sqrt(cov[0, 0]), est[1], np.sqrt(cov[1, 1]), th0, n_cap))
        code, err = stopped_at([a.caustic, "infer", "muse.toml", "--overwrite", "--set",
                                'output.directory="muse_stop"'], "MUSE score 4 of 20")
        check(code == 128 + signal.SIGTERM, "stopped MUSE: exit %d %s" % (code, err[-300:]))
        kept = json.load(open("muse_stop/.infer_checkpoint/muse.json"))["scores"]
        check(len(kept) == 4, "%d MUSE scores kept after the stop, expected 4" % len(kept))
        r = run([a.caustic, "infer", "muse.toml", "--resume", "--set", 'output.directory="muse_stop"'])
        if check(r.returncode == 0, "MUSE resume failed: " + r.stderr[-500:]):
            check("MUSE resumes with 4 scores computed" in r.stdout, "the resumed MUSE did not reuse its scores")
            check(r.stdout.count("MUSE score ") == 16, "the resumed MUSE computed %d scores, expected 16" %
                  r.stdout.count("MUSE score "))
            mu2 = json.load(open("muse_stop/inference_summary.json"))["inference"]["muse"]
            for key in ("maps_at_iteration_cap", "minus_log_p_at_estimate"):
                check(mu2[key] == mu[key], "the resumed MUSE's %s %s, the uninterrupted %s"
                      % (key, mu2[key], mu[key]))
            check(mu2["theta"] == mu["theta"] and mu2["covariance"] == mu["covariance"],
                  "the resumed MUSE estimate %s differs from the uninterrupted %s" % (mu2["theta"], mu["theta"]))
            check(not os.path.exists("muse_stop/.infer_checkpoint"), "the MUSE checkpoint was left after completion")

    # ---- HMC over (omega, sigma8) from the noise's MAP at the start's sigma8 (no stage fits it)
    ph = write("hmc.toml", "hmc", extra=MOCK + "[inference.hmc]\nsamples = 20\nburn_in = 4\n"
               "leapfrog_steps = 5\nstep_size = 0.05\nparameter_sigma = [0.05]\n",
               infer_extra="fit_from_stage = 2")  # the white prior: its default with HMC and fit
    r = run([a.caustic, "infer", ph])
    if check(r.returncode == 0, "HMC from the noise's MAP failed: " + r.stderr[-800:]):
        start = float(re.search(r"sigma8 = ([0-9.]+)", COSMOLOGY).group(1))
        sig8 = [row[9] for row in table("hmc")]
        check(all(v == start for v in sig8), "the MAP moved sigma8 (%s) with no fitting stage" % sig8[-3:])
        hm = json.load(open("hmc/inference_summary.json"))["inference"]["hmc"]
        check(hm["centring"] is True, "HMC ran without centring (its default with fitted parameters)")
        mass, scale = hm["parameter_mass"][0], hm["parameter_scale"][0]
        check(abs(mass - (scale / 0.05) ** 2) < 1e-12 * mass,
              "HMC mass %r, expected (s / sigma)^2 with s %r, sigma 0.05" % (mass, scale))
        with open("hmc/inference_hmc.csv") as f:
            smp = [[float(v) for v in r] for r in csv.reader(f) if r and not r[0].startswith("#")]
        check(len(smp) == 24, "%d HMC rows, expected 24" % len(smp))
        prev = start
        for row in smp:
            moved = row[4] != prev
            check(moved == bool(row[1]), "trajectory %d: accepted %d but sigma8 %r -> %r" %
                  (row[0], row[1], prev, row[4]))
            prev = row[4]
        check(any(row[1] for row in smp), "HMC accepted no trajectory")
        kept = [row[4] for row in smp if row[0] >= 4]
        check(abs(np.mean(kept) - hm["mean"][0]) < 1e-8,
              "HMC mean %r, the kept samples' %r" % (hm["mean"][0], np.mean(kept)))
        print("  HMC over (omega, sigma8): acceptance %.2f, sigma8 %.4f -> mean %.4f, mass %.3g"
              % (hm["acceptance"], start, hm["mean"][0], mass))
        # Stopped by SIGTERM during the chain and resumed: the uninterrupted chain, bit for bit.
        code, err = stopped_at([a.caustic, "infer", ph, "--overwrite", "--set",
                                'output.directory="hmc_stop"'], "HMC trajectory 10 of")
        check(code == 128 + signal.SIGTERM, "stopped HMC: exit %d %s" % (code, err[-300:]))
        hj = json.load(open("hmc_stop/.infer_checkpoint/hmc.json"))
        check(10 <= hj["trajectory"] < 24, "the HMC checkpoint stands at trajectory %d" % hj["trajectory"])
        # A broken HMC checkpoint is refused before the MAP runs again (then put back).
        hmc_json = "hmc_stop/.infer_checkpoint/hmc.json"
        kept_text = open(hmc_json).read()
        broken = dict(hj)
        del broken["kept"]
        json.dump(broken, open(hmc_json, "w"))
        rb = run([a.caustic, "infer", ph, "--resume", "--set", 'output.directory="hmc_stop"'])
        check(rb.returncode == 2 and "the HMC checkpoint is unreadable" in rb.stderr
              and "iteration" not in rb.stdout,
              "broken HMC checkpoint: exit %d, %s / %s" % (rb.returncode, rb.stderr[-300:],
                                                          rb.stdout[-300:]))
        with open(hmc_json, "w") as f:
            f.write(kept_text)
        r = run([a.caustic, "infer", ph, "--resume", "--set", 'output.directory="hmc_stop"'])
        if check(r.returncode == 0, "HMC resume failed: " + r.stderr[-500:]):
            check("HMC resumes after trajectory %d" % hj["trajectory"] in r.stdout,
                  "the resumed run did not continue the chain")
            check(open("hmc_stop/inference_hmc.csv").read() == open("hmc/inference_hmc.csv").read(),
                  "the resumed chain's table differs from the uninterrupted one's")
            h2 = json.load(open("hmc_stop/inference_summary.json"))["inference"]["hmc"]
            for key in ("mean", "covariance", "acceptance", "samples"):
                check(h2[key] == hm[key], "resumed HMC %s %r, uninterrupted %r" % (key, h2[key], hm[key]))
            # The whole chain's gradients: the uninterrupted run's and the resumed start's one.
            check(h2["gradients"] == hm["gradients"] + 1 and h2["seconds"] > hj["seconds"] > 0,
                  "resumed HMC: %d gradients (uninterrupted %d), %.2f s (%.2f s at the checkpoint)"
                  % (h2["gradients"], hm["gradients"], h2["seconds"], hj["seconds"]))
            check(not os.path.exists("hmc_stop/.infer_checkpoint"), "the HMC checkpoint was left after completion")

    # ---- an earlier inference is not replaced without --overwrite
    r = run([a.caustic, "infer", p1])
    check(r.returncode == 2 and "--overwrite" in r.stderr, "rerun into a finished inference: %d %s" %
          (r.returncode, r.stderr[-300:]))

    # ---- bad input: exit 2, the setting named, nothing written
    os.makedirs("bad", exist_ok=True)
    with h5py.File("bad/small.hdf5", "w") as f:
        f.create_dataset("Fields/delta", data=np.zeros((8, 8, 8), dtype=np.float32))
        h = f.create_group("Header")
        h.attrs["BoxSize"] = 128.0
        h.attrs["Time"] = 1.0
    cases = [
        ("no [inference]", PARAMS.split("[inference]")[0].format(out="bad/o"), r"\[inference\]: missing"),
        ("data and mock", None, ("data = \"x.hdf5\"", MOCK), r"inference\.data .*not allowed with \[inference\.mock\]"),
        ("both noises", None, ("variance = 1.0", MOCK), r"both given"),
        ("ascending smoothing", None, ("", MOCK.replace("[inference.mock]", "[inference.mock]")), None),
        ("unknown fit", None, ("", MOCK), None),
        ("missing data file", None, ("data = \"nothere.hdf5\"", ""), r"inference\.data = .*nothere\.hdf5.*no such file"),
        ("data of another mesh", None, ("data = \"small.hdf5\"", ""), r"inference\.data: .*8\^3 cells.*32\^3"),
    ]
    muse = "[inference.muse]\nsimulations = 3\n"
    cases += [
        ("muse without fit", None, ("", MOCK + muse), r"\[inference\.muse\]: inference\.fit is empty"),
        ("muse centred", None, ('prior = "centred"', MOCK + muse), r"inference\.prior = \"centred\": not allowed with \[inference\.muse\]"),
        ("muse laplace", None, ("", MOCK + muse), r"inference\.laplace = true: not allowed with \[inference\.muse\]"),
        ("muse hmc", None, ("", MOCK + muse + "[inference.hmc]\nsamples = 2\n"), r"\[inference\.hmc\]: not allowed with \[inference\.muse\]"),
        ("muse one simulation", None, ("", MOCK + "[inference.muse]\nsimulations = 1\n"), r"inference\.muse\.simulations = 1: not allowed; expected an integer in \[2, 100000\]"),
        ("muse simulations per parameter", None, ("", MOCK + "[inference.muse]\nsimulations = 2\n"), r"inference\.muse\.simulations = 2: not allowed with 2 fitted parameters \(inference\.fit\); expected more simulations than parameters"),
        ("muse tolerance", None, ("", MOCK + "[inference.muse]\ntolerance = -1\n"), r"inference\.muse\.tolerance = -1: out of range; allowed: \[0, 10\]"),
        ("muse seeds", None, ("", MOCK + "[inference.muse]\nseed = 2\n"), r"inference\.muse\.seed = 2: its simulations use the seeds \[2, 42\), which hold inference\.mock\.seed = 11"),
    ]
    hmc = "[inference.hmc]\nsamples = 2\n"
    cases += [
        ("hmc centred", None, ('prior = "centred"', MOCK + hmc), r"inference\.prior = \"centred\": not allowed with \[inference\.hmc\] and fitted parameters"),
        ("hmc sigma count", None, ('prior = "white"', MOCK + hmc + "parameter_sigma = [0.1, 0.2]\n"), r"inference\.hmc\.parameter_sigma: 2 values for 1 fitted parameters"),
        ("hmc sigma zero", None, ('prior = "white"', MOCK + hmc + "parameter_sigma = [0.0]\n"), r"inference\.hmc\.parameter_sigma = 0: out of range; allowed: > 0"),
        ("laplace without a fitting stage", None, ("fit_from_stage = 2", MOCK), r"inference\.laplace = true: not allowed with inference\.fit_from_stage = 2"),
        ("fit_from_stage beyond", None, ("fit_from_stage = 3", MOCK), r"inference\.fit_from_stage = 3: not allowed; expected a stage index in \[0, 2\]"),
    ]
    texts = []
    for name, text, *rest in cases:
        if text is None:
            extra, mock = rest[0]
            text = PARAMS.format(out="bad/o", extra=extra) + mock
        pattern = rest[-1]
        if name == "ascending smoothing":
            text = text.replace("smoothing = [16.0, 0.0]", "smoothing = [0.0, 16.0]")
            pattern = r"inference\.smoothing = 16: after 0; .*descending"
        if name == "muse without fit":
            text = text.replace('fit = ["sigma8"]\nlaplace = false\n', "")
        if name in ("muse laplace", "laplace without a fitting stage"):
            text = text.replace("laplace = false", "laplace = true")
        if name in ("muse centred", "muse hmc", "muse one simulation", "muse seeds"):
            text = text.replace("laplace = false\n", "")
        if name == "muse simulations per parameter":
            text = text.replace('fit = ["sigma8"]\nlaplace = false\n', 'fit = ["Omega_m", "sigma8"]\n')
        if name == "unknown fit":
            text = text.replace('fit = ["sigma8"]', 'fit = ["h"]')
            pattern = r"inference\.fit = \"h\": unknown parameter; allowed: Omega_m, sigma8, bias"
        texts.append((name, text, pattern))
    for name, text, pattern in texts:
        path = os.path.join("bad", name.replace(" ", "_") + ".toml")
        with open(path, "w") as f:
            f.write(text)
        r = run([a.caustic, "infer", path])
        check(r.returncode == 2 and re.search(pattern, r.stderr),
              "%s: exit %d, %s" % (name, r.returncode, r.stderr[-300:]))
        check(not os.path.exists("bad/o"), "%s: the output directory was created" % name)
    check.finish()


if __name__ == "__main__":
    main()
