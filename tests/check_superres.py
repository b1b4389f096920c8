#!/usr/bin/env python3
"""End-to-end particle super-resolution (issue 16): paired runs from the same white noise (16^3
particles on a 32^3 mesh, and 32^3 particles on a 96^3 mesh with the LR lattice offset) become
a training set of snapshots; `caustic train` (kind particle_super_resolution) is stopped and
resumed (the same loss curve as an uninterrupted run); the model is applied in-situ by an
[emulators.sr] hook at 1, 2 and 3 ranks: the super-resolved snapshot holds the whole 32^3 lattice
once with 1/8 of the particle mass, equal at every rank count to 1e-5 of the box, and comes with
its power spectrum (equal to an independent numpy CIC estimate from the snapshot) and FoF
catalogue; with `pgd` the super-resolved particles are sharpened as the numpy PGD of
validation/superres_pgd_fit.py moves them, at 1 and 3 ranks, and with [emulators.sr.contract]
the cores of their small FoF groups are contracted as validation/superres_halo_contraction.py
does it, at 1 and 3 ranks; bad input is refused with exit code 2 and nothing written."""
import argparse
import csv
import json
import math
import os
import shlex
import shutil
import subprocess
import sys

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks, interlaced_cic_power

RUN = COSMOLOGY + """
[simulation]
box = 64.0
particles = {particles}
mesh = {mesh}
a_start = 0.05
a_end = 1.0
steps = 4
seed = {seed}
{extra}
[output]
directory = "{out}"
a = [1.0]
snapshots = true
power_spectrum = {power}
initial_conditions = false
"""

TRAIN = """
[data]
train = [
{train}
]
validation = [
{validation}
]

[model]
kind = "particle_super_resolution"
depth = 1
width = 4

[training]
steps = 8
batch = 2
crop = 8
learning_rate = 0.003
validate_every = 4
checkpoint_every = 4
validation_crops = 1
seed = 3

[output]
directory = "{out}"
"""

HOOK = """
[halos]
enabled = true
a = [1.0]
min_particles = 10

[emulators.sr]
model = "{model}"
space = "{space}"
inputs = {inputs}
"""
LAGRANGIAN = ('["displacement_x", "displacement_y", "displacement_z", "momentum_x", "momentum_y", '
              '"momentum_z"]')

check = Checks()


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(r.stdout[-1500:], r.stderr[-1500:])
    return r


def curve(path):
    with open(path) as f:
        rows = [r for r in csv.reader(l for l in f if not l.startswith("#"))]
    return rows[1:]


def snapshot(path):
    with h5py.File(path, "r") as f:
        ids = f["PartType1/ParticleIDs"][...]
        order = np.argsort(ids)
        return (ids[order], f["PartType1/Coordinates"][...][order],
                f["PartType1/Velocities"][...][order], float(f["Header"].attrs["MassTable"][1]),
                float(f["Header"].attrs["BoxSize"]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--mpiexec", default="mpiexec")
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    mpi = lambda n: shlex.split(args.mpiexec) + ["-n", str(n), args.caustic]  # noqa: E731

    def make_run(name, particles, mesh, seed, extra="", power="false"):
        out = os.path.join(args.work, name)
        p = os.path.join(args.work, name + ".toml")
        with open(p, "w") as f:
            f.write(RUN.format(particles=particles, mesh=mesh, seed=seed, extra=extra, out=out,
                               power=power))
        return p, out

    # Pairs: the HR lattice gets the LR run's offset (half an LR PM cell = 1 Mpc/h).
    pairs = []
    for seed in (1, 2, 3):
        files = []
        for res, parts, mesh, extra in (("lr", 16, 32, ""), ("hr", 32, 96, "lattice_offset = 1.0\n")):
            p, out = make_run("s%d_%s" % (seed, res), parts, mesh, seed, extra)
            r = run(mpi(2) + ["run", p])
            check(r.returncode == 0, "paired run seed %d %s failed" % (seed, res))
            files.append(os.path.join(out, "snapshot_a1.0000.hdf5"))
        pairs.append('  {lr = "%s", hr = "%s"},' % tuple(files))
    if check.failures:
        sys.exit(1)
    cfg = os.path.join(args.work, "train.toml")

    def write_cfg(out, train=None):
        with open(cfg, "w") as f:
            f.write(TRAIN.format(train="\n".join(train or pairs[:2]), validation=pairs[2], out=out))

    full = os.path.join(args.work, "full")
    write_cfg(full)
    r = run(mpi(2) + ["train", cfg])
    check(r.returncode == 0, "caustic train (particle_super_resolution) failed")
    part = os.path.join(args.work, "resumed")
    write_cfg(part)
    r = run(mpi(2) + ["train", cfg, "--stop-after", "4"])
    check(r.returncode == 0, "--stop-after failed")
    r = run(mpi(2) + ["train", cfg, "--resume"])
    check(r.returncode == 0, "--resume failed")
    if check.failures:
        sys.exit(1)
    a, b = curve(os.path.join(full, "loss.csv")), curve(os.path.join(part, "loss.csv"))
    worst = max(abs(float(x[1]) / float(y[1]) - 1) for x, y in zip(a[1:], b[1:]))
    print("resumed vs uninterrupted: largest relative difference of the training loss %.2e" % worst)
    check(len(a) == 9 and len(b) == 9 and worst < 1e-6, "resumed curve differs by %g" % worst)
    check(all(math.isfinite(float(x[1])) for x in a[1:]), "non-finite training loss")
    with open(os.path.join(full, "model.json")) as f:
        meta = json.load(f)
    check(meta["kind"] == "particle_super_resolution" and meta["super_resolution"]["factor"] == 2 and
          len(meta["outputs"]) == 48 and meta["outputs"][9]["name"] == "displacement_y@001" and
          meta["outputs"][9]["residual_of"] == "displacement_y" and
          abs(meta["cell_size"]["value"] - 4.0) < 1e-12,
          "model.json: %s" % json.dumps(meta)[:300])

    # Bad pairs: an HR run with its own default offset (half its PM cell) is refused.
    p, out = make_run("s1_hr_default_offset", 32, 96, 1)
    r = run(mpi(1) + ["run", p])
    bad = os.path.join(args.work, "bad")
    write_cfg(bad, ['  {lr = "%s", hr = "%s"},' % (os.path.join(args.work, "s1_lr", "snapshot_a1.0000.hdf5"),
                                                    os.path.join(out, "snapshot_a1.0000.hdf5"))])
    r = run(mpi(1) + ["train", cfg])
    check(r.returncode == 2 and "lattice offsets differ" in r.stderr and not os.path.exists(bad),
          "mismatched lattice offsets: exit %d, %s" % (r.returncode, r.stderr[-300:]))

    # In-situ at 1, 2, 3 ranks.
    model = os.path.join(full, "model.pt")
    snaps = {}
    for n in (1, 2, 3):
        p, out = make_run("hooked_np%d" % n, 16, 32, 9, power="true")
        with open(p, "a") as f:
            f.write(HOOK.format(model=model, space="lagrangian", inputs=LAGRANGIAN))
        r = run(mpi(n) + ["run", p])
        check(r.returncode == 0, "run with the super-resolution hook at %d ranks failed" % n)
        if r.returncode == 0:
            snaps[n] = snapshot(os.path.join(out, "sr_a1.0000.hdf5"))
    if check.failures:
        sys.exit(1)
    ids, x, v, mass, L = snaps[1]
    lr_mass = snapshot(os.path.join(args.work, "hooked_np1", "snapshot_a1.0000.hdf5"))[3]
    check(np.array_equal(ids, np.arange(32**3)), "the SR snapshot is not the 32^3 lattice once")
    check(abs(mass / lr_mass * 8 - 1) < 1e-12, "SR particle mass %g, LR %g" % (mass, lr_mass))
    check(x.min() >= 0 and x.max() < L, "positions outside [0, L)")
    for n in (2, 3):
        dx = snaps[n][1] - x
        dx -= L * np.round(dx / L)
        err = np.abs(dx).max()
        verr = np.abs(snaps[n][2] - v).max() / np.abs(v).max()
        print("SR at %d ranks vs 1 rank: positions %.2e of the box, velocities %.2e" % (n, err / L, verr))
        check(np.array_equal(snaps[n][0], ids) and err < 1e-5 * L and verr < 1e-5,
              "SR at %d ranks differs from 1 rank: %g, %g" % (n, err, verr))
    out1 = os.path.join(args.work, "hooked_np1")
    table = np.loadtxt(os.path.join(out1, "sr_power_a1.0000.txt"))
    check(table.shape[0] > 5 and np.isfinite(table[:, 1]).all(), "SR power table")
    ref = interlaced_cic_power(x, L, 32)
    rel = np.abs(table[:, 1] / ref[:, 1] - 1).max()
    print("SR power table vs an independent numpy interlaced CIC estimate: %.2e" % rel)
    check(table.shape == ref.shape and np.abs(table[:, 0] / ref[:, 0] - 1).max() < 1e-6 and rel < 1e-4,
          "SR power differs from numpy by %g" % rel)
    check(os.path.exists(os.path.join(out1, "sr_halos_a1p0000.0.hdf5")) and
          os.path.exists(os.path.join(out1, "sr_mass_function_a1.0000.txt")), "no SR FoF catalogue")

    # PGD sharpening of the super-resolved particles (`pgd`), at 1 and 3 ranks: equal to the
    # numpy PGD of validation/superres_pgd_fit.py (the one the fit uses) applied to the
    # unsharpened 1-rank set on the PM mesh, and to each other.
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "validation"))
    from superres_pgd_fit import PgdMesh
    theta = (0.3, 0.1, 1.0)
    want = PgdMesh(x.astype(np.float64), L, 32).displaced(theta)
    shift = want - x
    shift -= L * np.round(shift / L)
    sharp = {}
    for n in (1, 3):
        p, out = make_run("hooked_pgd_np%d" % n, 16, 32, 9, power="true")
        with open(p, "a") as f:
            f.write(HOOK.format(model=model, space="lagrangian", inputs=LAGRANGIAN))
            f.write("pgd = [%r, %r, %r]\n" % theta)
        r = run(mpi(n) + ["run", p])
        check(r.returncode == 0, "run with PGD on the super-resolved particles at %d ranks failed" % n)
        if r.returncode != 0:
            continue
        sharp[n] = snapshot(os.path.join(out, "sr_a1.0000.hdf5"))
        dx = sharp[n][1] - want
        dx -= L * np.round(dx / L)
        err = np.abs(dx).max() / np.abs(shift).max()
        print("PGD at %d ranks: largest shift %.3g Mpc/h (rms %.3g); C++ - numpy: %.2e of the "
              "largest shift" % (n, np.abs(shift).max(), np.sqrt((shift**2).mean()), err))
        check(np.array_equal(sharp[n][0], ids) and np.abs(shift).max() > 0.05 and err < 1e-3,
              "PGD at %d ranks differs from numpy by %g of its largest shift" % (n, err))
        check(np.array_equal(sharp[n][2], snaps[n][2]), "PGD changed the velocities")
        with open(os.path.join(out, "sr_power_a1.0000.txt")) as f:
            head = f.read(2000)
        check("PGD-sharpened: alpha = 0.3, k_l = 0.1 h/Mpc, k_s = 1 h/Mpc" in head,
              "the SR power table does not record the PGD: %s" % head[:400])
    if 1 in sharp and 3 in sharp:
        dx = sharp[3][1] - sharp[1][1]
        dx -= L * np.round(dx / L)
        check(np.abs(dx).max() < 1e-5 * L, "PGD at 3 ranks differs from 1 rank by %g" %
              np.abs(dx).max())

    # Group contraction ([emulators.sr.contract], after the PGD) at 1 and 3 ranks: equal to
    # validation/superres_halo_contraction.contract (the prototype that scored it) applied to the
    # uncontracted sharpened set of a 1-rank run about the groups `caustic fof` finds in it
    # (double-precision snapshots; the catalogue's GroupPos is float32 and the PGD of 3 ranks
    # differs from 1 rank's at float32 level, hence 1e-5 Mpc/h), and to each other.
    from superres_halo_contraction import contract
    shape = (0.5, 3.0, 40)
    dp = ["--set", "output.snapshot_precision=\"double\""]
    p, out = make_run("hooked_pgd_double", 16, 32, 9)
    with open(p, "a") as f:
        f.write(HOOK.format(model=model, space="lagrangian", inputs=LAGRANGIAN))
        f.write("pgd = [%r, %r, %r]\n" % theta)
    r = run(mpi(1) + ["run", p] + dp)
    check(r.returncode == 0, "run with PGD in double precision failed")
    base = os.path.join(out, "sr_a1.0000.hdf5")
    groups = os.path.join(args.work, "sr_pgd_groups.hdf5")
    r = run(mpi(1) + ["fof", base, "-b", "0.3", "--min-particles", "10", "-o", groups,
                      "--overwrite"])
    check(r.returncode == 0, "caustic fof on the sharpened SR snapshot failed")
    if check.failures:
        sys.exit(1)
    x0 = snapshot(base)[1]
    with h5py.File(groups, "r") as f:
        centres, sizes = f["Group/GroupPos"][...], f["Group/GroupLen"][...]
    want = contract(x0, centres, sizes, shape[0], shape[1], shape[2], L)
    moved = want - x0
    moved -= L * np.round(moved / L)
    contracted = {}
    for n in (1, 3):
        p, out = make_run("hooked_contract_np%d" % n, 16, 32, 9, power="true")
        with open(p, "a") as f:
            f.write(HOOK.format(model=model, space="lagrangian", inputs=LAGRANGIAN))
            f.write("pgd = [%r, %r, %r]\n" % theta)
            f.write("[emulators.sr.contract]\nlambda = %r\nradius = %r\nmax_members = %d\n"
                    "b = 0.3\nmin_members = 10\n" % shape)
        r = run(mpi(n) + ["run", p] + dp)
        check(r.returncode == 0, "run with group contraction at %d ranks failed" % n)
        if r.returncode != 0:
            continue
        contracted[n] = snapshot(os.path.join(out, "sr_a1.0000.hdf5"))
        dx = contracted[n][1] - want
        dx -= L * np.round(dx / L)
        err = np.abs(dx).max()
        print("contraction at %d ranks: %d of %d groups of at most %d members, %d particles moved "
              "(largest move %.3g Mpc/h); C++ - numpy: %.2e Mpc/h" %
              (n, np.sum(sizes <= shape[2]), len(sizes), shape[2],
               np.sum(np.abs(moved).max(axis=1) > 0), np.abs(moved).max(), err))
        check(np.array_equal(contracted[n][0], ids) and np.sum(sizes <= shape[2]) >= 10 and
              np.abs(moved).max() > 0.5 and err < 1e-5,
              "contraction at %d ranks differs from numpy by %g Mpc/h" % (n, err))
        with open(os.path.join(out, "sr_power_a1.0000.txt")) as f:
            head = f.read(3000)
        check("group-contracted: lambda = 0.5, R = 3 Mpc/h, groups of 10 to 40 members (FoF b = "
              "0.3)" in head, "the SR power table does not record the contraction: %s" % head[:600])
    if 1 in contracted and 3 in contracted:
        dx = contracted[3][1] - contracted[1][1]
        dx -= L * np.round(dx / L)
        check(np.abs(dx).max() < 1e-5 * L, "contraction at 3 ranks differs from 1 rank by %g" %
              np.abs(dx).max())

    # The validation's halo compactness (superres_particles.halo_spreads), with the SR particles
    # as the "truth": FoF with member IDs on them (b = 0.3, groups of 10 or more: this small run
    # has none of 20 at b = 0.2); each group's median member distance from its
    # centroid against a direct computation about the catalogue's GroupPos, and its "LR" entry
    # (an LR lattice made of the SR particles on even sites) against the members on even sites.
    from superres_particles import halo_spreads
    sr_file = os.path.join(out1, "sr_a1.0000.hdf5")
    halos = os.path.join(args.work, "sr_members.hdf5")
    r = run(mpi(1) + ["fof", sr_file, "--member-ids", "-b", "0.3", "--min-particles", "10",
                      "-o", halos, "--overwrite"])
    check(r.returncode == 0, "caustic fof --member-ids on the SR snapshot failed")
    by_id = np.empty(x.shape)
    by_id[ids] = x
    n_hr = 32
    lr_lattice = by_id.reshape(n_hr, n_hr, n_hr, 3)[::2, ::2, ::2].reshape(-1, 3)
    got = halo_spreads(halos, {"HR": by_id, "LR": lr_lattice}, L, n_hr, n_hr // 2, min_size=10)
    with h5py.File(halos, "r") as f:
        glen, goff = f["Group/GroupLen"][...], f["Group/GroupOffset"][...]
        gpos, members = f["Group/GroupPos"][...], f["IDs/ID"][...]
    big = np.nonzero(glen >= 10)[0]
    worst = 0.0
    for row, g in enumerate(big):
        m = members[goff[g]:goff[g] + glen[g]]
        for key, sel in (("HR", np.ones(len(m), bool)),
                         ("LR", ((m // n_hr**2) % 2 == 0) & ((m // n_hr) % 2 == 0) & (m % 2 == 0))):
            if key == "LR" and sel.sum() < 3:
                check(np.isnan(got[key][row]), "group %d: LR spread of fewer than 3 members" % g)
                continue
            d = by_id[m[sel]] - gpos[g]
            d -= L * np.round(d / L)
            d -= d.mean(axis=0)
            worst = max(worst, abs(got[key][row] - np.median(np.linalg.norm(d, axis=1))))
    print("halo_spreads: %d SR groups of 10 or more, largest difference from the direct "
          "computation %.2e Mpc/h" % (len(big), worst))
    check(len(big) > 0 and np.array_equal(got["size"], glen[big]) and worst < 1e-9,
          "halo_spreads differs from the direct computation by %g" % worst)

    # Bad `pgd` values and [emulators.sr.contract] tables are refused naming the setting, before
    # anything is written. Each case: the hook's extra TOML lines, its space, what stderr says.
    table = "[emulators.sr.contract]\n"
    for bad, space, says in (
            ("pgd = [-0.1, 2.0, 6.0]", "lagrangian",
             "emulators.sr.pgd = [-0.1, 2, 6]: allowed: [alpha, k_l, k_s]"),
            ("pgd = [0.1, 2.0]", "lagrangian", "emulators.sr.pgd = [0.1, 2]: allowed"),
            ("pgd = [0.1, 2.0, 6.0]", "eulerian", "emulators.sr.pgd = [0.1, 2, 6]: only for particle "
             "super-resolution models"),
            (table + "lambda = 1.5\nradius = 2.0\nmax_members = 40", "lagrangian",
             "emulators.sr.contract.lambda = 1.5: out of range; allowed: (0, 1]"),
            (table + "lambda = 0.5\nradius = 20.0\nmax_members = 40", "lagrangian",
             "emulators.sr.contract.radius = 20: out of range; allowed: (0, box / 4] = (0, 16] "
             "Mpc/h"),
            (table + "lambda = 0.5\nradius = 2.0", "lagrangian",
             "emulators.sr.contract.max_members: missing"),
            (table + "lambda = 0.5\nradius = 2.0\nmax_members = 10\nmin_members = 20", "lagrangian",
             "emulators.sr.contract.max_members = 10: out of range; allowed: >= min_members = 20"),
            (table + "lambda = 0.5\nradius = 2.0\nmax_members = 40\nrdius = 1", "lagrangian",
             "emulators.sr.contract.rdius"),
            (table + "lambda = 0.5\nradius = 2.0\nmax_members = 40", "eulerian",
             "[emulators.sr.contract]: only for particle super-resolution models")):
        p, out = make_run("hooked_bad_setting", 16, 32, 9)
        with open(p, "a") as f:
            f.write(HOOK.format(model=model, space=space,
                                inputs=LAGRANGIAN if space == "lagrangian" else '["density"]'))
            f.write(bad + "\n")
        r = run(mpi(1) + ["run", p])
        check(r.returncode == 2 and says in r.stderr and not os.path.exists(out),
              "%r: exit %d, %s" % (bad, r.returncode, r.stderr[-300:]))

    # An Eulerian hook with this model is refused before anything is written.
    p, out = make_run("hooked_eulerian", 16, 32, 9)
    with open(p, "a") as f:
        f.write(HOOK.format(model=model, space="eulerian", inputs='["density"]'))
    r = run(mpi(1) + ["run", p])
    check(r.returncode == 2 and 'set space = "lagrangian"' in r.stderr and not os.path.exists(out),
          "eulerian SR hook: exit %d, %s" % (r.returncode, r.stderr[-300:]))
    check.finish("OK")


if __name__ == "__main__":
    main()
