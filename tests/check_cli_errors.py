#!/usr/bin/env python3
"""What a user meets at the command line, case by case (issue 20's list and its siblings).

Every case runs under a timeout (a hang fails it). Input errors must exit with code 2 and a
message naming the setting, before anything is written: the case's directory must afterwards
hold nothing new (no output directory created, no temporary, no lock). Cases that must succeed
check what they wrote. The table is CASES below; each entry is (name, function).
"""
import argparse
import glob
import hashlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

import h5py
import json

from e2e import COSMOLOGY, Checks

check = Checks()
ARGS = None

PARAMS = COSMOLOGY + """
[simulation]
box = 64.0
particles = {particles}
mesh = {mesh}
a_start = 0.05
a_end = 1.0
steps = {steps}
seed = {seed}

[output]
directory = "{out}"
a = {a}
power_spectrum = false
{extra}
"""

TIMEOUT = 90


def params(path, out, particles=16, mesh=32, steps=8, seed=5, a="[0.5, 1.0]", extra=""):
    with open(path, "w") as f:
        f.write(PARAMS.format(out=out, particles=particles, mesh=mesh, steps=steps, seed=seed, a=a,
                              extra=extra))
    return path


def caustic(args, np=1, env=None, timeout=TIMEOUT, cwd=None):
    """Runs caustic (one rank: the binary itself; more: through mpiexec); returns the completed
    process, or None on a timeout (a hang), after killing it."""
    cmd = ([ARGS.caustic] if np == 1 else shlex.split(ARGS.mpiexec) + ["-n", str(np), ARGS.caustic]) + args
    print("$", " ".join(cmd), flush=True)
    e = dict(os.environ, **(env or {}))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=e, cwd=cwd,
                         start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        return None
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def snapshot_of_dir(d):
    """Names and content hashes of every file under d (to show that nothing changed)."""
    result = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                result[os.path.relpath(p, d)] = hashlib.sha1(fh.read()).hexdigest()
    return result


def expect_error(name, r, pattern, case_dir, before):
    """Exit code 2, the message, and the case directory exactly as before the command."""
    if not check(r is not None, name + ": no answer within %d s (hang)" % TIMEOUT):
        return
    check(r.returncode == 2, "%s: exit code %d, expected 2 (stderr: %s)" % (name, r.returncode, r.stderr[-400:]))
    check(re.search(pattern, r.stderr) is not None,
          "%s: message %r does not match %r" % (name, r.stderr.strip()[-400:], pattern))
    check(r.stderr.count("caustic: error:") <= 1, name + ": the error is reported more than once")
    after = snapshot_of_dir(case_dir)
    check(after == before, "%s: files changed or left behind: %s" %
          (name, sorted(set(after.items()) ^ set(before.items()))[:6]))


def case_dir(name):
    d = os.path.join(ARGS.work, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def leftovers(d):
    return [p for p in glob.glob(os.path.join(d, "**", ".*"), recursive=True)
            if p.endswith(".tmp") or p.endswith(".caustic.lock")]


# ---------------------------------------------------------------------------------------------
# A finished run that several cases use (snapshots at a = 0.5 and 1).
FIXTURE = {}


def fixture():
    if FIXTURE:
        return FIXTURE
    d = case_dir("fixture")
    p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"))
    r = caustic(["run", p])
    check(r is not None and r.returncode == 0, "fixture run failed: %s" % (r and r.stderr[-500:]))
    FIXTURE.update(dir=d, params=p, out=os.path.join(d, "out"),
                   snap=os.path.join(d, "out", "snapshot_a1.0000.hdf5"))
    return FIXTURE


def fof_output_is_input():
    fx = fixture()
    before = snapshot_of_dir(fx["dir"])
    for o in (fx["snap"], os.path.join(fx["out"], ".", "snapshot_a1.0000.hdf5")):
        r = caustic(["fof", fx["snap"], "-o", o])
        expect_error("fof -o <its input>", r, r"the snapshot itself", fx["dir"], before)
    mf = os.path.join(fx["out"], "mass_function_snapshot_a1.0000.txt")
    r = caustic(["fof", fx["snap"], "-o", mf, "--overwrite"])
    expect_error("fof -o <the name of its own mass function>", r, r"the name of the mass function", fx["dir"], before)
    link = os.path.join(fx["dir"], "link.hdf5")
    os.symlink(fx["snap"], link)
    before = snapshot_of_dir(fx["dir"])
    r = caustic(["fof", fx["snap"], "-o", link, "--overwrite"])
    expect_error("fof -o <a link to its input> --overwrite", r, r"the snapshot itself", fx["dir"], before)
    os.remove(link)


def fof_existing_output():
    fx = fixture()
    d = case_dir("fof_existing")
    out = os.path.join(d, "halos.hdf5")
    r = caustic(["fof", fx["snap"], "-o", out, "--min-particles", "5"])
    check(r is not None and r.returncode == 0 and os.path.exists(out), "fof into a new file failed")
    before = snapshot_of_dir(d)
    r = caustic(["fof", fx["snap"], "-o", out, "--min-particles", "8"])
    expect_error("fof over an existing catalogue", r, r"halos\.hdf5 exists; pass --overwrite", d, before)
    r = caustic(["fof", fx["snap"], "-o", out, "--min-particles", "8", "--overwrite"])
    check(r is not None and r.returncode == 0, "fof --overwrite failed")
    with h5py.File(out, "r") as f:
        check(int(f["Header"].attrs["MinGroupSize"]) == 8, "fof --overwrite did not replace the catalogue")


def fof_duplicate_ids():
    fx = fixture()
    d = case_dir("fof_duplicates")
    snap = os.path.join(d, "dup.hdf5")
    shutil.copy(fx["snap"], snap)
    with h5py.File(snap, "r+") as f:
        ids = f["PartType1/ParticleIDs"]
        v = ids[...]
        v[-1] = v[3]
        ids[...] = v
        dup = int(v[3])
    before = snapshot_of_dir(d)
    for np_ in (1, 2):
        r = caustic(["fof", snap], np=np_)
        expect_error("fof on duplicate IDs (%d ranks)" % np_, r, r"particle ID %d appears more than once" % dup,
                     d, before)


def concurrent_runs():
    d = case_dir("concurrent")
    out = os.path.join(d, "out")
    pa = params(os.path.join(d, "a.toml"), out, particles=64, mesh=128, steps=40, seed=11)
    pb = params(os.path.join(d, "b.toml"), out, particles=16, mesh=32, steps=4, seed=22)
    cmd = [ARGS.caustic, "run", pa]
    print("$", " ".join(cmd), flush=True)
    a = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lock = os.path.join(out, ".caustic.lock")
    t0 = time.time()
    while not os.path.exists(lock) and a.poll() is None and time.time() - t0 < 60:
        time.sleep(0.01)
    check(os.path.exists(lock), "run A took no lock on its directory")
    with open(lock) as f:
        text = f.read()
    check("pid=%d" % a.pid in text and "host=" in text, "the lock does not name run A: %s" % text)
    # A is frozen while B tries, so A cannot finish first on a fast machine (a stopped process
    # is alive: its lock is live). Without this the case raced: B then legitimately ran.
    os.kill(a.pid, signal.SIGSTOP)
    try:
        r = caustic(["run", pb, "--overwrite"])
        check(a.poll() is None, "run A ended before run B was checked")
    finally:
        os.kill(a.pid, signal.SIGCONT)
    if check(r is not None, "run B hung"):
        check(r.returncode == 2 and re.search(r"is in use by pid %d on host" % a.pid, r.stderr),
              "run B was not refused while A runs: %d %s" % (r.returncode, r.stderr[-300:]))
    try:
        ao, ae = a.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        a.kill()
        ao, ae = a.communicate()
    check(a.returncode == 0, "run A failed: " + ae[-300:])
    with open(os.path.join(out, "run_summary.json")) as f:
        s = json.load(f)
    with h5py.File(os.path.join(out, "ic.hdf5"), "r") as f:
        h = f["Parameters"].attrs["parameter_hash"]
    h = h.decode() if isinstance(h, bytes) else h
    check(s["parameter_hash"] == h, "the directory mixes two runs")
    check(not leftovers(out), "temporaries or a lock left: %s" % leftovers(out))


def stale_and_foreign_locks():
    d = case_dir("locks")
    out = os.path.join(d, "out")
    os.makedirs(out)
    p = params(os.path.join(d, "run.toml"), out, steps=2, a="[1.0]")
    dead = subprocess.Popen(["true"])
    dead.wait()
    host = os.uname().nodename
    with open(os.path.join(out, ".caustic.lock"), "w") as f:
        f.write("host=%s\npid=%d\ncommand=caustic run\nsince=2026-01-01T00:00:00Z\n" % (host, dead.pid))
    r = caustic(["run", p])
    check(r is not None and r.returncode == 0 and "took over the stale lock of pid %d" % dead.pid in r.stdout,
          "a stale lock (dead process) was not taken over: %s" % (r and (r.stdout[-300:] + r.stderr[-300:])))
    check(not leftovers(out), "a lock was left after the run: %s" % leftovers(out))
    # A lock from another host cannot be checked: refused, naming the file to remove.
    out2 = os.path.join(d, "out2")
    os.makedirs(out2)
    with open(os.path.join(out2, ".caustic.lock"), "w") as f:
        f.write("host=elsewhere-node17\npid=4242\ncommand=caustic run\nsince=2026-01-01T00:00:00Z\n")
    p2 = params(os.path.join(d, "run2.toml"), out2, steps=2, a="[1.0]")
    before = snapshot_of_dir(d)
    r = caustic(["run", p2])
    expect_error("a lock held on another host", r,
                 r"in use by pid 4242 on host elsewhere-node17.*remove .*\.caustic\.lock", d, before)


def live_lock_every_command():
    # A live holder (a process whose command line names caustic) locks the directory: run and ic
    # are refused, with or without --overwrite, naming it, and leave the directory as it was.
    # (The trainers take the same lock: src/train_command.cpp, src/train_force_command.cpp.)
    d = case_dir("live_lock")
    out = os.path.join(d, "out")
    os.makedirs(out)
    holder = subprocess.Popen(["bash", "-c", "exec -a caustic-holder sleep 60"])
    try:
        with open(os.path.join(out, ".caustic.lock"), "w") as f:
            f.write("host=%s\npid=%d\ncommand=caustic run\nsince=2026-01-01T00:00:00Z\n" %
                    (os.uname().nodename, holder.pid))
        p = params(os.path.join(d, "run.toml"), out)
        before = snapshot_of_dir(d)
        for args in (["run", p], ["run", p, "--overwrite"], ["ic", p], ["ic", p, "--overwrite"]):
            expect_error("caustic %s into a locked directory" % args[0], caustic(args),
                         r"is in use by pid %d on host" % holder.pid, d, before)
    finally:
        holder.kill()
        holder.wait()


def ic_over_finished_run():
    fx = fixture()
    before = snapshot_of_dir(fx["dir"])
    r = caustic(["ic", fx["params"], "--set", "simulation.seed=99"])
    expect_error("ic over a finished run", r, r"holds the outputs of an earlier run.*--overwrite", fx["dir"], before)


def tiny_grid():
    # A 4^3 mesh is below the force stencil's reach: refused before anything is written; the
    # smallest allowed configuration (4^3 particles on an 8^3 mesh) runs.
    d = case_dir("tiny_grid")
    p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"), particles=4, mesh=4, steps=4)
    before = snapshot_of_dir(d)
    expect_error("particles = 4, mesh = 4", caustic(["run", p]),
                 r"simulation\.mesh = 4: not allowed; expected an even integer in \[8, 16384\]", d, before)
    p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"), particles=4, mesh=8, steps=4)
    for np_ in (1, 2):
        r = caustic(["run", p, "--overwrite"], np=np_)
        if check(r is not None, "particles = 4, mesh = 8: hang"):
            check(r.returncode == 0 and os.path.exists(os.path.join(d, "out", "snapshot_a1.0000.hdf5")),
                  "particles = 4, mesh = 8 on %d rank(s) did not run: %d %s" % (np_, r.returncode, r.stderr[-400:]))


def signal_during_ic():
    for sig, name in ((signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM")):
        d = case_dir("signal_ic_" + name)
        out = os.path.join(d, "out")
        p = params(os.path.join(d, "run.toml"), out, particles=192, mesh=192, steps=2, a="[1.0]")
        cmd = [ARGS.caustic, "run", p]
        print("$", " ".join(cmd), "# then", name, "during the initial conditions", flush=True)
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = ""
        t0 = time.time()
        while "memory estimate" not in line and time.time() - t0 < 60:
            line = proc.stdout.readline()
            if not line and proc.poll() is not None:
                break
        time.sleep(0.2)  # inside the initial conditions (about 2 s for 192^3 particles)
        proc.send_signal(sig)
        try:
            o, e = proc.communicate(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            o, e = proc.communicate()
            check(False, name + " during the initial conditions: hang")
            continue
        check(proc.returncode == 128 + sig and "nothing was written" in o,
              "%s during the initial conditions: exit %d, %s %s" % (name, proc.returncode, o[-300:], e[-300:]))
        check(not os.path.exists(out), "%s during the initial conditions left %s: %s" %
              (name, out, os.listdir(out) if os.path.exists(out) else ""))


def memory_estimate():
    d = case_dir("memory")
    for particles, mesh in ((1024, 2048), (8192, 8192)):
        p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"), particles=particles, mesh=mesh)
        before = snapshot_of_dir(d)
        t0 = time.time()
        r = caustic(["run", p], timeout=30)
        expect_error("particles = %d, mesh = %d" % (particles, mesh), r,
                     r"simulation.particles = %d, simulation.mesh = %d: needs about [0-9.]+ GB per rank" % (particles, mesh),
                     d, before)
        check(time.time() - t0 < 30, "the memory refusal took %.0f s" % (time.time() - t0))


def invalid_outputs():
    d = case_dir("invalid_outputs")
    cases = [
        ("output.a = []", dict(a="[]"), r"output\.a = \[\]: expected at least one scale factor"),
    ]
    afile = os.path.join(d, "a_file")
    with open(afile, "w") as f:
        f.write("not a directory\n")
    for name, kw, pattern in cases:
        p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"), **kw)
        before = snapshot_of_dir(d)
        expect_error(name, caustic(["run", p]), pattern, d, before)
    p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"),
               extra='[checkpoint]\ndirectory = "%s"\nevery_steps = 2\n' % afile)
    before = snapshot_of_dir(d)
    expect_error("checkpoint.directory = a file", caustic(["run", p]),
                 r"checkpoint\.directory = \"%s\": .* exists and is not a directory" % re.escape(afile), d, before)
    p = params(os.path.join(d, "run.toml"), os.path.join(afile, "sub"))
    before = snapshot_of_dir(d)
    expect_error("output.directory under a file", caustic(["run", p]),
                 r"output\.directory = .*exists and is not a directory", d, before)
    before = snapshot_of_dir(d)
    expect_error("a directory as the parameter file", caustic(["run", d]), r"is a directory, not a file", d, before)


def resume_cases():
    fx = fixture()
    before = snapshot_of_dir(fx["dir"])
    expect_error("--resume --overwrite", caustic(["run", fx["params"], "--resume", "--overwrite"]),
                 r"--resume excludes --overwrite", fx["dir"], before)
    expect_error("--resume of a complete run", caustic(["run", fx["params"], "--resume"]),
                 r"holds a complete run.*nothing to resume", fx["dir"], before)
    # A run stopped after step 5 (SIGUSR1 at a known step) and resumed: the summary lists the
    # outputs of both parts.
    d = case_dir("resume_summary")
    out = os.path.join(d, "out")
    p = params(os.path.join(d, "run.toml"), out, steps=8)
    r = caustic(["run", p], env={"CAUSTIC_FAULT_STOP_AFTER_STEP": "5"})
    check(r is not None and r.returncode == 128 + signal.SIGUSR1 and "stopped by signal 10" in r.stdout,
          "the stop after step 5: %s" % str(r and (r.returncode, r.stdout[-300:], r.stderr[-300:])))
    # A file this run never wrote (another run's output time) is not listed.
    with open(os.path.join(out, "snapshot_a0.3000.hdf5"), "wb") as f:
        f.write(b"not this run's")
    r = caustic(["run", p, "--resume"])
    check(r is not None and r.returncode == 0, "the resume failed: %s" % (r and r.stderr[-300:]))
    with open(os.path.join(out, "run_summary.json")) as f:
        s = json.load(f)
    names = [os.path.basename(o["path"]) for o in s["outputs"]]
    check(all(n in names for n in ("ic.hdf5", "linear_power.txt", "snapshot_a0.5000.hdf5", "snapshot_a1.0000.hdf5")),
          "the resumed run's summary does not list every output: %s" % names)
    check("snapshot_a0.3000.hdf5" not in names and len(names) == len(set(names)),
          "the resumed run's summary lists files it did not write, or twice: %s" % names)


def signal_to_one_rank():
    d = case_dir("signal_one_rank")
    out = os.path.join(d, "out")
    p = params(os.path.join(d, "run.toml"), out, particles=32, mesh=64, steps=400, a="[1.0]")
    cmd = shlex.split(ARGS.mpiexec) + ["-n", "2", ARGS.caustic, "run", p]
    print("$", " ".join(cmd), "# then SIGTERM to rank 1 only", flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    rank1 = None
    t0 = time.time()
    while rank1 is None and time.time() - t0 < 60 and proc.poll() is None:
        for pid in subprocess.run(["pgrep", "-f", p], capture_output=True, text=True).stdout.split():
            try:
                with open("/proc/%s/environ" % pid, "rb") as f:
                    env = f.read().split(b"\0")
            except OSError:
                continue
            if b"OMPI_COMM_WORLD_RANK=1" in env:
                rank1 = int(pid)
        time.sleep(0.05)
    # Wait until the steps have begun.
    t0 = time.time()
    while not os.path.exists(os.path.join(out, "ic.hdf5")) and time.time() - t0 < 60:
        time.sleep(0.05)
    time.sleep(0.3)
    if not check(rank1 is not None, "rank 1's process not found"):
        os.killpg(proc.pid, signal.SIGKILL)
        return
    os.kill(rank1, signal.SIGTERM)
    try:
        o, e = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        o, e = proc.communicate()
        check(False, "SIGTERM to one rank: hang")
        return
    check(proc.returncode == 128 + signal.SIGTERM and "stopped by signal 15" in o,
          "SIGTERM to one rank: exit %d, %s" % (proc.returncode, o[-300:]))
    with open(os.path.join(out, "run_summary.json")) as f:
        s = json.load(f)
    check(s["interrupted"] and s.get("stop_signal") == 15, "the summary does not record signal 15: %s" %
          {k: s.get(k) for k in ("interrupted", "stop_signal")})


def steps_and_outputs():
    d = case_dir("steps_outputs")
    out = os.path.join(d, "out")
    p = params(os.path.join(d, "run.toml"), out, steps=1, a="[0.5, 1.0]")
    r = caustic(["run", p])
    check(r is not None and r.returncode == 0 and
          "time steps: 2 (simulation.steps = 1; outputs fall on step boundaries" in r.stdout,
          "steps = 1 with two output times: the extra step is not reported: %s" % (r and r.stdout[-400:]))


def garbage_wisdom():
    d = case_dir("wisdom")
    w = os.path.join(d, "wisdom")
    with open(w + ".f", "w") as f:
        f.write("this is not FFTW wisdom\n")
    p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"), steps=2, a="[1.0]",
               extra='[fft]\nwisdom = "%s"\n' % w)
    r = caustic(["run", p])
    check(r is not None and r.returncode == 0 and re.search(r"fft\.wisdom = .*is not FFTW wisdom", r.stdout),
          "a garbage wisdom file is not reported: %s" % (r and r.stdout[-400:]))
    with open(w + ".f") as f:
        check(f.read() == "this is not FFTW wisdom\n", "the garbage wisdom file was overwritten")
    with open(os.path.join(d, "out", "run_summary.json")) as f:
        s = json.load(f)
    check(os.path.join(d, "run.toml") in s.get("inputs", {}), "the summary has no hash of the parameter file")


def wisdom_cache():
    # Without fft.wisdom, plans are kept in the per-user cache ($CAUSTIC_CACHE_DIR here): the
    # first run measures, the second plans from the cache and says so; fft.cache = false keeps
    # none.
    d = case_dir("wisdom_cache")
    cache = os.path.join(d, "cache")
    p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"), particles=16, mesh=32, steps=2, a="[1.0]",
               extra='[fft]\nplan = "measure"\n')
    env = {"CAUSTIC_CACHE_DIR": cache}
    r1 = caustic(["run", p], env=env)
    r2 = caustic(["run", p, "--overwrite"], env=env)
    wisdom = os.path.join(cache, "fftw", "n32_r1_single.wisdom")
    if check(r1 is not None and r2 is not None and r1.returncode == 0 and r2.returncode == 0, "the cache runs failed"):
        check(re.search(r"FFT plans \(measure\): [0-9.]+ s, measured", r1.stdout) is not None,
              "the first run did not measure: %s" % r1.stdout[-300:])
        check(re.search(r"FFT plans \(measure\): [0-9.]+ s, from wisdom \(the wisdom cache .*n32_r1_single\.wisdom\)",
                        r2.stdout) is not None, "the second run did not plan from the cache: %s" % r2.stdout[-300:])
        check(os.path.getsize(wisdom) > 0, "no wisdom in the cache")
    other = os.path.join(d, "cache_off")
    r = caustic(["run", p, "--overwrite", "--set", "fft.cache=false"], env={"CAUSTIC_CACHE_DIR": other})
    check(r is not None and r.returncode == 0 and not os.path.exists(other) and ", measured" in r.stdout,
          "fft.cache = false still used a cache")


def numbers_and_command_line():
    d = case_dir("command_line")
    p = params(os.path.join(d, "run.toml"), os.path.join(d, "out"))
    before = snapshot_of_dir(d)
    for args, pattern in [
        (["run", p, "--set", "simulation.seed=18446744073709551616"],
         r"--set simulation\.seed=18446744073709551616: 18446744073709551616 is not a number TOML can hold"),
        (["run", p, "--set", "simulation.box=1e400"], r"--set simulation\.box=1e400: 1e400 is not a number TOML can hold"),
        ([], r"A subcommand is required"),
        (["run"], r"params is required"),
        (["run", p, "--bogus"], r"--bogus"),
        (["fof"], r"snapshot is required"),
        (["fof", "x.hdf5", "--linking-length", "3"], r"linking-length"),
    ]:
        expect_error("caustic " + " ".join(args), caustic(args), pattern, d, before)
    with open(p) as f:
        text = f.read()
    with open(p, "w") as f:
        f.write(text.replace("seed = 5", "seed = 18446744073709551616"))
    before = snapshot_of_dir(d)
    expect_error("seed = 2^64 in the file", caustic(["run", p]), r"run\.toml:\d+:\d+: TOML syntax error", d, before)
    for args in (["--help"], ["run", "--help"], ["--version"], ["--kokkos-num-threads=1", "--version"]):
        r = caustic(args)
        if check(r is not None, "caustic %s: hang" % args):
            check(r.returncode == 0 and "Kokkos" not in r.stdout + r.stderr and r.stdout.strip(),
                  "caustic %s: exit %d, or Kokkos's banner in the output" % (" ".join(args), r.returncode))
    # Help and the version are answered before MPI_Init outside a launcher (MPI's singleton
    # start-up was nearly all of their time): they work where MPI_Init cannot (an unknown
    # point-to-point layer makes it fail), give the same text as through mpiexec, and a command
    # that needs MPI fails there (the control).
    broken = {"OMPI_MCA_pml": "nonexistent"}
    for args in (["--version"], ["run", "--help"], ["--help"]):
        r = caustic(args, env=broken)
        ref = caustic(args, np=2)
        if check(r is not None and ref is not None, "caustic %s: hang" % args):
            check(r.returncode == 0 and r.stdout.strip() and r.stdout == ref.stdout,
                  "caustic %s without MPI: exit %d, text %r; through mpiexec %r" %
                  (" ".join(args), r.returncode, r.stdout[:200], ref.stdout[:200]))
    r = caustic(["fof", "absent.hdf5"], env=broken)
    check(r is not None and r.returncode != 0,
          "the control: a command that needs MPI ran with OMPI_MCA_pml=nonexistent")


CASES = [
    ("fof -o its input", fof_output_is_input),
    ("fof over an existing catalogue", fof_existing_output),
    ("fof on duplicate particle IDs", fof_duplicate_ids),
    ("two runs into one directory", concurrent_runs),
    ("stale and foreign locks", stale_and_foreign_locks),
    ("a live lock refuses every command", live_lock_every_command),
    ("caustic ic over a finished run", ic_over_finished_run),
    ("particles = 4, mesh = 4", tiny_grid),
    ("SIGINT/SIGTERM during the initial conditions", signal_during_ic),
    ("memory estimate", memory_estimate),
    ("invalid output settings", invalid_outputs),
    ("resume cases", resume_cases),
    ("SIGTERM to one rank", signal_to_one_rank),
    ("steps and output times", steps_and_outputs),
    ("garbage FFTW wisdom", garbage_wisdom),
    ("the FFT wisdom cache", wisdom_cache),
    ("numbers and the command line", numbers_and_command_line),
]


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--mpiexec", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    ARGS = ap.parse_args()
    shutil.rmtree(ARGS.work, ignore_errors=True)
    os.makedirs(ARGS.work)
    for name, fn in CASES:
        if ARGS.only and ARGS.only not in name:
            continue
        print("=== " + name, flush=True)
        n = len(check.failures)
        t0 = time.time()
        try:
            fn()
        except Exception as e:  # a broken case fails, the others still run
            import traceback
            traceback.print_exc()
            check(False, "%s: %s: %s" % (name, type(e).__name__, e))
        print("--- %s: %s (%.1f s)" % (name, "ok" if len(check.failures) == n else "FAILED", time.time() - t0),
              flush=True)
    check.finish()


if __name__ == "__main__":
    main()
