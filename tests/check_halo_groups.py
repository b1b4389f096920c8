#!/usr/bin/env python3
"""The per-group halo surrogate end to end (`caustic train` with [model] kind = "halo_groups", the
in-situ hook): a cheap run (5 steps, mesh twice the particle grid) and a finer truth (20 steps,
mesh four times) of the same white noise for two training seeds and one validation seed, member
IDs in both catalogues; training through the command line (the record, the loss curve falling);
the hook in a run of another seed at 1, 2 and 3 ranks (the same catalogue to 1e-5), checked
against an independent numpy computation (FoF groups of the run's own [halos], the features from
its snapshot, the network from the record's weights), also for the "top" selection; the sampled
selection reproducible across rank counts; refused settings with exit 2 naming them."""
import argparse
import json
import math
import os
import shlex
import shutil
import subprocess

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks, cic_paint, cic_readout

RUN = COSMOLOGY + """
[simulation]
box = 64.0
particles = 32
mesh = {mesh}
a_start = {a_start}
a_end = 1.0
steps = {steps}
seed = {seed}
lattice_offset = 0.5

[output]
directory = "{out}"
a = [1.0]
snapshots = {snapshots}
power_spectrum = false
initial_conditions = false

[halos]
enabled = true
min_particles = 10
member_ids = true
a = [1.0]
"""

TRAIN = """
[data]
train = [
  {{snapshot = "cheap_11/snapshot_a1.0000.hdf5", truth = "truth_11/halos_a1p0000.0.hdf5"}},
  {{snapshot = "cheap_12/snapshot_a1.0000.hdf5", truth = "truth_12/halos_a1p0000.0.hdf5"}},
]
validation = [{{snapshot = "cheap_13/snapshot_a1.0000.hdf5", truth = "truth_13/halos_a1p0000.0.hdf5"}}]

[model]
kind = "halo_groups"
radii = [2.0, 4.0]
hidden = [8]
feature_mesh = 64
b = 0.2
fof_min_particles = 10
min_particles = 12

[training]
steps = 300
learning_rate = 0.01
validate_every = 50
seed = 2

[output]
directory = "{out}"
"""

HOOK = """
[emulators.groups]
model = "{model}"
a = [{a}]
"""

check = Checks()
ap = argparse.ArgumentParser()
ap.add_argument("--caustic", required=True)
ap.add_argument("--work", required=True)
ap.add_argument("--mpiexec", required=True)
ARGS = ap.parse_args()


def caustic(args, np_=1):
    cmd = ([ARGS.caustic] if np_ == 1 else shlex.split(ARGS.mpiexec) + ["-n", str(np_), ARGS.caustic]) + args
    print("$", " ".join(cmd), flush=True)
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None
    if r.returncode != 0:
        print(r.stdout[-1500:], r.stderr[-1500:])
    return r


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def catalogue(path):
    with h5py.File(path, "r") as f:
        g = f["Group"]
        return {k: g[k][:] for k in ("GroupPos", "GroupMass", "GroupLen", "GroupVelDisp", "GroupRadius", "GroupMinID")}


def features(snapshot, cat, radii, mesh, box, a):
    """groupFeatures in numpy: ln N, ln r_rms, ln sigma_v [momentum units], ln(1 + delta_R)."""
    with h5py.File(snapshot, "r") as f:
        x = f["PartType1/Coordinates"][:].astype(np.float64) % box
    n = mesh
    rho = cic_paint(x, box, n) * n**3 / len(x)
    fk = np.fft.rfftn(rho)
    m = np.fft.fftfreq(n, 1.0 / n)
    mz = np.fft.rfftfreq(n, 1.0 / n)
    k2 = (2 * np.pi / box) ** 2 * (m[:, None, None] ** 2 + m[None, :, None] ** 2 + mz[None, None, :] ** 2)
    cols = [np.log(cat["GroupLen"].astype(np.float64)), np.log(np.maximum(cat["GroupRadius"], 1e-6)),
            np.log(np.maximum(cat["GroupVelDisp"] * a / 100.0, 1e-9))]
    p = cat["GroupPos"].astype(np.float64) % box
    for R in radii:
        s = np.fft.irfftn(fk * np.exp(-0.5 * k2 * R * R), s=(n, n, n))
        v = cic_readout(s, p, box)
        cols.append(np.log(np.maximum(v, 1e-3)))
    return np.stack(cols, axis=1)


def members(path):
    """Each group's member IDs (Gadget layout: /IDs/ID from GroupOffset, GroupLen of them)."""
    with h5py.File(path, "r") as f:
        off, ln, ids = f["Group/GroupOffset"][:], f["Group/GroupLen"][:], f["IDs/ID"][:]
    return [ids[o:o + n].astype(np.int64) for o, n in zip(off, ln)]


def vectors(catpath, box, a, grid, offset):
    """The position-correction vectors in numpy: mean momentum, c - <q> (nearest image)."""
    with h5py.File(catpath, "r") as f:
        pos = f["Group/GroupPos"][:].astype(np.float64)
        mom = f["Group/GroupVel"][:].astype(np.float64) * a**1.5 / 100.0
    disp = []
    dq = box / grid
    for ids, c in zip(members(catpath), pos):
        q = np.stack([ids // (grid * grid), (ids // grid) % grid, ids % grid], 1) * dq
        d = q - q[0]
        d -= box * np.round(d / box)
        e = c - (q[0] + d.mean(0) + offset)
        disp.append(e - box * np.round(e / box))
    return pos, np.stack([mom, np.array(disp)], 1)  # [group][vector][axis]


def best_partner(a, b):
    """For each group of a (lists of member IDs), the group of b sharing most members (ties: the
    smaller index), or -1."""
    owner = {int(i): g for g, ids in enumerate(b) for i in ids}
    out = []
    for ids in a:
        cnt = {}
        for i in ids:
            g = owner.get(int(i))
            if g is not None:
                cnt[g] = cnt.get(g, 0) + 1
        out.append(min(cnt, key=lambda g: (-cnt[g], g)) if cnt else -1)
    return out


def mutual(cheap_path, truth_path):
    """Mutual best match by members (index into truth, or -1), as matchGroups."""
    a, b = members(cheap_path), members(truth_path)
    best_b, best_a = best_partner(a, b), best_partner(b, a)
    return np.array([g if g >= 0 and best_a[g] == i else -1 for i, g in enumerate(best_b)])


def network(rec, f):
    x = (f - np.array(rec["feature_mean"])) / np.array(rec["feature_std"])
    layers = rec["layers"]
    for i, l in enumerate(layers):
        x = x @ np.array(l["weight"]).T + np.array(l["bias"])
        if i + 1 < len(layers):
            x = x / (1 + np.exp(-x))
    return 1 / (1 + np.exp(-x[:, 0])), x[:, 1] + rec["log_mass_offset"]


work = ARGS.work
shutil.rmtree(work, ignore_errors=True)
os.makedirs(work)
# 1. Cheap and truth runs of three seeds.
for seed in (11, 12, 13):
    for kind, mesh, steps, a0, snaps in (("cheap", 64, 5, 0.1, "true"), ("truth", 128, 20, 0.05, "false")):
        d = os.path.join(work, f"{kind}_{seed}")
        p = os.path.join(work, f"{kind}_{seed}.toml")
        write(p, RUN.format(mesh=mesh, steps=steps, a_start=a0, seed=seed, out=d, snapshots=snaps))
        r = caustic(["run", p], 2)
        check(r is not None and r.returncode == 0, f"{kind} run of seed {seed}")
# 2. Training.
model_dir = os.path.join(work, "model")
write(os.path.join(work, "train.toml"), TRAIN.format(out=model_dir))
r = caustic(["train", os.path.join(work, "train.toml")], 2)
check(r is not None and r.returncode == 0, "caustic train (halo_groups) at 2 ranks")
rec = json.load(open(os.path.join(model_dir, "model.json")))
check(rec["kind"] == "halo_groups" and rec["features"] == ["ln_members", "ln_radius", "ln_sigma_v",
                                                           "ln_density_R2", "ln_density_R4"],
      "record: kind and feature names")
check(rec["feature_mesh"] == 64 and rec["fof"]["min_particles"] == 10 and abs(rec["a"] - 1) < 1e-6,
      "record: the training domain")
# The position correction: numpy's least squares of the truth counterparts' offsets on the
# training pairs' matched groups (the cheap runs' own FoF catalogues have the trainer's settings).
U, D = [], []
for seed in (11, 12):
    cp = os.path.join(work, f"cheap_{seed}", "halos_a1p0000.0.hdf5")
    tp = os.path.join(work, f"truth_{seed}", "halos_a1p0000.0.hdf5")
    pos, u = vectors(cp, 64.0, 1.0, 32, 0.5)
    match = mutual(cp, tp)
    with h5py.File(tp, "r") as h:
        tpos = h["Group/GroupPos"][:].astype(np.float64)
    ok = match >= 0
    d = tpos[match[ok]] - pos[ok]
    U.append(u[ok].transpose(0, 2, 1).reshape(-1, 2))
    D.append((d - 64.0 * np.round(d / 64.0)).ravel())
coef = np.linalg.lstsq(np.concatenate(U), np.concatenate(D), rcond=None)[0]
check(rec.get("position_vectors") == ["momentum", "displacement"] and
      np.allclose(rec["position_coefficients"], coef, rtol=2e-3, atol=1e-5),
      f"record: position coefficients {rec.get('position_coefficients')} equal numpy's least squares {coef}")
# model.mass_target = "assigned": presence and ln M are each cheap group's summed mass of the
# truth halos of at least min_particles (12) that pick it as their best partner (numpy:
# best_partner of the truth's groups);
# the record's train_present and log_mass_offset (the mean target ln M) equal numpy's, and the
# position correction is still fitted on the mutual matches.
n_present, ln_sum, merged = 0, 0.0, 0
for seed in (11, 12):
    cp = os.path.join(work, f"cheap_{seed}", "halos_a1p0000.0.hdf5")
    tp = os.path.join(work, f"truth_{seed}", "halos_a1p0000.0.hdf5")
    picks = best_partner(members(tp), members(cp))
    with h5py.File(tp, "r") as h:
        tmass = h["Group/GroupMass"][:].astype(np.float64)
        big = h["Group/GroupLen"][:] >= 12
    with h5py.File(cp, "r") as h:
        total = np.zeros(len(h["Group/GroupLen"]))
    for t, g in enumerate(picks):
        if g >= 0 and big[t]:
            total[g] += tmass[t]
    merged += int(np.sum(np.bincount([g for t, g in enumerate(picks) if g >= 0 and big[t]]) > 1))
    n_present += int(np.sum(total > 0))
    ln_sum += float(np.sum(np.log(total[total > 0] * 1e10)))
assigned_dir = os.path.join(work, "model_assigned")
r = caustic(["train", os.path.join(work, "train.toml"), "--set", 'model.mass_target="assigned"',
             "--set", "model.field_weight=1", "--set", "training.steps=20",
             "--set", f'output.directory="{assigned_dir}"'], 2)
check(r is not None and r.returncode == 0,
      "caustic train with model.mass_target = \"assigned\" and model.field_weight = 1")
ra = json.load(open(os.path.join(assigned_dir, "model.json")))
check(ra["training"]["mass_target"] == "assigned" and rec["training"]["mass_target"] == "matched",
      "records: the mass target")
check(ra["training"]["field_weight"] == 1 and rec["training"]["field_weight"] == 0,
      "records: the expected-field loss weight")
check(merged > 0 and ra["training"]["train_present"] == n_present and
      abs(ra["log_mass_offset"] - ln_sum / n_present) < 1e-4,
      f"assigned targets: {ra['training']['train_present']} present (numpy {n_present}, {merged} groups "
      f"picked by several truth halos), mean ln M {ra['log_mass_offset']:.6f} (numpy {ln_sum / n_present:.6f})")
check(np.allclose(ra["position_coefficients"], rec["position_coefficients"], rtol=1e-12, atol=0),
      "assigned targets: the position correction is the mutual matches' fit")
r = caustic(["train", os.path.join(work, "train.toml"), "--set", 'model.mass_target="sum"',
             "--set", f'output.directory="{os.path.join(work, "bad_target")}"'], 1)
check(r is not None and r.returncode == 2 and 'model.mass_target = "sum"' in r.stderr and
      not os.path.exists(os.path.join(work, "bad_target", "model.json")),
      "training: an unknown mass target refused, naming it")
r = caustic(["train", os.path.join(work, "train.toml"), "--set", "model.field_weight=-1",
             "--set", f'output.directory="{os.path.join(work, "bad_weight")}"'], 1)
check(r is not None and r.returncode == 2 and "model.field_weight" in r.stderr and
      not os.path.exists(os.path.join(work, "bad_weight", "model.json")),
      "training: a negative field_weight refused, naming it")
with open(os.path.join(model_dir, "loss.csv")) as fh:
    rows = [line.strip().split(",") for line in fh if not line.startswith("#")][1:]
val = [float(r[2]) for r in rows if r[2] != ""]
check(len(val) >= 2 and val[-1] < 0.8 * val[0], f"validation loss falls ({val[0]:.3f} -> {val[-1]:.3f})")
check(rec["training"]["validation_presence_accuracy"] > 0.6,
      f"validation presence accuracy {rec['training']['validation_presence_accuracy']:.3f} > 0.6")
# 3. The hook in a run of another seed at 1, 2, 3 ranks.
cats = {}
base = RUN.format(mesh=64, steps=5, a_start=0.1, seed=21, out="{out}", snapshots="true")
for np_ in (1, 2, 3):
    d = os.path.join(work, f"hook_np{np_}")
    p = os.path.join(work, f"hook_np{np_}.toml")
    write(p, base.replace("{out}", d) + HOOK.format(model=os.path.join(model_dir, "model.json"), a="1.0"))
    r = caustic(["run", p], np_)
    check(r is not None and r.returncode == 0, f"run with the hook at {np_} rank(s)")
    cats[np_] = catalogue(os.path.join(d, "groups_a1p0000.0.hdf5"))
ref = cats[1]
check(len(ref["GroupLen"]) > 10, f"the surrogate keeps {len(ref['GroupLen'])} halos (> 10)")
for np_ in (2, 3):
    c = cats[np_]
    same = len(c["GroupLen"]) == len(ref["GroupLen"]) and np.array_equal(c["GroupMinID"], ref["GroupMinID"])
    # Centres of mass are sums in another order at other rank counts: equal to rounding (the
    # file's float32 at 64 Mpc/h: 4e-6).
    check(same and np.allclose(c["GroupPos"], ref["GroupPos"], rtol=0, atol=1e-5) and
          np.allclose(c["GroupMass"], ref["GroupMass"], rtol=1e-5, atol=0),
          f"catalogue at {np_} ranks equals 1 rank's")
# Independently: the run's own FoF groups, their features from the snapshot, the network in numpy.
d = os.path.join(work, "hook_np1")
fof = catalogue(os.path.join(d, "halos_a1p0000.0.hdf5"))
f = features(os.path.join(d, "snapshot_a1.0000.hdf5"), fof, rec["radii"], 64, 64.0, 1.0)
p, mu = network(rec, f)
with h5py.File(os.path.join(d, "halos_a1p0000.0.hdf5"), "r") as h:
    mp = float(h["Header"].attrs["ParticleMass"]) * 1e10
lnmin = np.log(rec["min_particles"] * mp)
sel = (p >= rec["presence_threshold"]) & (mu >= lnmin)
near = (np.abs(p - rec["presence_threshold"]) < 1e-4) | (np.abs(mu - lnmin) < 1e-4)
kept = set(ref["GroupMinID"].tolist())
agree = all((lab in kept) == s for lab, s, nr in zip(fof["GroupMinID"].tolist(), sel, near) if not nr)
check(agree and abs(len(kept) - int(sel.sum())) <= int(near.sum()),
      f"selection equals the numpy network's ({len(kept)} kept, numpy {int(sel.sum())})")
byid = {lab: i for i, lab in enumerate(fof["GroupMinID"].tolist())}
fpos, u = vectors(os.path.join(d, "halos_a1p0000.0.hdf5"), 64.0, 1.0, 32, 0.5)
moved = (fpos + u.transpose(0, 2, 1) @ np.array(rec["position_coefficients"])) % 64.0
worst = 0.0
far = 0.0
for lab, m, pos in zip(ref["GroupMinID"].tolist(), ref["GroupMass"], ref["GroupPos"]):
    i = byid.get(lab)
    if i is None:
        worst = np.inf
        continue
    e = pos - moved[i]
    worst_pos = np.abs(e - 64.0 * np.round(e / 64.0)).max()
    check(worst_pos < 2e-4, f"halo {lab} sits at its FoF group's centre plus the numpy correction "
                            f"({worst_pos:.1e} Mpc/h)")
    f0 = pos - fof["GroupPos"][i]
    far = max(far, np.abs(f0 - 64.0 * np.round(f0 / 64.0)).max())
    n = np.exp(mu[i]) / mp
    worst = max(worst, abs(m * 1e10 / mp - n) / max(n, 1.0))
check(far > 1e-3, f"the correction moves the centres (largest shift {far:.3f} Mpc/h)")
check(worst < 0.6 / rec["min_particles"] + 1e-4,
      f"masses are round(exp(mu) / m_p) particles of the numpy network (worst {worst:.2e})")
# The candidates file: every FoF group, its p, mu and expected halo mass
# E[M 1(M >= M_min)] = p exp(mu + s^2/2) Phi((mu + s^2 - ln M_min) / s), against numpy.
with h5py.File(os.path.join(d, "groups_candidates_a1.0000.hdf5"), "r") as h:
    cand = {k: h["Candidates"][k][:] for k in ("Label", "Pos", "Presence", "LogMass", "ExpectedMass", "Selected")}
    hdr = dict(h["Header"].attrs)
sig = rec["log_mass_scatter"]
order = [byid[lab] for lab in cand["Label"].tolist()]
zz = (mu[order] + sig**2 - lnmin) / sig
w = p[order] * np.exp(mu[order] + sig**2 / 2) * 0.5 * np.array([math.erfc(-z / math.sqrt(2)) for z in zz])
check(len(order) == len(fof["GroupMinID"]) and np.allclose(cand["Presence"], p[order], rtol=0, atol=1e-4) and
      np.allclose(cand["LogMass"], mu[order], rtol=0, atol=1e-3),
      f"candidates: all {len(order)} FoF groups with the numpy network's p and mu")
check(np.allclose(cand["ExpectedMass"] * 1e10, w, rtol=2e-3, atol=1e-6 * w.max()) and w.sum() > 0,
      f"candidates: expected masses equal numpy's (sum {w.sum():.3e} Msun/h)")
check(set(cand["Label"][cand["Selected"] == 1].tolist()) == kept and
      abs(hdr["MinHaloMass"] * 1e10 / math.exp(lnmin) - 1) < 1e-6 and
      hdr["Selection"] in ("threshold", b"threshold"),
      "candidates: Selected marks the catalogue's halos; header minimum mass and selection")
for np_ in (2, 3):
    with h5py.File(os.path.join(work, f"hook_np{np_}", "groups_candidates_a1.0000.hdf5"), "r") as h:
        other = {k: h["Candidates"][k][:] for k in ("Label", "Presence", "LogMass", "ExpectedMass")}
    # The features are float sums in another order at other rank counts (mu differs by ~1e-6), and
    # a group far below M_min (p ~ 1e-3, deep in Phi's tail) turns that into a relative change of
    # ~1e-5 of a mass 1e-5 of the largest: masses to 1e-5 relative or 1e-6 of the largest.
    w = cand["ExpectedMass"]
    check(np.array_equal(other["Label"], cand["Label"]) and
          np.allclose(other["Presence"], cand["Presence"], rtol=0, atol=1e-5) and
          np.allclose(other["LogMass"], cand["LogMass"], rtol=0, atol=1e-5) and
          np.allclose(other["ExpectedMass"], w, rtol=1e-5, atol=1e-6 * w.max()),
          f"candidates at {np_} ranks equal 1 rank's")
# 4. The sampled selection: reproducible across rank counts, and not the threshold catalogue.
sampled = {}
for np_ in (1, 3):
    dd = os.path.join(work, f"sample_np{np_}")
    p2 = os.path.join(work, f"sample_np{np_}.toml")
    write(p2, base.replace("{out}", dd) + HOOK.format(model=os.path.join(model_dir, "model.json"), a="1.0") +
          'selection = "sample"\nseed = 5\n')
    r = caustic(["run", p2], np_)
    check(r is not None and r.returncode == 0, f"sampled selection at {np_} rank(s)")
    sampled[np_] = catalogue(os.path.join(dd, "groups_a1p0000.0.hdf5"))
check(np.array_equal(sampled[1]["GroupMinID"], sampled[3]["GroupMinID"]) and
      np.allclose(sampled[1]["GroupMass"], sampled[3]["GroupMass"], rtol=1e-5),
      "sampled catalogue at 3 ranks equals 1 rank's")
check(not (np.array_equal(sampled[1]["GroupMinID"], ref["GroupMinID"]) and
           np.array_equal(sampled[1]["GroupMass"], ref["GroupMass"])), "sampling differs from the threshold")


# 5. Refused settings: exit 2, the setting named, nothing written.
def refused(extra, needle, what, edit=None):
    dd = os.path.join(work, "refused")
    shutil.rmtree(dd, ignore_errors=True)
    text = base.replace("{out}", dd) + HOOK.format(model=os.path.join(model_dir, "model.json"), a="1.0") + extra
    if edit:
        text = edit(text)
    pth = os.path.join(work, "refused.toml")
    write(pth, text)
    r = caustic(["run", pth], 2)
    check(r is not None and r.returncode == 2 and needle in r.stderr,
          f"{what}: exit 2 naming '{needle}' (got " + ("timeout" if r is None else f"{r.returncode}: {r.stderr[-400:]}") + ")")
    check(not os.path.exists(os.path.join(dd, "groups_a1p0000.0.hdf5")) and
          not os.path.exists(os.path.join(dd, "groups_candidates_a1.0000.hdf5")), f"{what}: no catalogue written")


# "top": the round(sum q) groups of highest q = p Phi((mu - ln M_min) / sigma), as numpy ranks them.
dd = os.path.join(work, "top_np2")
pth = os.path.join(work, "top_np2.toml")
write(pth, base.replace("{out}", dd) + HOOK.format(model=os.path.join(model_dir, "model.json"), a="1.0") +
      'selection = "top"\n')
r = caustic(["run", pth], 2)
check(r is not None and r.returncode == 0, "top selection at 2 ranks")
top = catalogue(os.path.join(dd, "groups_a1p0000.0.hdf5"))
sig = rec["log_mass_scatter"]
zz = (mu - lnmin) / (np.sqrt(2.0) * sig)
q = p * 0.5 * np.array([math.erfc(-z) for z in zz])
kq = int(round(q.sum()))
want = set(fof["GroupMinID"][np.argsort(-q, kind="stable")[:kq]].tolist())
got = set(top["GroupMinID"].tolist())
check(kq > 5 and abs(len(got) - kq) <= 1 and len(got ^ want) <= 2,
      f"top selection: {len(got)} groups, numpy's round(sum q) = {kq}, {len(got ^ want)} differ")
check(np.all(top["GroupMass"] * 1e10 >= rec["min_particles"] * mp * (1 - 1e-6)),
      "top selection: every mass at least the minimum")
refused("", "simulation.mesh = 128", "another PM mesh", lambda t: t.replace("mesh = 64", "mesh = 128"))
refused("", "emulators.groups.a contains 0.5", "another output time",
        lambda t: t.replace("a = [1.0]\nsnapshots", "a = [0.5, 1.0]\nsnapshots").replace(
            'model.json"\na = [1.0]', 'model.json"\na = [0.5]'))
refused("every_step = true\n", "every_step", "every step")
# Forced outside the domain: runs, with a warning.
dd = os.path.join(work, "forced")
pth = os.path.join(work, "forced.toml")
write(pth, base.replace("{out}", dd).replace("mesh = 64", "mesh = 128") +
      HOOK.format(model=os.path.join(model_dir, "model.json"), a="1.0") + "force = true\n")
r = caustic(["run", pth], 2)
check(r is not None and r.returncode == 0 and "outside its validity domain" in r.stderr,
      "force = true applies it outside the domain with a warning")
# A truth on another particle lattice (its mesh's default offset): refused, naming the setting.
d_off = os.path.join(work, "truth_11_offset")
write(d_off + ".toml", RUN.format(mesh=128, steps=20, a_start=0.05, seed=11, out=d_off, snapshots="false")
      .replace("lattice_offset = 0.5", "lattice_offset = 0.25"))
r = caustic(["run", d_off + ".toml"], 2)
check(r is not None and r.returncode == 0, "truth run on the finer mesh's default lattice")
write(os.path.join(work, "offset.toml"), TRAIN.format(out=os.path.join(work, "offset_model"))
      .replace("truth_11/halos", "truth_11_offset/halos"))
r = caustic(["train", os.path.join(work, "offset.toml")], 1)
check(r is not None and r.returncode != 0 and "simulation.lattice_offset = 0.25" in r.stderr and
      not os.path.exists(os.path.join(work, "offset_model", "model.json")),
      "training: a truth on another particle lattice refused, naming simulation.lattice_offset")
# Bad training settings.
bad = TRAIN.format(out=os.path.join(work, "bad_model")).replace("min_particles = 12", "min_particles = 5")
write(os.path.join(work, "bad.toml"), bad)
r = caustic(["train", os.path.join(work, "bad.toml")], 1)
check(r is not None and r.returncode == 2 and "model.min_particles = 5" in r.stderr,
      "training: min_particles below fof_min_particles refused naming it")
check(not os.path.exists(os.path.join(work, "bad_model", "model.json")), "training refused: nothing written")
check.finish()
