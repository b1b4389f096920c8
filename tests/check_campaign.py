#!/usr/bin/env python3
"""A 4-member campaign on a real single-node SLURM cluster (slurmctld + slurmd on this machine,
jobs/slurm/local-cluster.sh): `caustic campaign make` (Latin hypercube over Omega_m and sigma8),
`submit` as an sbatch array job; member 2 is made to fail on its first attempt (a typo in its
parameter file); `status` reports it; after the fix `submit` resubmits only that member; every
member's final snapshot is verified against the manifest and every member's log shows its steps.
Then one run through the tree's share/caustic/slurm/run.sbatch, submitted twice (the second finds
it complete).

All of it twice: with the build tree's caustic, and with a tree installed by `cmake --install
BUILD --prefix WORK/prefix`. The job scripts of each may name files of that tree and of the
campaign only: nothing in the source checkout (outside the build tree), so the same works for a
build made anywhere."""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks

BASE = COSMOLOGY + """
[simulation]
box = 64.0
particles = 16
mesh = 32
a_start = 0.05
a_end = 1.0
steps = 8
seed = 100

[output]
directory = "unused"
a = [0.5, 1.0]
power_spectrum = false
"""

CAMPAIGN = """
[campaign]
base = "base.toml"
members = 4
design = "lhs"
seed = 3
directory = "{dir}"
ranks = 2
checkpoint_every = 2

[campaign.slurm]
time = "00:05:00"

[parameters]
"cosmology.Omega_m" = [0.28, 0.32]
"cosmology.sigma8" = [0.75, 0.85]
"""

check = Checks()
failures = check.failures


def wait_queue_empty(env, timeout=600):
    t0 = time.time()
    while time.time() - t0 < timeout:
        r = subprocess.run(["squeue", "-h"], capture_output=True, text=True, env=env)
        if r.returncode == 0 and not r.stdout.strip():
            return True
        time.sleep(1)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--cluster", required=True, help="jobs/slurm/local-cluster.sh")
    ap.add_argument("--work", required=True)
    ap.add_argument("--build", required=True, help="the build tree (for cmake --install)")
    ap.add_argument("--source", required=True, help="the source checkout (must not be referenced)")
    args = ap.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    os.makedirs(args.work)
    prefix = os.path.join(args.work, "prefix")
    r = subprocess.run(["cmake", "--install", args.build, "--prefix", prefix], capture_output=True, text=True)
    print(r.stdout[-2000:], r.stderr[-2000:])
    if not check(r.returncode == 0, "cmake --install failed"):
        sys.exit(1)
    build = os.path.realpath(args.build)
    trees = [("build", build, os.path.realpath(args.caustic), os.path.join(build, "share")),
             ("installed", prefix, os.path.join(prefix, "bin", "caustic"), os.path.join(prefix, "share"))]
    for name, root, exe, share in trees:
        check(os.path.isfile(exe) and os.path.isfile(os.path.join(share, "caustic", "slurm", "run.sbatch")),
              "%s tree: no caustic or run.sbatch under %s" % (name, root))
    state = os.path.join(args.work, "slurm")
    r = subprocess.run(["bash", args.cluster, "start", state], capture_output=True, text=True)
    print(r.stdout, r.stderr)
    if not check(r.returncode == 0 and "idle" in r.stdout, "the local SLURM cluster did not start"):
        sys.exit(1)
    env = dict(os.environ, SLURM_CONF=os.path.join(state, "slurm.conf"))
    try:
        for name, root, exe, share in trees:
            print("=== %s tree: %s" % (name, root), flush=True)
            work = os.path.join(args.work, name)
            os.makedirs(work)
            run_campaign(exe, work, root, args.source, env)
            run_sbatch(os.path.join(share, "caustic", "slurm", "run.sbatch"), work, root, args.source, env)
    finally:
        subprocess.run(["bash", args.cluster, "stop", state])
    if failures:
        sys.exit(1)
    print("OK")


def check_paths(script, allowed, source):
    """Every absolute path in the job script `script` lies under one of `allowed`; none in the
    source checkout outside them."""
    with open(script) as f:
        text = f.read()
    text = re.sub(r'"?\$\{?\w+\}?"?/', "VAR/", text)  # "$outdir"/checkpoints: relative to a variable
    paths = re.findall(r"(?<![\w>.$}])(/[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.%+-]+)+)", text)
    paths = [p.rstrip(".") for p in paths]

    def under(p, d):
        p, d = os.path.realpath(p), os.path.realpath(d)
        return p == d or p.startswith(d + "/")

    bad = [p for p in paths if not p.startswith(("/usr/", "/bin/", "/dev/")) and not any(under(p, a) for a in allowed)]
    check(paths and not bad, "%s names files outside %s: %s" % (script, allowed, bad))
    inside = [p for p in paths if under(p, source) and not any(under(p, a) for a in allowed)]
    check(not inside, "%s names files in the source checkout: %s" % (script, inside))


def run_sbatch(script, work, root, source, env):
    """One run through run.sbatch: it completes; submitted again, it finds the run complete."""
    check_paths(script, [root], source)
    out = os.path.join(work, "single")
    params = os.path.join(work, "single.toml")
    with open(params, "w") as f:
        f.write(BASE.replace('directory = "unused"', 'directory = "%s"' % out))
    for attempt in (1, 2):
        log = os.path.join(work, "single_%d.log" % attempt)
        r = subprocess.run(["sbatch", "--ntasks=2", "--chdir", work, "--output", log, script, params],
                           capture_output=True, text=True, env=env)
        print(r.stdout, r.stderr[-500:])
        if not check(r.returncode == 0, "sbatch %s failed" % script):
            return
        check(wait_queue_empty(env), "the run.sbatch job did not finish")
        text = open(log).read() if os.path.exists(log) else ""
        print(text[-1500:])
        if attempt == 1:
            check("step    8/8" in text and os.path.exists(os.path.join(out, "snapshot_a1.0000.hdf5")),
                  "run.sbatch: the run did not complete: %s" % text[-500:])
        else:
            check("holds a complete run; nothing to do" in text, "run.sbatch resubmitted: %s" % text[-500:])


def run_campaign(caustic, work, root, source, env):
    with open(os.path.join(work, "base.toml"), "w") as f:
        f.write(BASE)
    cdir = os.path.join(work, "campaign")
    cfile = os.path.join(work, "campaign.toml")
    with open(cfile, "w") as f:
        f.write(CAMPAIGN.format(dir=cdir))
    r = subprocess.run([caustic, "campaign", "make", cfile], capture_output=True, text=True, env=env)
    print(r.stdout, r.stderr[-500:])
    if not check(r.returncode == 0, "campaign make failed"):
        return
    check_paths(os.path.join(cdir, "campaign.sbatch"), [root, work], source)
    r = subprocess.run([caustic, "campaign", "make", cfile], capture_output=True, text=True, env=env)
    check(r.returncode == 2 and "already holds a campaign" in r.stderr, "a second make was not refused")
    with open(os.path.join(cdir, "manifest.json")) as f:
        man = json.load(f)
    om = [m["values"]["cosmology.Omega_m"] for m in man["members"]]
    s8 = [m["values"]["cosmology.sigma8"] for m in man["members"]]
    check(sorted(int((v - 0.28) / 0.01) for v in om) == [0, 1, 2, 3] and
          sorted(int((v - 0.75) / 0.025) for v in s8) == [0, 1, 2, 3], "design not a Latin hypercube: %s %s" % (om, s8))
    # Member 2 fails on its first attempt: a typo in its parameter file.
    p2 = man["members"][2]["params"]
    with open(p2) as f:
        good = f.read()
    with open(p2, "w") as f:
        f.write(good + "\n[simulaton]\nsteps = 3\n")
    r = subprocess.run([caustic, "campaign", "submit", cdir], capture_output=True, text=True, env=env)
    print(r.stdout, r.stderr[-500:])
    if not check(r.returncode == 0 and "submitted members 0,1,2,3" in r.stdout, "first submission failed"):
        return
    check(wait_queue_empty(env), "the array job did not finish")
    r = subprocess.run([caustic, "campaign", "status", cdir], capture_output=True, text=True, env=env)
    print(r.stdout)
    check(r.returncode == 1 and "0002  failed      exit code 2" in r.stdout and "done 3," in r.stdout,
          "status after the first attempt: %s" % r.stdout)
    log2 = os.path.join(cdir, "logs", "member_2.log")
    if os.path.exists(log2):
        with open(log2) as f:
            check("[simulaton]: unknown section" in f.read(), "member 2's log does not say why it failed")
    # Fixed, resubmitted: only member 2 goes.
    with open(p2, "w") as f:
        f.write(good)
    r = subprocess.run([caustic, "campaign", "submit", cdir], capture_output=True, text=True, env=env)
    print(r.stdout, r.stderr[-500:])
    check(r.returncode == 0 and "submitted members 2 " in r.stdout, "resubmission: %s" % r.stdout)
    check(wait_queue_empty(env), "the resubmitted job did not finish")
    r = subprocess.run([caustic, "campaign", "status", cdir], capture_output=True, text=True, env=env)
    print(r.stdout)
    check(r.returncode == 0 and "done 4," in r.stdout, "not every member done: %s" % r.stdout)
    # Outputs: each member's final snapshot has its own Omega_m, seed and parameters.
    for m in man["members"]:
        snap = os.path.join(m["output"], "snapshot_a1.0000.hdf5")
        if not check(os.path.exists(snap), "member %d: no final snapshot" % m["index"]):
            continue
        with h5py.File(snap, "r") as f:
            o = float(f["Header"].attrs["Omega0"])
            h = f["Parameters"].attrs["parameter_hash"]
            h = h.decode() if isinstance(h, bytes) else h
            ids = f["PartType1/ParticleIDs"][...]
            x = f["PartType1/Coordinates"][...]
        check(abs(o - m["values"]["cosmology.Omega_m"]) < 1e-9 and h == m["parameter_hash"] and
              len(ids) == 16 ** 3 and np.isfinite(x).all(),
              "member %d: snapshot does not match the manifest" % m["index"])
        log = os.path.join(cdir, "logs", "member_%d.log" % m["index"])
        text = open(log).read() if os.path.exists(log) else ""
        check("step    8/8" in text and "wrote " + snap in text, "member %d: its log does not show the run" % m["index"])
        with open(os.path.join(m["output"], "run_summary.json")) as f:
            s = json.load(f)
        check(not s["interrupted"] and s["steps_done"] == s["steps_total"] and s["checkpoints_written"] >= 1,
              "member %d: summary %s" % (m["index"], s))


if __name__ == "__main__":
    main()
