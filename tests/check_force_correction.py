#!/usr/bin/env python3
"""End-to-end force corrections of the hybrid PM (issue 15), on a small problem: references with
a 4x finer mesh from the same white noise and particles; `caustic train` fits the hat (k, a)
correction (its held-out loss must fall), stopped and resumed (the parameters equal an
uninterrupted run's bit for bit), the neural spline and PGD; the records are applied by runs
([gravity.correction]) that record them; the validity guard refuses another resolution unless
forced; PGD at the outputs moves the particles and raises the small-scale power; bad
configurations are refused with exit code 2 and the setting named."""
import argparse
import json
import os
import shlex
import shutil
import subprocess

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks

PROD = COSMOLOGY + """
[simulation]
box = 64.0
particles = 16
mesh = 16
a_start = 0.1
steps = 4
seed = 1
precision = "double"

[output]
directory = "{out}"
a = [1.0]
"""

REF = COSMOLOGY + """
[simulation]
box = 64.0
particles = 16
mesh = 64
a_start = 0.1
steps = 16
seed = 1
precision = "double"
lattice_offset = 2.0

[output]
directory = "{out}"
a = [0.325, 0.55, 0.775, 1.0]
power_spectrum = false

[fft]
plan = "estimate"
"""

TRAIN = """
[model]
kind = "force_correction"
correction = "{correction}"
{model}

[run]
params = "prod.toml"

[data]
references = "refs/seed_{{seed}}"
train_seeds = [1, 2]
validation_seeds = [3]

[training]
steps = {steps}
learning_rate = {lr}
power_weight = 10.0
validate_every = 2
checkpoint_every = 2

[output]
directory = "{out}"
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--np", type=int, default=2)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mpiexec", default="mpiexec")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    w = args.work
    mpi = shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic]
    check = Checks()

    def run(cmd, expect=0):
        print("$", " ".join(cmd[len(mpi) - 1:] if cmd[:len(mpi)] == mpi else cmd), flush=True)
        r = subprocess.run(cmd, capture_output=True, text=True, cwd=w)
        if expect is not None and r.returncode != expect:
            print(r.stdout[-3000:], r.stderr[-3000:])
        check(expect is None or r.returncode == expect,
              "%s: exit %d, expected %d" % (" ".join(cmd[-4:]), r.returncode, expect))
        return r

    def write(name, text):
        with open(os.path.join(w, name), "w") as f:
            f.write(text)

    write("prod.toml", PROD.format(out="prod"))
    write("ref.toml", REF.format(out="ref"))
    for seed in (1, 2, 3):
        run(mpi + ["run", "ref.toml", "--set", "simulation.seed=%d" % seed,
                   "--set", "output.directory=refs/seed_%d" % seed])

    def train(name, correction, model="", steps=8, lr=0.05, extra=()):
        write(name + ".toml", TRAIN.format(correction=correction, model=model, steps=steps, lr=lr,
                                           out=name))
        return run(mpi + ["train", name + ".toml"] + list(extra))

    # The hat correction: trained, its held-out loss falls.
    hat_model = "x_nodes = [0.25, 0.5, 0.75, 1.0]\na_nodes = [0.3, 1.0]"
    train("hat", "hat_ka", hat_model)
    rec = json.load(open(os.path.join(w, "hat", "model.json")))
    check(rec["kind"] == "force_correction" and rec["correction"] == "hat_ka", "hat record kind")
    check(len(rec["theta"]) == 8, "hat record: %d parameters, expected 8" % len(rec["theta"]))
    d = rec["domain"]
    check(abs(d["cell_size"] - 4.0) < 1e-12 and d["steps"] == 4 and len(d["boundaries"]) == 5,
          "hat record domain: %s" % d)
    start, end = rec["training"]["loss_start"]["held_out"], rec["training"]["loss_end"]["held_out"]
    print("hat held-out loss %.5e -> %.5e" % (start, end))
    check(end < 0.98 * start, "hat training: held-out loss %.5e -> %.5e did not fall" % (start, end))
    rows = open(os.path.join(w, "hat", "loss.csv")).read().splitlines()
    check(len(rows) == 2 + 9 and os.path.isfile(os.path.join(w, "hat", "loss.svg")),
          "hat loss.csv rows / loss.svg")

    # Stopped after 4 steps and resumed: the same parameters bit for bit.
    train("hat_resumed", "hat_ka", hat_model, extra=["--stop-after", "4"])
    check(not os.path.exists(os.path.join(w, "hat_resumed", "model.json")),
          "a stopped training wrote its model")
    run(mpi + ["train", "hat_resumed.toml", "--resume"])
    rec2 = json.load(open(os.path.join(w, "hat_resumed", "model.json")))
    check(rec2["theta"] == rec["theta"], "resumed training differs from the uninterrupted one")

    # The neural correction and PGD train and write their records.
    train("neural", "neural_spline", "knots = 4\nlatent = 8", steps=4, lr=0.005)
    nrec = json.load(open(os.path.join(w, "neural", "model.json")))
    t0, t1 = nrec["training"]["loss_start"]["train"], nrec["training"]["loss_end"]["train"]
    print("neural training loss %.5e -> %.5e" % (t0, t1))
    check(t1 < t0, "neural training did not lower the training loss: %.5e -> %.5e" % (t0, t1))
    # A second training into the same directory is refused without --resume.
    r = run(mpi + ["train", "neural.toml"], expect=2)
    check("--resume" in r.stderr, "overwriting a training: " + r.stderr[-300:])
    L, m = 8, 4
    check(len(nrec["theta"]) == 2 * L + L * L + L + L * m + m + L * (m + 3) + m + 3,
          "neural record: %d parameters" % len(nrec["theta"]))
    train("pgd", "pgd", steps=4)
    prec = json.load(open(os.path.join(w, "pgd", "model.json")))
    check(len(prec["pgd"]["a"]) == 4 and len(prec["pgd"]["alpha"]) == 4, "pgd record")

    # PGD fitted on top of the hat correction ([model] base): the record carries the base whole.
    train("pgd_hat", "pgd", 'base = "hat/model.json"', steps=4)
    brec = json.load(open(os.path.join(w, "pgd_hat", "model.json")))
    check(brec.get("base", {}).get("correction") == "hat_ka" and
          brec["base"].get("theta") == rec["theta"], "pgd_hat record's base: %s" % brec.get("base"))

    # L-BFGS (PGD has few parameters): the training loss falls.
    train("pgd_lbfgs", "pgd", steps=3, extra=["--set", "training.optimizer=lbfgs"])
    lrec = json.load(open(os.path.join(w, "pgd_lbfgs", "model.json")))
    t0, t1 = lrec["training"]["loss_start"]["train"], lrec["training"]["loss_end"]["train"]
    print("PGD L-BFGS training loss %.5e -> %.5e" % (t0, t1))
    check(t1 < t0, "L-BFGS did not lower the training loss: %.5e -> %.5e" % (t0, t1))

    # Runs apply the records and say so.
    run(mpi + ["run", "prod.toml", "--set", "output.directory=plain"])
    for name in ("hat", "neural", "pgd", "pgd_hat"):
        run(mpi + ["run", "prod.toml", "--set", "output.directory=run_" + name,
                   "--set", "gravity.correction.model=%s/model.json" % name])
        s = json.load(open(os.path.join(w, "run_" + name, "run_summary.json")))
        fc = s.get("force_correction", {})
        check(fc.get("correction") == {"hat": "hat_ka", "neural": "neural_spline",
                                       "pgd": "pgd", "pgd_hat": "pgd"}[name],
              "%s run summary: %s" % (name, fc))
    fc = json.load(open(os.path.join(w, "run_pgd_hat", "run_summary.json")))["force_correction"]
    check(fc.get("base", {}).get("correction") == "hat_ka", "pgd_hat run summary: %s" % fc)

    def positions(d, name="snapshot_a1.0000.hdf5"):
        with h5py.File(os.path.join(w, d, name), "r") as f:
            ids = f["PartType1/ParticleIDs"][:]
            return f["PartType1/Coordinates"][:][np.argsort(ids)]

    with h5py.File(os.path.join(w, "run_hat", "snapshot_a1.0000.hdf5"), "r") as f:
        groups = [g for g in f if "gravity.correction.model" in f[g].attrs]
        check(groups and f[groups[0]].attrs["gravity.correction.model"] in
              (b"hat/model.json", "hat/model.json"),
              "the snapshot does not record gravity.correction.model")

    def distance(d1, d2):
        dx = np.abs(positions(d1) - positions(d2))
        return np.minimum(dx, 64.0 - dx).max()

    for name in ("hat", "neural", "pgd", "pgd_hat"):
        check(distance("run_" + name, "plain") > 1e-3,
              "%s run: positions equal the uncorrected run's" % name)
    for other in ("run_hat", "run_pgd"):
        check(distance("run_pgd_hat", other) > 1e-3, "the hat + PGD run equals " + other)

    # The hat + PGD record run on the held-out seed, snapshots at the trained scale factors: its
    # position error against the reference is the trainer's held-out position term, which the
    # differentiable model computed (the base at every force, PGD at each snapshot).
    snaps = [0.325, 0.55, 0.775, 1.0]
    run(mpi + ["run", "prod.toml", "--set", "output.directory=pgd_hat_seed3", "--set",
               "simulation.seed=3", "--set", "output.a=%s" % snaps,
               "--set", "gravity.correction.model=pgd_hat/model.json"])
    mse = []
    for a in snaps:
        name = "snapshot_a%.4f.hdf5" % a
        x = positions(os.path.join("pgd_hat_seed3"), name)
        xr = positions(os.path.join("refs", "seed_3"), name)
        dx = (x - xr + 32.0) % 64.0 - 32.0
        mse.append(np.sum(dx * dx) / len(x))
    want = brec["training"]["loss_end"]["held_out_position"]
    print("hat + PGD held-out position term: run %.10e, trainer %.10e" % (np.mean(mse), want))
    check(abs(np.mean(mse) / want - 1) < 1e-6,
          "hat + PGD run: position term %.10e, trainer's %.10e" % (np.mean(mse), want))

    # Inline PGD at the outputs: more small-scale power than the uncorrected run.
    run(mpi + ["run", "prod.toml", "--set", "output.directory=inline_pgd",
               "--set", "gravity.correction.kind=pgd", "--set", "gravity.correction.alpha=0.05",
               "--set", "gravity.correction.k_l=0.2", "--set", "gravity.correction.k_s=0.8"])
    pk = [np.loadtxt(os.path.join(w, d, "power_a1.0000.txt")) for d in ("plain", "inline_pgd")]
    hi = pk[0][:, 0] > 0.5
    check(np.all(pk[1][hi, 1] > pk[0][hi, 1]),
          "inline PGD did not raise P(k > 0.5): %s vs %s" % (pk[1][hi, 1], pk[0][hi, 1]))

    # The validity guard: another PM cell is refused, naming it; forced, it runs and says so.
    r = run(mpi + ["run", "prod.toml", "--set", "output.directory=guard", "--set",
                   "simulation.mesh=32", "--set", "gravity.correction.model=hat/model.json"],
            expect=2)
    check("outside the domain" in r.stderr and "PM cell" in r.stderr and "force = true" in r.stderr,
          "guard message: " + r.stderr[-400:])
    check(not os.path.exists(os.path.join(w, "guard", "ic.hdf5")), "a refused run wrote outputs")
    run(mpi + ["run", "prod.toml", "--set", "output.directory=forced", "--set",
               "simulation.mesh=32", "--set", "gravity.correction.model=hat/model.json",
               "--set", "gravity.correction.force=true"])
    s = json.load(open(os.path.join(w, "forced", "run_summary.json")))
    check("PM cell" in s.get("force_correction", {}).get("outside_domain", ""),
          "forced run summary: %s" % s.get("force_correction"))

    # Bad configurations: exit 2 naming the setting.
    for sets, word in ((["--set", "model.correction=foo"], "model.correction"),
                       (["--set", "data.validation_seeds=[1]"], "validation_seeds"),
                       (["--set", "data.train_seeds=[1, 7]"], "seed_7"),
                       (["--set", "data.a=[0.5]"], "data.a")):
        r = run(mpi + ["train", "hat.toml"] + sets, expect=2)
        check(word in r.stderr, "bad configuration %s: %s" % (sets, r.stderr[-300:]))
    r = run(mpi + ["run", "prod.toml", "--set", "output.directory=bad", "--set",
                   "gravity.correction.kind=pgd", "--set", "gravity.correction.alpha=0.1"],
            expect=2)
    check("k_l" in r.stderr, "inline PGD without k_l: " + r.stderr[-300:])
    # A base for a kind that is not PGD, and a base trained for another run.
    r = run(mpi + ["train", "hat.toml", "--set", "model.base=neural/model.json"], expect=2)
    check("model.base" in r.stderr and "pgd" in r.stderr, "a base for hat_ka: " + r.stderr[-300:])
    r = run(mpi + ["train", "pgd_hat.toml", "--set", "output.directory=pgd_bad_base",
                   "--set", "model.base=pgd/model.json"], expect=2)
    check("model.base" in r.stderr and "pgd record" in r.stderr,
          "a pgd record as base: " + r.stderr[-300:])
    write("prod5.toml", PROD.format(out="prod5").replace("steps = 4", "steps = 5"))
    r = run(mpi + ["train", "pgd_hat.toml", "--set", "output.directory=pgd_bad_base",
                   "--set", "run.params=prod5.toml"], expect=2)
    check("model.base" in r.stderr and "5 steps, trained for 4" in r.stderr,
          "a base trained for another run: " + r.stderr[-300:])
    # A record whose parameters do not fit its architecture.
    bad = dict(nrec)
    bad["theta"] = []
    with open(os.path.join(w, "bad_model.json"), "w") as f:
        json.dump(bad, f)
    r = run(mpi + ["run", "prod.toml", "--set", "output.directory=bad2", "--set",
                   "gravity.correction.model=bad_model.json"], expect=2)
    check("parameters" in r.stderr, "neural record without parameters: " + r.stderr[-300:])
    r = run(mpi + ["train", "pgd_hat.toml", "--set", "output.directory=pgd_bad_base",
                   "--set", "model.base=bad_model.json"], expect=2)
    check("model.base" in r.stderr and "parameters" in r.stderr and
          not os.path.exists(os.path.join(w, "pgd_bad_base", "model.json")),
          "a base whose parameters do not fit its architecture: " + r.stderr[-300:])
    check.finish()


if __name__ == "__main__":
    main()
