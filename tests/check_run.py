#!/usr/bin/env python3
"""End-to-end checks of `caustic run`.

run     --np N: a small run at N ranks; outputs at a = 0.5 and 1 are complete and consistent
        (snapshot IDs complete, positions in the box, power table equal to an independent
        interlaced CIC estimate from the snapshot, density field whose mean is zero, run
        summary with timings), and SIGUSR1 (through mpirun) or SIGTERM (to the ranks)
        during a run stops it at a step boundary with exit code 128 + signal, an 'interrupted'
        summary and no partial file.
compare: the final snapshots of the runs at 1, 2 and 3 ranks agree particle by particle to
        1e-6 of the mean particle separation (double-precision mesh and snapshots), and their
        in-situ halo catalogues are identical.
"""
import argparse
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks, interlaced_cic_power

PARAMS = COSMOLOGY + """
[simulation]
box = 64.0
particles = 16
mesh = 32
a_start = 0.05
a_end = 1.0
steps = {steps}
seed = 5
precision = "double"

[output]
directory = "{out}"
a = [0.5, 1.0]
density = true
snapshot_precision = "double"

[halos]
enabled = true
min_particles = 8
a = [1.0]
"""

check = Checks()
failures = check.failures



def finish():
    print("%d passed, %d failed" % (0 if failures else 1, 1 if failures else 0))
    sys.exit(1 if failures else 0)


def run_case(args):
    os.makedirs(args.work, exist_ok=True)
    out = os.path.join(args.work, "out")
    shutil.rmtree(out, ignore_errors=True)
    pfile = os.path.join(args.work, "run.toml")
    with open(pfile, "w") as f:
        f.write(PARAMS.format(out=out, steps=8))
    cmd = shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic, "run", pfile]
    print("$", " ".join(cmd), flush=True)
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(r.stdout, r.stderr)
    check(r.returncode == 0, "caustic run failed")
    if r.returncode != 0:
        return
    steps = [line for line in r.stdout.splitlines() if " step " in line and "ETA" in line]
    check(len(steps) == 8, "expected 8 step log lines, got %d" % len(steps))
    n = 16
    for a in ("0.5000", "1.0000"):
        snap = os.path.join(out, "snapshot_a%s.hdf5" % a)
        with h5py.File(snap, "r") as f:
            check(abs(f["Header"].attrs["Time"] - float(a)) < 1e-12, "snapshot Time at a = " + a)
            ids = f["PartType1/ParticleIDs"][...]
            pos = f["PartType1/Coordinates"][...]
            check(np.array_equal(np.sort(ids), np.arange(n**3)), "IDs incomplete at a = " + a)
            check(np.all((pos >= 0) & (pos < 64.0)), "positions outside the box at a = " + a)
            check(pos.dtype == np.float64, "snapshot_precision = double not honoured")
        with h5py.File(os.path.join(out, "density_a%s.hdf5" % a), "r") as f:
            d = f["Fields/density"][...]
            check(d.shape == (32, 32, 32), "density shape %s" % (d.shape,))
            check(abs(d.mean()) < 1e-5, "density contrast mean %g" % d.mean())
            check(d.min() >= -1 - 1e-6, "density contrast below -1")
        tab = np.loadtxt(os.path.join(out, "power_a%s.txt" % a))
        check(tab.shape[1] == 4 and np.all(tab[:, 1] > 0), "power table at a = " + a)
        # The table (measured in-situ from the closing force's painted density) against an
        # independent estimate from the snapshot's positions (double) at the same a.
        ref = interlaced_cic_power(pos, 64.0, 32)
        check(tab.shape[0] == ref.shape[0] and np.array_equal(tab[:, 2], ref[:, 2]),
              "power table modes at a = %s" % a)
        err = np.max(np.abs(tab[:, 1] / ref[:, 1] - 1))
        check(err < 1e-6 and np.max(np.abs(tab[:, 0] / ref[:, 0] - 1)) < 1e-7,
              "power table at a = %s differs from the snapshot's spectrum by %.2e" % (a, err))
    with open(os.path.join(out, "run_summary.json")) as f:
        s = json.load(f)
    check(s["steps_done"] == 8 and not s["interrupted"], "summary steps/interrupted")
    for phase in ("step:paint", "step:fft_forward", "step:fft_inverse", "step:readout", "step:migrate",
                  "step:drift", "step:observer:snapshot", "initial_conditions"):
        check(phase in s["timings_seconds_max_over_ranks"], "summary lacks timing " + phase)
    check(len(s["peak_memory_bytes_per_rank"]) == args.np, "summary memory per rank")
    # Peaks by phase (absent only where /proc refuses the reset): each phase's peak is at most
    # the process's, and the largest of them is the process's peak when the peak fell in a phase.
    by_phase = s.get("peak_memory_bytes_by_phase_max_over_ranks", {})
    if by_phase:
        top = max(s["peak_memory_bytes_per_rank"])
        for phase in ("paint", "fft_inverse", "observer:snapshot", "initial_conditions",
                      "time_stepping_total"):
            check(0 < by_phase.get(phase, 0) <= top, "summary memory of phase %s: %s of %s"
                  % (phase, by_phase.get(phase), top))
        check(by_phase["time_stepping_total"] >= by_phase["fft_inverse"],
              "the stepping's peak below one of its steps' FFT's")
    # ic.hdf5, linear_power.txt, a snapshot, power table and density at a = 0.5 and 1, and the
    # halo catalogue and mass function at a = 1
    check(len(s["outputs"]) == 10, "summary outputs: %d" % len(s["outputs"]))
    check("step:observer:fof" in s["timings_seconds_max_over_ranks"], "summary lacks the FoF timing")

    # Standalone FoF on the final snapshot gives the in-situ catalogue.
    snap = os.path.join(out, "snapshot_a1.0000.hdf5")
    cat2 = os.path.join(args.work, "standalone_halos.hdf5")
    cmd = shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic, "fof", snap, "--min-particles", "8",
                                        "-o", cat2, "--overwrite"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(r.stdout, r.stderr)
    check(r.returncode == 0, "caustic fof failed")
    with h5py.File(os.path.join(out, "halos_a1p0000.0.hdf5"), "r") as f1, h5py.File(cat2, "r") as f2:
        n1 = f1["Header"].attrs["Ngroups_Total"]
        check(n1 > 0, "no halos found")
        for k in ("GroupLen", "GroupMinID"):
            check(np.array_equal(f1["Group/" + k][...], f2["Group/" + k][...]), "standalone FoF differs in " + k)
        check(np.allclose(f1["Group/GroupPos"][...], f2["Group/GroupPos"][...], atol=1e-4), "GroupPos differs")
        check(np.all(f1["Group/GroupLen"][...] >= 8), "group below min_particles")
        check(int(f1["Group/GroupLen"][...].sum()) <= n**3, "more members than particles")
    mf = np.loadtxt(os.path.join(out, "mass_function_a1.0000.txt"), ndmin=2)
    check(mf.shape[1] == 5 and mf[:, 4].sum() == n1, "mass function table does not count every group")
    # A missing snapshot is refused with a message naming it.
    r = subprocess.run(shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic, "fof",
                                                    os.path.join(args.work, "nope.hdf5")], capture_output=True, text=True)
    check(r.returncode == 2 and "nope.hdf5" in r.stderr, "missing snapshot: %s" % r.stderr)

    # Signals: a clean stop at a step boundary. SIGUSR1 through mpirun (Open MPI forwards it),
    # SIGTERM straight to the ranks (as SLURM delivers it to every task).
    for sig in (signal.SIGUSR1, signal.SIGTERM):
        interrupt(args, sig)
    single_particles(args)


def single_particles(args):
    # simulation.particle_precision = "single" (x and p stored as float) against the same run
    # with double particles on the same single-precision mesh (float32 snapshots for both): the
    # same outputs, positions in the box, spectra equal to float rounding, and the same halos to
    # a member or two.
    outs = {}
    for prec in ("double", "single"):
        out = os.path.join(args.work, "out_particles_" + prec)
        shutil.rmtree(out, ignore_errors=True)
        pfile = os.path.join(args.work, "particles_%s.toml" % prec)
        text = (PARAMS.format(out=out, steps=8)
                .replace('\nprecision = "double"\n',
                         '\nprecision = "single"\nparticle_precision = "%s"\n' % prec)
                .replace('snapshot_precision = "double"', 'snapshot_precision = "single"'))
        check('\nprecision = "single"\nparticle_precision = "%s"' % prec in text and
              'snapshot_precision = "single"' in text, "particle_precision test parameters")
        with open(pfile, "w") as f:
            f.write(text)
        cmd = shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic, "run", pfile]
        r = subprocess.run(cmd, capture_output=True, text=True)
        check(r.returncode == 0, "particle_precision = %s: run failed: %s" % (prec, r.stderr[-500:]))
        check(("particles " + prec) in r.stdout, "particle_precision = %s not in the log" % prec)
        outs[prec] = out
    if failures:
        return
    d, f = outs["double"], outs["single"]
    with h5py.File(os.path.join(f, "snapshot_a1.0000.hdf5"), "r") as h:
        pos = h["PartType1/Coordinates"][...]
        ids = h["PartType1/ParticleIDs"][...]
    check(np.array_equal(np.sort(ids), np.arange(16**3)), "single particles: IDs incomplete")
    check(np.all((pos >= 0) & (pos < 64.0)), "single particles: positions outside the box")
    # The initial conditions: float storage of the same 2LPT positions is what a float32 snapshot
    # of the double ones holds, bit for bit.
    with h5py.File(os.path.join(d, "ic.hdf5"), "r") as hd, h5py.File(os.path.join(f, "ic.hdf5"), "r") as hf:
        check(hf["PartType1/Coordinates"].dtype == np.float32, "ic.hdf5 Coordinates not float32")
        check(np.array_equal(hd["PartType1/Coordinates"][...], hf["PartType1/Coordinates"][...]),
              "single particles: initial positions differ from the double run's float32 ones")
        check(np.allclose(hd["PartType1/Velocities"][...], hf["PartType1/Velocities"][...], rtol=1e-6,
                          atol=1e-6), "single particles: initial velocities differ")
    with h5py.File(os.path.join(d, "snapshot_a1.0000.hdf5"), "r") as h:
        pos_d = h["PartType1/Coordinates"][...][np.argsort(h["PartType1/ParticleIDs"][...])]
    dx = pos[np.argsort(ids)] - pos_d
    dx -= 64.0 * np.round(dx / 64.0)
    worst = np.abs(dx).max()
    print("single against double particles: largest position difference %.2e Mpc/h" % worst)
    check(0 < worst < 1e-3, "single particles: positions differ by %g Mpc/h" % worst)
    for a in ("0.5000", "1.0000"):
        pd, ps = (np.loadtxt(os.path.join(o, "power_a%s.txt" % a)) for o in (d, f))
        err = np.max(np.abs(ps[:, 1] / pd[:, 1] - 1))
        check(err < 1e-4, "single particles: P(k) at a = %s differs by %.2e" % (a, err))
    with h5py.File(os.path.join(d, "halos_a1p0000.0.hdf5"), "r") as hd, \
            h5py.File(os.path.join(f, "halos_a1p0000.0.hdf5"), "r") as hf:
        nd, nf = hd["Header"].attrs["Ngroups_Total"], hf["Header"].attrs["Ngroups_Total"]
        md, mf = hd["Group/GroupLen"][...].sum(), hf["Group/GroupLen"][...].sum()
    check(nd > 0 and abs(int(nd) - int(nf)) <= 1 and abs(int(md) - int(mf)) <= 2,
          "single particles: halos %d (%d members) against %d (%d)" % (nf, mf, nd, md))


def rank_pids(parent):
    pids = subprocess.run(["pgrep", "-P", str(parent)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in pids]


def interrupt(args, sig):
    name = signal.Signals(sig).name
    out2 = os.path.join(args.work, "out_" + name)
    shutil.rmtree(out2, ignore_errors=True)
    pfile2 = os.path.join(args.work, "long.toml")
    with open(pfile2, "w") as f:
        f.write(PARAMS.format(out=out2, steps=4000).replace("a = [0.5, 1.0]", "a = [1.0]"))
    cmd = shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic, "run", pfile2]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in p.stdout:
        if " step " in line and "ETA" in line:
            break
    if sig == signal.SIGTERM:
        for pid in rank_pids(p.pid):
            os.kill(pid, sig)
    else:
        p.send_signal(sig)
    rest, _ = p.communicate(timeout=120)
    print(rest[-1500:])
    check(p.returncode == 128 + sig, "%s: exit code %s, expected %d" % (name, p.returncode, 128 + sig))
    summary = os.path.join(out2, "run_summary.json")
    check(os.path.exists(summary), name + ": no summary")
    if os.path.exists(summary):
        with open(summary) as f:
            s = json.load(f)
        check(s["interrupted"] and 0 < s["steps_done"] < 4000, name + ": summary steps %s" % s["steps_done"])
    check(not [x for x in os.listdir(out2) if x.endswith(".tmp")], name + ": temporary files left")
    check(not os.path.exists(os.path.join(out2, "snapshot_a1.0000.hdf5")), name + ": final snapshot written")


def compare_case(args):
    snaps = [os.path.join(args.work, "cli_run_np%d" % n, "out", "snapshot_a1.0000.hdf5") for n in (1, 2, 3)]
    data = []
    for s in snaps:
        with h5py.File(s, "r") as f:
            ids = f["PartType1/ParticleIDs"][...]
            order = np.argsort(ids)
            data.append(f["PartType1/Coordinates"][...][order])
    sep = 64.0 / 16
    for i in (1, 2):
        d = data[i] - data[0]
        d -= 64.0 * np.round(d / 64.0)
        worst = np.abs(d).max()
        print("ranks %d vs 1: largest position difference %.3e Mpc/h (%.3e of the separation)" %
              ((1, 2, 3)[i], worst, worst / sep))
        check(worst < 1e-6 * sep, "positions at %d ranks differ by %g Mpc/h" % ((1, 2, 3)[i], worst))
    # Halo catalogues identical (sorted by the smallest member ID).
    cats = [os.path.join(args.work, "cli_run_np%d" % n, "out", "halos_a1p0000.0.hdf5") for n in (1, 2, 3)]
    with h5py.File(cats[0], "r") as f0:
        ref = {k: f0["Group/" + k][...] for k in ("GroupLen", "GroupMinID", "GroupPos")}
    for c, nr in zip(cats[1:], (2, 3)):
        with h5py.File(c, "r") as f:
            for k in ("GroupLen", "GroupMinID"):
                check(np.array_equal(f["Group/" + k][...], ref[k]), "halo %s differs at %d ranks" % (k, nr))
            check(np.allclose(f["Group/GroupPos"][...], ref["GroupPos"], atol=1e-5), "GroupPos differs at %d ranks" % nr)


def emulator_case(args):
    """An [emulators.smooth] hook (a 3x3x3 box filter) in a run: its field equals the periodic box
    filter of the run's density field; the model's metadata travels with it; a model whose
    training cell size differs is refused unless forced, and a forced use is recorded."""
    os.makedirs(args.work, exist_ok=True)
    out = os.path.join(args.work, "out")
    shutil.rmtree(out, ignore_errors=True)
    model = os.path.join(args.work, "smooth.pt")
    r = subprocess.run([args.make_model, model, "2.0"], capture_output=True, text=True)
    check(r.returncode == 0, "make_test_model failed: " + r.stderr)
    hook = '\n[emulators.smooth]\nmodel = "%s"\na = [1.0]\n' % model
    pfile = os.path.join(args.work, "hook.toml")
    with open(pfile, "w") as f:
        f.write(PARAMS.format(out=out, steps=4) + hook)
    cmd = shlex.split(args.mpiexec) + ["-n", str(args.np), args.caustic, "run", pfile]
    r = subprocess.run(cmd, capture_output=True, text=True)
    print(r.stdout[-1500:], r.stderr[-1500:])
    check(r.returncode == 0, "run with the emulator hook failed")
    if r.returncode == 0:
        with h5py.File(os.path.join(out, "density_a1.0000.hdf5"), "r") as f:
            rho = f["Fields/density"][...].astype(np.float64)
        with h5py.File(os.path.join(out, "smooth_a1.0000.hdf5"), "r") as f:
            sm = f["Fields/density_smooth"][...]
            attrs = dict(f["Fields"].attrs)
        ref = np.zeros_like(rho)
        for dx in (-1, 0, 1):
            for dy in (-1, 0, 1):
                for dz in (-1, 0, 1):
                    ref += np.roll(rho, (dx, dy, dz), axis=(0, 1, 2))
        ref /= 27.0
        err = np.abs(sm - ref).max()
        print("hook output vs periodic box filter: largest difference %.2e" % err)
        check(err < 1e-5, "hook output differs from the periodic box filter by %g" % err)
        meta = json.loads(attrs["model_metadata"].decode() if isinstance(attrs["model_metadata"], bytes)
                          else attrs["model_metadata"])
        check(meta["kind"] == "box_filter", "model metadata not in the output")
        forced = attrs["forced"].decode() if isinstance(attrs["forced"], bytes) else attrs["forced"]
        check(forced == "false", "in-domain use recorded as forced")
    # Out of domain (training cell size 1 Mpc/h, the run's is 2): refused, nothing of it written.
    model2 = os.path.join(args.work, "smooth_1mpc.pt")
    subprocess.run([args.make_model, model2, "1.0"], check=True)
    out2 = os.path.join(args.work, "out_refused")
    shutil.rmtree(out2, ignore_errors=True)
    with open(pfile, "w") as f:
        f.write(PARAMS.format(out=out2, steps=4) + hook.replace(model, model2))
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode != 0 and "refused outside its validity domain" in r.stderr and "cell size" in r.stderr,
          "out-of-domain model not refused: %s" % r.stderr[-800:])
    check(r.returncode == 2 and not os.path.exists(out2), "refused model: exit %d, output directory %s" %
          (r.returncode, "exists" if os.path.exists(out2) else "absent"))
    # Forced: applied, and the output says so.
    out3 = os.path.join(args.work, "out_forced")
    shutil.rmtree(out3, ignore_errors=True)
    with open(pfile, "w") as f:
        f.write(PARAMS.format(out=out3, steps=4) + hook.replace(model, model2) + "force = true\n")
    r = subprocess.run(cmd, capture_output=True, text=True)
    check(r.returncode == 0 and "outside its validity domain" in r.stderr, "forced run: %s" % r.stderr[-800:])
    if r.returncode == 0:
        with h5py.File(os.path.join(out3, "smooth_a1.0000.hdf5"), "r") as f:
            a = dict(f["Fields"].attrs)
        forced = a["forced"].decode() if isinstance(a["forced"], bytes) else a["forced"]
        warn = a["validity_warnings"].decode() if isinstance(a["validity_warnings"], bytes) else a["validity_warnings"]
        check(forced == "true" and "cell size" in warn, "forced use not recorded: %s / %s" % (forced, warn))
    lagrangian_hook(args, cmd)
    runtime_loading(args, cmd, pfile, hook, model)


def summary_libtorch(out):
    with open(os.path.join(out, "run_summary.json")) as f:
        return json.load(f)["versions"]["libtorch"]


def runtime_loading(args, cmd, pfile, hook, model):
    """The emulator runtime (LibTorch) is a module loaded only by runs that configure an emulator:
    the binary does not link LibTorch, a plain run does not load it, a run with a hook does; a
    missing or foreign module is an input error naming the setting and the file, and does not
    concern runs without emulators."""
    r = subprocess.run(["ldd", args.caustic], capture_output=True, text=True)
    check(r.returncode == 0 and "libtorch" not in r.stdout,
          "the caustic binary links LibTorch:\n" + r.stdout)
    linked = r.stdout
    out = os.path.join(args.work, "out")  # the hook run of emulator_case
    if os.path.exists(os.path.join(out, "run_summary.json")):
        v = summary_libtorch(out)
        check(v[0].isdigit(), "a run with an emulator records LibTorch %r" % v)
    plain = os.path.join(args.work, "out_plain")
    shutil.rmtree(plain, ignore_errors=True)
    with open(pfile, "w") as f:
        f.write(PARAMS.format(out=plain, steps=2))
    env = dict(os.environ, CAUSTIC_EMULATOR_RUNTIME=os.path.join(args.work, "absent.so"))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    check(r.returncode == 0, "a run without emulators needs the module: %s" % r.stderr[-800:])
    if r.returncode == 0:
        check(summary_libtorch(plain) == "not loaded",
              "a run without emulators loaded LibTorch: %s" % summary_libtorch(plain))
    empty = os.path.join(args.work, "empty.so")
    open(empty, "w").close()
    libm = ""
    for line in linked.splitlines():
        if "libm.so" in line and "=>" in line:
            libm = line.split("=>")[1].split()[0]
    cases = [(os.path.join(args.work, "absent.so"), "does not exist"),
             (empty, "cannot load"), (libm, "not a Caustic emulator runtime")]
    for path, why in cases:
        if not path:
            continue
        bad = os.path.join(args.work, "out_bad_runtime")
        shutil.rmtree(bad, ignore_errors=True)
        with open(pfile, "w") as f:
            f.write(PARAMS.format(out=bad, steps=2) + hook)
        r = subprocess.run(cmd, capture_output=True, text=True,
                           env=dict(os.environ, CAUSTIC_EMULATOR_RUNTIME=path))
        ok = (r.returncode == 2 and "[emulators.smooth]" in r.stderr and path in r.stderr
              and why in r.stderr and not os.path.exists(bad))
        check(ok, "emulator runtime %s (%s): exit %d, output %s, stderr: %s" %
              (path, why, r.returncode, "exists" if os.path.exists(bad) else "absent",
               r.stderr[-600:]))
    # The module missing on one rank only: every rank ends (no rank left waiting), with that
    # rank's message.
    absent = os.path.join(args.work, "absent_on_rank1.so")
    bad = os.path.join(args.work, "out_bad_runtime")
    shutil.rmtree(bad, ignore_errors=True)
    script = ('if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then export CAUSTIC_EMULATOR_RUNTIME=%s; fi; '
              'exec "$0" "$@"' % absent)
    one = shlex.split(args.mpiexec) + ["-n", "2", "sh", "-c", script, args.caustic, "run", pfile]
    try:
        r = subprocess.run(one, capture_output=True, text=True, timeout=120)
        check(r.returncode == 2 and absent in r.stderr and "on rank 1" in r.stderr
              and not os.path.exists(bad),
              "module missing on rank 1 only: exit %d, output %s, stderr: %s" %
              (r.returncode, "exists" if os.path.exists(bad) else "absent", r.stderr[-600:]))
    except subprocess.TimeoutExpired:
        check(False, "module missing on rank 1 only: the run hung")


def box_filter(f):
    ref = np.zeros_like(f)
    for dx in (-1, 0, 1):
        for dy in (-1, 0, 1):
            for dz in (-1, 0, 1):
                ref += np.roll(f, (dx, dy, dz), axis=(0, 1, 2))
    return ref / 27.0


def lagrangian_hook(args, cmd):
    """A Lagrangian hook (box filter of displacement_x on the 16^3 particle lattice, 4 Mpc/h
    cells) run at a = 1 and after every step: the values sent back to the particles equal the
    box filter of the displacement computed from the final snapshot, matched by ID; every step
    writes its own file. (The model is trained for z <= 1; the early steps need force = true.)"""
    out = os.path.join(args.work, "out_lagrangian")
    shutil.rmtree(out, ignore_errors=True)
    model = os.path.join(args.work, "smooth_disp.pt")
    subprocess.run([args.make_model, model, "4.0", "displacement_x", "displacement_x_smooth"], check=True)
    hook = ('\n[emulators.lag]\nmodel = "%s"\nspace = "lagrangian"\ninputs = ["displacement_x"]\n'
            'a = [1.0]\nevery_step = true\nforce = true\n' % model)
    pfile = os.path.join(args.work, "hook_lagrangian.toml")
    with open(pfile, "w") as f:
        f.write(PARAMS.format(out=out, steps=4) + hook)
    r = subprocess.run(cmd[:-1] + [pfile], capture_output=True, text=True)
    print(r.stdout[-800:], r.stderr[-800:])
    check(r.returncode == 0, "run with the Lagrangian hook failed")
    if r.returncode != 0:
        return
    n, box = 16, 64.0
    with h5py.File(os.path.join(out, "snapshot_a1.0000.hdf5"), "r") as f:
        x = f["PartType1/Coordinates"][:, 0].astype(np.float64)
        ids = f["PartType1/ParticleIDs"][...]
    q = (ids // (n * n)) * box / n + 0.5 * box / 32  # lattice offset: half a PM cell
    d = x - q
    d -= box * np.round(d / box)
    lat = np.zeros(n ** 3)
    lat[ids] = d
    ref = box_filter(lat.reshape(n, n, n)).ravel()
    with h5py.File(os.path.join(out, "lag_a1.0000.hdf5"), "r") as f:
        got_ids = f["PartType1/ParticleIDs"][...]
        got = f["PartType1/displacement_x_smooth"][...]
        space = f["PartType1"].attrs["space"]
    space = space.decode() if isinstance(space, bytes) else space
    check(sorted(got_ids.tolist()) == list(range(n ** 3)), "Lagrangian output does not hold every particle once")
    err = np.abs(got - ref[got_ids]).max()
    print("Lagrangian hook vs box filter of the snapshot displacement: largest difference %.2e Mpc/h "
          "(displacements up to %.2f)" % (err, np.abs(d).max()))
    check(err < 1e-4 and space == "lagrangian", "Lagrangian hook output differs by %g (space %s)" % (err, space))
    steps = sorted(p for p in os.listdir(out) if p.startswith("lag_step"))
    print("every-step outputs:", steps)
    check(len(steps) == 3, "expected 3 every-step outputs (steps 1-3), found %s" % steps)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["run", "compare", "emulator"])
    ap.add_argument("--make-model", default=None)
    ap.add_argument("--caustic")
    ap.add_argument("--np", type=int, default=1)
    ap.add_argument("--work", required=True, help="run: its work directory; compare: the directory holding cli_run_np1..3")
    ap.add_argument("--mpiexec", default="mpirun")
    args = ap.parse_args()
    if args.mode == "run":
        run_case(args)
    elif args.mode == "emulator":
        emulator_case(args)
    else:
        compare_case(args)
    finish()


if __name__ == "__main__":
    main()
