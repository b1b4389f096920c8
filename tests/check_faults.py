#!/usr/bin/env python3
"""Checkpoint/restart and fault injection for `caustic run`.

1. A 2-rank run killed with SIGKILL in the middle (while a checkpoint is being written, when the
   poll catches it) and resumed (--resume) writes a final snapshot
   whose datasets are byte-identical to an uninterrupted run's; resumed on 3 ranks it agrees
   within the rank-invariance tolerance (double precision).
2. A corrupt newest checkpoint (as left by a kill during its write on a file system without
   atomic rename) and a leftover temporary file are skipped: the resume uses the previous one.
3. A NaN injected into the state stops the run (exit 3) naming the step and the last checkpoint;
   no later output is written.
4. An existing run directory is not overwritten without --overwrite.
5. A read-only output directory and a full disk (small tmpfs mounts; need root) give a clear
   error with the path and no complete-looking file.
6. A truncated snapshot is refused by `caustic fof` with a clear error.
"""
import argparse
import glob
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks

PARAMS = COSMOLOGY + """
[simulation]
box = 128.0
particles = {particles}
mesh = {mesh}
a_start = 0.05
a_end = 1.0
steps = {steps}
seed = 11
precision = "double"

[output]
directory = "{out}"
a = [0.5, 1.0]
snapshot_precision = "double"
power_spectrum = false

[checkpoint]
every_steps = {every}
keep = 3

[fft]
wisdom = "{wisdom}"
"""

check = Checks()
failures = check.failures


def write_params(path, out, particles=64, mesh=128, steps=40, every=4):
    # One FFTW wisdom file for all runs: measured plans can differ between two plannings, and
    # the uninterrupted and the killed run must use the same plans to agree bit for bit (the
    # resume also reads the killed run's own wisdom, in its output directory).
    wisdom = os.path.join(os.path.dirname(path), "fftw.wisdom")
    with open(path, "w") as f:
        f.write(PARAMS.format(out=out, particles=particles, mesh=mesh, steps=steps, every=every,
                              wisdom=wisdom))


def datasets(path):
    with h5py.File(path, "r") as f:
        return {k: f["PartType1/" + k][...] for k in ("Coordinates", "Velocities", "ParticleIDs")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--mpiexec", default="mpiexec")
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    mpi = lambda n: shlex.split(args.mpiexec) + ["-n", str(n), args.caustic]

    # 1. SIGKILL in the middle, resume.
    full, part = os.path.join(args.work, "full"), os.path.join(args.work, "killed")
    pf, pk = os.path.join(args.work, "full.toml"), os.path.join(args.work, "killed.toml")
    write_params(pf, full)
    write_params(pk, part)
    r = subprocess.run(mpi(2) + ["run", pf], capture_output=True, text=True)
    check(r.returncode == 0, "uninterrupted run failed: " + r.stderr[-500:])
    proc = subprocess.Popen(mpi(2) + ["run", pk], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    # Kill while checkpoint 24 is being written (its temporary file exists), if the poll catches
    # it; otherwise right after it.
    cdir = os.path.join(part, "checkpoints")
    target = os.path.join(cdir, "checkpoint_step00024.h5")
    partial = os.path.join(cdir, ".checkpoint_step00024.h5.*.tmp")  # .<name>.<host>-<pid>.tmp
    t0 = time.time()
    while not (glob.glob(partial) or os.path.exists(target)) and proc.poll() is None \
            and time.time() - t0 < 300:
        time.sleep(0.0005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # The ranks may sit outside mpirun's process group: SIGKILL any that are left, and wait until
    # none is, before looking at (and copying) what the kill left behind.
    for _ in range(200):
        left = subprocess.run(["pgrep", "-f", pk], capture_output=True, text=True).stdout.split()
        if not left:
            break
        for pid in left:
            try:
                os.kill(int(pid), signal.SIGKILL)
            except (ProcessLookupError, ValueError):
                pass
        time.sleep(0.05)
    during = bool(glob.glob(partial)) and not os.path.exists(target)
    print("SIGKILL %s the write of checkpoint 24" % ("during" if during else "after"))
    final = os.path.join(part, "snapshot_a1.0000.hdf5")
    check((os.path.exists(target) or during) and not os.path.exists(final),
          "the run was not killed in the middle (final snapshot %s)" % os.path.exists(final))
    ck = sorted(os.path.basename(p) for p in glob.glob(os.path.join(part, "checkpoints", "*.h5")))
    print("killed after", ck[-1] if ck else "no checkpoint")
    backup = os.path.join(args.work, "killed_copy")
    shutil.copytree(part, backup)
    r = subprocess.run(mpi(2) + ["run", pk], capture_output=True, text=True)
    check(r.returncode == 2 and "--resume" in r.stderr, "a second run over the killed one was not refused")
    r = subprocess.run(mpi(2) + ["run", pk, "--resume"], capture_output=True, text=True)
    check(r.returncode == 0 and "resuming from" in r.stdout, "resume failed: " + r.stderr[-800:])
    if r.returncode == 0:
        a, b = datasets(os.path.join(full, "snapshot_a1.0000.hdf5")), datasets(final)
        same = all(a[k].tobytes() == b[k].tobytes() for k in a)
        print("resumed on 2 ranks: final snapshot datasets byte-identical:", same)
        check(same, "resumed snapshot differs from the uninterrupted run")
    # ... and on 3 ranks, from the state the kill left (restored in place: the parameters, output
    # directory included, must be those of the checkpoint).
    shutil.rmtree(part)
    shutil.move(backup, part)
    r = subprocess.run(mpi(3) + ["run", pk, "--resume"], capture_output=True, text=True)
    check(r.returncode == 0, "3-rank resume failed: " + r.stderr[-800:])
    if r.returncode == 0:
        a, b = datasets(os.path.join(full, "snapshot_a1.0000.hdf5")), datasets(final)
        ia, ib = np.argsort(a["ParticleIDs"]), np.argsort(b["ParticleIDs"])
        d = a["Coordinates"][ia] - b["Coordinates"][ib]
        d -= 128.0 * np.round(d / 128.0)
        err = np.abs(d).max()
        print("resumed on 3 ranks: largest position difference %.2e Mpc/h" % err)
        # The rank-invariance tolerance of the run tests (double precision): 1e-6 of the
        # mean particle separation.
        check(err < 1e-6 * 128.0 / 64, "3-rank resume differs by %g Mpc/h" % err)

    # 2. A corrupt newest checkpoint and a leftover temporary file are skipped.
    small = os.path.join(args.work, "corrupt")
    ps = os.path.join(args.work, "corrupt.toml")
    write_params(ps, small, particles=16, mesh=32, steps=12, every=3)
    r = subprocess.run(mpi(2) + ["run", ps], capture_output=True, text=True)
    check(r.returncode == 0, "small run failed")
    # As a run killed after its last checkpoint leaves it: no summary (a complete run is not
    # resumed).
    os.remove(os.path.join(small, "run_summary.json"))
    cdir = os.path.join(small, "checkpoints")
    newest = sorted(glob.glob(os.path.join(cdir, "checkpoint_step*.h5")))[-1]
    with open(newest, "r+b") as f:  # flip bytes in the particle data
        f.seek(os.path.getsize(newest) - 3000)
        chunk = bytearray(f.read(100))
        f.seek(os.path.getsize(newest) - 3000)
        f.write(bytes(x ^ 0xFF for x in chunk))
    trunc = os.path.join(cdir, "checkpoint_step00011.h5")
    with open(newest, "rb") as src, open(trunc, "wb") as dst:
        dst.write(src.read(2000))
    with open(os.path.join(cdir, ".checkpoint_step00012.h5.tmp"), "wb") as f:
        f.write(b"partial")
    os.remove(os.path.join(small, "snapshot_a1.0000.hdf5"))
    r = subprocess.run(mpi(2) + ["run", ps, "--resume"], capture_output=True, text=True)
    print("\n".join(l for l in r.stdout.splitlines() if "warning" in l or "resuming" in l))
    check(r.returncode == 0 and "skipping" in r.stdout and "checksum" in r.stdout + r.stderr,
          "corrupt checkpoints not skipped: " + (r.stdout + r.stderr)[-800:])

    # 3. NaN injected after step 5: exit 3, message, nothing after.
    nan = os.path.join(args.work, "nan")
    pn = os.path.join(args.work, "nan.toml")
    write_params(pn, nan, particles=16, mesh=32, steps=12, every=3)
    env = dict(os.environ, CAUSTIC_FAULT_NAN_AFTER_STEP="5")
    r = subprocess.run(mpi(2) + ["run", pn], capture_output=True, text=True, env=env)
    print(r.stderr.strip().splitlines()[0] if r.stderr.strip() else "")
    check(r.returncode == 3 and "non-finite" in r.stderr and "after step 6" in r.stderr and
          "checkpoint_step00003.h5" in r.stderr,
          "NaN not stopped as expected: exit %d, %s" % (r.returncode, r.stderr[-500:]))
    check(not os.path.exists(os.path.join(nan, "snapshot_a0.5000.hdf5")) and
          not os.path.exists(os.path.join(nan, "checkpoints", "checkpoint_step00006.h5")),
          "outputs written from a non-finite state")

    # 4. (covered in 1: a second run over the killed one is refused without --resume/--overwrite)

    # 5. Read-only directory and full disk, on small tmpfs mounts (root only).
    ro, full_fs = os.path.join(args.work, "ro"), os.path.join(args.work, "tiny")
    os.makedirs(ro)
    os.makedirs(full_fs)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro],
                             capture_output=True).returncode == 0
    mounted = mounted and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", full_fs],
                                         capture_output=True).returncode == 0
    if not mounted:
        print("SKIPPED read-only and full-disk cases: cannot mount tmpfs (needs root)")
    else:
        try:
            pr = os.path.join(args.work, "ro.toml")
            write_params(pr, os.path.join(ro, "run"), particles=16, mesh=32, steps=4, every=0)
            r = subprocess.run(mpi(2) + ["run", pr], capture_output=True, text=True)
            print(r.stderr.strip().splitlines()[0] if r.stderr.strip() else "")
            check(r.returncode == 2 and "Read-only" in r.stderr and ro in r.stderr,
                  "read-only directory: exit %d, %s" % (r.returncode, r.stderr[-400:]))
            pd = os.path.join(args.work, "tiny.toml")
            write_params(pd, full_fs, particles=32, mesh=64, steps=4, every=0)  # 32^3 x 56 B > 600 kB
            r = subprocess.run(mpi(2) + ["run", pd, "--overwrite"], capture_output=True, text=True)
            print(r.stderr.strip().splitlines()[0] if r.stderr.strip() else "")
            check(r.returncode != 0 and "no space" in r.stderr.lower() and full_fs in r.stderr,
                  "full disk: exit %d, %s" % (r.returncode, r.stderr[-600:]))
            left = [p for p in os.listdir(full_fs) if p.endswith(".hdf5")]
            check(not left, "complete-looking files on the full disk: %s" % left)
        finally:
            subprocess.run(["umount", ro])
            subprocess.run(["umount", full_fs])

    # 7. Single-precision particles (simulation.particle_precision = "single"): a run stopped
    # after step 5 (its checkpoint holds the float bits) and resumed writes a final snapshot
    # byte-identical to the uninterrupted run's; resuming it as a double-precision run is refused
    # with the setting named.
    single = ["--set", "simulation.particle_precision=single", "--set", "simulation.precision=single"]
    sfull, sstop = os.path.join(args.work, "single_full"), os.path.join(args.work, "single_stop")
    pf1, ps1 = os.path.join(args.work, "single_full.toml"), os.path.join(args.work, "single_stop.toml")
    write_params(pf1, sfull, particles=16, mesh=32, steps=12, every=0)
    write_params(ps1, sstop, particles=16, mesh=32, steps=12, every=0)
    r = subprocess.run(mpi(2) + ["run", pf1] + single, capture_output=True, text=True)
    check(r.returncode == 0, "single-precision run failed: " + r.stderr[-500:])
    env = dict(os.environ, CAUSTIC_FAULT_STOP_AFTER_STEP="5")
    r = subprocess.run(mpi(2) + ["run", ps1] + single, capture_output=True, text=True, env=env)
    check(r.returncode == 128 + signal.SIGUSR1, "single-precision stop: exit %d, %s"
          % (r.returncode, r.stderr[-400:]))
    r = subprocess.run(mpi(2) + ["run", ps1, "--resume"], capture_output=True, text=True)
    check(r.returncode == 2 and "particle_precision" in r.stderr,
          "a single-precision checkpoint resumed as double: exit %d, %s" % (r.returncode, r.stderr[-400:]))
    r = subprocess.run(mpi(2) + ["run", ps1, "--resume"] + single, capture_output=True, text=True)
    check(r.returncode == 0 and "resuming from" in r.stdout,
          "single-precision resume failed: " + r.stderr[-800:])
    if r.returncode == 0:
        a = datasets(os.path.join(sfull, "snapshot_a1.0000.hdf5"))
        b = datasets(os.path.join(sstop, "snapshot_a1.0000.hdf5"))
        same = all(a[k].tobytes() == b[k].tobytes() for k in a)
        print("single-precision particles, resumed: final snapshot byte-identical:", same)
        check(same, "resumed single-precision snapshot differs from the uninterrupted run")

    # 6. A truncated snapshot.
    snap = os.path.join(full, "snapshot_a1.0000.hdf5")
    bad = os.path.join(args.work, "truncated.hdf5")
    with open(snap, "rb") as src, open(bad, "wb") as dst:
        dst.write(src.read(os.path.getsize(snap) // 2))
    r = subprocess.run(mpi(2) + ["fof", bad], capture_output=True, text=True)
    print(r.stderr.strip().splitlines()[0] if r.stderr.strip() else "")
    check(r.returncode == 2 and "truncated" in r.stderr and bad in r.stderr,
          "truncated snapshot: exit %d, %s" % (r.returncode, r.stderr[-400:]))
    if failures:
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
