#!/usr/bin/env python3
"""A model built and saved by PyTorch runs in Caustic and gives PyTorch's output.

1. In PyTorch: a small fully convolutional module (Conv3d(1, 4, 3) -> tanh -> Conv3d(4, 1, 3),
   'same' zero padding, float32, seeded weights; receptive-field radius 2) is scripted with
   torch.jit.script (and, as a second model, traced with torch.jit.trace) and saved with
   torch.jit.save, with its JSON record (non-trivial input and output normalisation). An
   identity module with the same record is saved too.
2. `caustic run` (16^3 particles, 32^3 mesh, 64 Mpc/h, single precision, CIC) at 1 and 2 ranks
   with three [emulators.NAME] hooks (the scripted, the traced and the identity model) and the
   density output at a = 1; at 2 ranks with tile_planes = 5 (several tiles per slab).
3. The hooks' input is the density file's field: the CIC density contrast of the final snapshot
   (numpy), and the identity hook's output equals it. The PyTorch module applied to the periodic
   density field (normalised as the record says, wrapped by 2 cells with numpy.pad, cropped,
   de-normalised) equals the hook's output to < 1e-5 of the output's rms at 1 and 2 ranks.
   The output records the model path and the record (provenance).
4. Not vacuous: the same comparison against a module with other weights, and against the right
   module without the record's normalisation, differs by far more than the tolerance.
5. A conditioned painter (a baryon painter's form): a PyTorch module of two channels, the
   log-transformed density contrast and a constant conditioning channel for baryons.log10_mc
   (read from the run's [baryons]), whose output is a logarithmic residual of the input, run with
   its own 16^3 mesh (mesh = 16, the PM mesh is 32^3). Its output equals numpy's CIC of the
   snapshot on 16^3 pushed through the module as the record says; another log10_mc gives
   another field; a value outside the record's range, and a setting a run does not have, are
   refused with messages that name them.
6. A halo surrogate (a record with a "halo" section): a PyTorch 1x1x1 convolution from the
   log-transformed density to a presence logit and ln M, on the 16^3 mesh, at 1, 2 and 3 ranks.
   Its presence, mass and expected halo-mass fields equal numpy's computation from the CIC of
   the snapshot; its sampled catalogue (Gadget-4 group layout) is the same at every rank count,
   holds as many halos as the summed presence within 5 binomial sigma, every halo within half a
   cell of its voxel (GroupMinID) and at least the record's min_mass.
"""
import argparse
import json
import os
import shlex
import shutil
import time

import h5py
import numpy as np
import torch

from e2e import COSMOLOGY, Checks, run

TOL = 1e-5
RADIUS = 2  # receptive-field radius of two 3x3x3 convolutions
BOX, NP, MESH = 64.0, 16, 32
IN_MEAN, IN_STD = 0.25, 2.0
OUT_MEAN, OUT_STD = -0.5, 3.0

PARAMS = COSMOLOGY + """
[simulation]
box = {box}
particles = {np_}
mesh = {mesh}
a_start = 0.05
a_end = 1.0
steps = 4
seed = 7
precision = "single"

[output]
directory = "{out}"
a = [1.0]
density = true
window = "cic"
power_spectrum = false
snapshot_precision = "double"

[emulators.torchmodel]
model = "torch_model.pt"
space = "eulerian"
inputs = ["density"]
a = [1.0]
tile_planes = {tiles}

[emulators.traced]
model = "torch_traced.pt"
tile_planes = {tiles}

[emulators.identity]
model = "torch_identity.pt"

[emulators.painter]
model = "torch_painter.pt"
mesh = {cmesh}

[emulators.halos]
model = "torch_halos.pt"
mesh = {cmesh}
seed = 11

[baryons]
log10_mc = {mc}
"""
CMESH = 16
COND = dict(name="baryons.log10_mc", mean=13.5, std=0.5, range=[13.0, 14.0])
P_IN = dict(mean=-0.4, std=1.3, floor=1e-3)
P_OUT = dict(mean=0.05, std=0.8)

check = Checks()


class SmallNet(torch.nn.Module):
    """Two 3x3x3 convolutions with 'same' zero padding: Caustic supplies periodic ghost cells
    (at least the receptive field) around every tile and crops them from the output, so the
    zero padding only touches cells that are cropped."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv3d(1, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv3d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.tanh(self.conv1(x)))


class Identity(torch.nn.Module):
    def forward(self, x):
        return x * 1.0


class PainterNet(torch.nn.Module):
    """Two channels in (the transformed density and the conditioning constant), one out."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv3d(2, 4, 3, padding=1)
        self.conv2 = torch.nn.Conv3d(4, 1, 3, padding=1)

    def forward(self, x):
        return self.conv2(torch.tanh(self.conv1(x)))


def make_painter():
    torch.manual_seed(3)
    net = PainterNet().float().eval()
    with torch.no_grad():
        net.conv1.weight.mul_(3.0)
    return net


def painter_record():
    rec = record("baryon_painter_test", "rho_painted", "tests/check_pytorch_model.py: PainterNet")
    rec["cell_size"] = {"value": BOX / CMESH, "rtol": 0.01}
    rec["inputs"] = [dict(name="density", transform="log1p", **P_IN)]
    rec["outputs"] = [dict(name="rho_painted", transform="log", floor=1e-3, residual_of="density",
                           **P_OUT)]
    rec["conditioning"] = [COND]
    return rec


def apply_painter(module, delta, mc):
    """What Model::forward does for the painter record: ln(max(1 + delta, floor)), normalised,
    the conditioning channel, the module, de-normalised plus the transformed input, exp."""
    t = np.log(np.maximum(1.0 + delta.astype(np.float64), P_IN["floor"]))
    xn = ((t - P_IN["mean"]) / P_IN["std"]).astype(np.float32)
    c = np.full_like(xn, (mc - COND["mean"]) / COND["std"])
    x = np.pad(np.stack([xn, c]), ((0, 0),) + ((RADIUS, RADIUS),) * 3, mode="wrap")
    with torch.no_grad():
        y = module(torch.from_numpy(x)[None]).numpy()[0, 0].astype(np.float64)
    y = y[RADIUS:-RADIUS, RADIUS:-RADIUS, RADIUS:-RADIUS]
    return np.exp(y * P_OUT["std"] + P_OUT["mean"] + t)


H_IN = dict(mean=-0.3, std=1.1, floor=1e-3)
H_PRES = dict(mean=-1.0, std=1.5)  # a Platt calibration
H_MASS = dict(mean=32.0, std=0.4)
H_SCATTER, H_MINMASS = 0.3, 3e13
HALO_CATALOGUES = {}


def make_halo_net():
    torch.manual_seed(5)
    net = torch.nn.Conv3d(1, 2, 1).float().eval()
    with torch.no_grad():
        net.weight.copy_(torch.tensor([1.5, 0.8]).view(2, 1, 1, 1, 1))
        net.bias.copy_(torch.tensor([-1.0, 0.2]))
    return net


def halo_record():
    rec = record("halo_surrogate", "halo_presence", "tests/check_pytorch_model.py: halo net")
    rec["cell_size"] = {"value": BOX / CMESH, "rtol": 0.01}
    rec["receptive_field"] = 0
    rec["inputs"] = [dict(name="density", transform="log1p", **H_IN)]
    rec["outputs"] = [dict(name="halo_presence", transform="logit", floor=1e-6, **H_PRES),
                      dict(name="halo_mass", transform="log", floor=1.0, **H_MASS)]
    rec["halo"] = dict(presence="halo_presence", mass="halo_mass", log_mass_scatter=H_SCATTER,
                       min_mass=H_MINMASS, linking_length=0.2, number_density=1e-3)
    return rec


def apply_halo_net(net, delta):
    """Model::forward for the halo record: presence sigmoid(mean + std y0), mass exp(mean + std y1)."""
    t = np.log(np.maximum(1.0 + delta.astype(np.float64), H_IN["floor"]))
    xn = ((t - H_IN["mean"]) / H_IN["std"]).astype(np.float32)
    with torch.no_grad():
        y = net(torch.from_numpy(xn)[None, None]).numpy()[0].astype(np.float64)
    p = 1.0 / (1.0 + np.exp(-(y[0] * H_PRES["std"] + H_PRES["mean"])))
    return p, np.exp(y[1] * H_MASS["std"] + H_MASS["mean"])


def make_net(seed):
    torch.manual_seed(seed)
    net = SmallNet().float().eval()
    with torch.no_grad():  # weights large enough for the tanh to be nonlinear on delta / 2
        net.conv1.weight.mul_(4.0)
    return net


def record(kind, out_name, provenance, out_mean=OUT_MEAN, out_std=OUT_STD):
    return {
        "kind": kind,
        "version": "1.0",
        "inputs": [{"name": "density", "mean": IN_MEAN, "std": IN_STD}],
        "outputs": [{"name": out_name, "mean": out_mean, "std": out_std}],
        "receptive_field": RADIUS,
        "cell_size": {"value": BOX / MESH, "rtol": 0.01},
        "box": [32.0, 128.0],
        "redshift": [0.0, 1.0],
        "cosmology": {"Omega_m": [0.25, 0.35], "sigma8": [0.7, 0.9]},
        "provenance": provenance,
    }


def save_models(work):
    net = make_net(1)
    scripted = torch.jit.script(net)
    torch.jit.save(scripted, os.path.join(work, "torch_model.pt"))
    traced = torch.jit.trace(net, torch.zeros(1, 1, 12, 12, 12))
    torch.jit.save(traced, os.path.join(work, "torch_traced.pt"))
    torch.jit.save(torch.jit.script(Identity().eval()), os.path.join(work, "torch_identity.pt"))
    recs = {
        "torch_model": record("pytorch_roundtrip", "delta_torch",
                              "tests/check_pytorch_model.py: torch.jit.script of SmallNet, seed 1"),
        "torch_traced": record("pytorch_roundtrip", "delta_traced",
                               "tests/check_pytorch_model.py: torch.jit.trace of SmallNet, seed 1"),
        # Output normalisation = input normalisation: the hook gives back its input.
        "torch_identity": record("identity", "delta_identity", "tests/check_pytorch_model.py: identity",
                                 IN_MEAN, IN_STD),
    }
    torch.jit.save(torch.jit.script(make_halo_net()), os.path.join(work, "torch_halos.pt"))
    with open(os.path.join(work, "torch_halos.json"), "w") as f:
        json.dump(halo_record(), f, indent=2)
    torch.jit.save(torch.jit.script(make_painter()), os.path.join(work, "torch_painter.pt"))
    with open(os.path.join(work, "torch_painter.json"), "w") as f:
        json.dump(painter_record(), f, indent=2)
    for stem, rec in recs.items():
        with open(os.path.join(work, stem + ".json"), "w") as f:
            json.dump(rec, f, indent=2)
    return net, recs


def apply_like_caustic(module, delta, normalise=True):
    """The module on the periodic field: normalised as Model::forward does (float64 arithmetic,
    rounded to float32), wrapped by RADIUS cells on every side, the module, the crop, and the
    output normalisation undone."""
    x = delta.astype(np.float64)
    if normalise:
        x = (x - IN_MEAN) / IN_STD
    x = np.pad(x.astype(np.float32), RADIUS, mode="wrap")
    with torch.no_grad():
        y = module(torch.from_numpy(x)[None, None]).numpy()[0, 0].astype(np.float64)
    y = y[RADIUS:-RADIUS, RADIUS:-RADIUS, RADIUS:-RADIUS]
    if normalise:
        y = y * OUT_STD + OUT_MEAN
    return y.astype(np.float32)


def cic_delta(pos, box, n):
    """CIC density contrast of equal-mass particles, mesh points at i L/n (Caustic's painter)."""
    u = np.clip(pos / (box / n), 0.0, n)
    i0 = np.floor(u).astype(np.int64)
    d = u - i0
    rho = np.zeros((n, n, n))
    for a in (0, 1):
        wx = d[:, 0] if a else 1 - d[:, 0]
        for b in (0, 1):
            wy = d[:, 1] if b else 1 - d[:, 1]
            for c in (0, 1):
                wz = d[:, 2] if c else 1 - d[:, 2]
                np.add.at(rho, ((i0[:, 0] + a) % n, (i0[:, 1] + b) % n, (i0[:, 2] + c) % n),
                          wx * wy * wz)
    return rho * n ** 3 / len(pos) - 1.0


def text(v):
    return v.decode() if isinstance(v, bytes) else str(v)


def read_hook(path, name):
    with h5py.File(path, "r") as f:
        return f["Fields/" + name][...], {k: text(v) for k, v in f["Fields"].attrs.items()}


def rel(a, b):
    """Largest |a - b| over the rms of b's fluctuations about its mean."""
    b64 = b.astype(np.float64)
    return np.abs(a.astype(np.float64) - b64).max() / np.sqrt(np.mean((b64 - b64.mean()) ** 2))


def check_run(args, work, nranks, net, other_net, recs):
    out = os.path.join(work, "out_np%d" % nranks)
    shutil.rmtree(out, ignore_errors=True)
    pfile = os.path.join(work, "run_np%d.toml" % nranks)
    with open(pfile, "w") as f:
        f.write(PARAMS.format(box=BOX, np_=NP, mesh=MESH, out=out, tiles=5 if nranks > 1 else 32,
                              cmesh=CMESH, mc=13.2))
    t0 = time.time()
    r = run(shlex.split(args.mpiexec) + ["-n", str(nranks), args.caustic, "run", pfile])
    print("(%.1f s)" % (time.time() - t0))
    if not check(r.returncode == 0, "%d ranks: caustic run failed: %s" % (nranks, r.stderr[-1500:])):
        print(r.stdout[-1500:])
        return
    tag = "%d rank%s" % (nranks, "s" if nranks > 1 else "")
    with h5py.File(os.path.join(out, "density_a1.0000.hdf5"), "r") as f:
        delta = f["Fields/density"][...]
    with h5py.File(os.path.join(out, "snapshot_a1.0000.hdf5"), "r") as f:
        pos = f["PartType1/Coordinates"][...].astype(np.float64)
    check(delta.dtype == np.float32 and delta.shape == (MESH,) * 3, "%s: density field %s %s" %
          (tag, delta.dtype, delta.shape))

    # The density file holds the hook's input: the CIC density contrast of the particles ...
    # (Caustic paints in float32: differences of float32 rounding of values up to max |delta|.)
    e_cic = np.abs(delta - cic_delta(pos, BOX, MESH)).max() / np.abs(delta).max()
    print("%s: density file vs numpy CIC of the snapshot: largest difference %.2e of max |delta| = %.1f" %
          (tag, e_cic, np.abs(delta).max()))
    check(e_cic < 1e-5, "%s: density file is not the CIC density contrast (%g)" % (tag, e_cic))
    # ... and exactly what the hook normalised and fed to the model (identity model, same record).
    ident, _ = read_hook(os.path.join(out, "identity_a1.0000.hdf5"), "delta_identity")
    e_id = np.abs(ident.astype(np.float64) - delta).max()
    print("%s: identity hook output vs density file: largest difference %.2e" % (tag, e_id))
    check(e_id < 1e-6 * np.abs(delta).max(), "%s: the hook's input differs from the density file by %g" %
          (tag, e_id))

    ref = apply_like_caustic(net, delta)
    for hook, field, stem in (("torchmodel", "delta_torch", "torch_model"),
                              ("traced", "delta_traced", "torch_traced")):
        got, attrs = read_hook(os.path.join(out, hook + "_a1.0000.hdf5"), field)
        err = rel(got, ref)
        print("%s: %s hook vs PyTorch on the periodic field: max |diff| / rms = %.2e "
              "(output rms %.3f, tolerance %.0e)" % (tag, hook, err, np.sqrt(np.mean(
                  (ref.astype(np.float64) - ref.mean()) ** 2)), TOL))
        check(got.dtype == np.float32 and got.shape == ref.shape, "%s: %s output %s %s" %
              (tag, hook, got.dtype, got.shape))
        check(err < TOL, "%s: %s hook differs from PyTorch by %.3g of the rms" % (tag, hook, err))
        model_path = os.path.join(work, stem + ".pt")
        check(os.path.realpath(attrs.get("model", "")) == os.path.realpath(model_path),
              "%s: %s output records model %r, expected %s" % (tag, hook, attrs.get("model"), model_path))
        meta = json.loads(attrs.get("model_metadata", "{}"))
        check(meta.get("provenance") == recs[stem]["provenance"] and meta.get("kind") == "pytorch_roundtrip",
              "%s: %s output's record: %s" % (tag, hook, attrs.get("model_metadata")))
        check(meta.get("inputs") == recs[stem]["inputs"] and meta.get("outputs") == recs[stem]["outputs"],
              "%s: %s output's record has other channels: %s" % (tag, hook, meta))
        check(attrs.get("forced") == "false" and attrs.get("inputs") == "density" and
              attrs.get("space") == "eulerian", "%s: %s attributes %s" % (tag, hook, attrs))

    # The conditioned painter on its own mesh.
    painter = make_painter()
    got_p, attrs_p = read_hook(os.path.join(out, "painter_a1.0000.hdf5"), "rho_painted")
    d16 = cic_delta(pos, BOX, CMESH)
    ref_p = apply_painter(painter, d16, 13.2)
    e_p = np.abs(np.log(got_p.astype(np.float64)) - np.log(ref_p)).max()
    e_mc = np.abs(np.log(apply_painter(painter, d16, 13.7)) - np.log(ref_p)).max()
    print("%s: conditioned painter (16^3 mesh, log10_mc = 13.2) vs PyTorch on numpy's CIC: "
          "max |d ln rho| = %.2e; the same at log10_mc = 13.7 differs by %.2e" % (tag, e_p, e_mc))
    check(got_p.shape == (CMESH,) * 3, "%s: painter output shape %s" % (tag, got_p.shape))
    check(e_p < 2e-4, "%s: conditioned painter differs from PyTorch by %.3g in ln rho" % (tag, e_p))
    check(e_mc > 100 * 2e-4, "%s: the conditioning value hardly changes the output (%g)" % (tag, e_mc))
    check(attrs_p.get("conditioning") == "baryons.log10_mc = 13.2",
          "%s: painter output's conditioning attribute %r" % (tag, attrs_p.get("conditioning")))

    # The halo surrogate: fields from numpy's CIC, and the sampled catalogue.
    p_ref, m_ref = apply_halo_net(make_halo_net(), d16)
    with h5py.File(os.path.join(out, "halos_a1.0000.hdf5"), "r") as f:
        p_got = f["Fields/halo_presence"][...].astype(np.float64)
        m_got = f["Fields/halo_mass"][...].astype(np.float64)
        e_got = f["Fields/halo_mass_density"][...].astype(np.float64)
    e_pres = np.abs(p_got - p_ref).max()
    e_mass = np.abs(np.log(m_got) - np.log(m_ref)).max()
    e_exp = np.abs(e_got / (p_got * m_got * np.exp(0.5 * H_SCATTER ** 2)) - 1).max()
    print("%s: halo surrogate vs numpy: presence %.2e, ln mass %.2e, expected field %.2e" %
          (tag, e_pres, e_mass, e_exp))
    check(e_pres < 1e-5 and e_mass < 1e-5 and e_exp < 1e-5,
          "%s: halo surrogate fields differ: %g %g %g" % (tag, e_pres, e_mass, e_exp))
    cat_path = os.path.join(out, "halos_a1p0000.0.hdf5")
    with h5py.File(cat_path, "r") as f:
        ids = f["Group/GroupMinID"][...]
        pos_h = f["Group/GroupPos"][...].astype(np.float64)
        glen = f["Group/GroupLen"][...]
        mp = f["Header"].attrs["ParticleMass"] * 1e10
    HALO_CATALOGUES[nranks] = (ids, pos_h, glen)
    n_exp = p_got.sum()
    sd = np.sqrt((p_got * (1 - p_got)).sum())
    vox = np.stack([ids // CMESH ** 2, ids // CMESH % CMESH, ids % CMESH], axis=1)
    dx = pos_h - vox * (BOX / CMESH)
    dx -= BOX * np.round(dx / BOX)
    print("%s: halo catalogue: %d halos (summed presence %.1f +- %.1f), largest offset from the "
          "voxel %.3f cells, smallest mass %.3g (min_mass %.3g)" %
          (tag, len(ids), n_exp, sd, np.abs(dx).max() / (BOX / CMESH), glen.min() * mp, H_MINMASS))
    check(abs(len(ids) - n_exp) < 5 * sd and len(ids) > 20, "%s: %d halos for a summed presence of "
          "%.1f" % (tag, len(ids), n_exp))
    check(np.abs(dx).max() <= 0.5 * BOX / CMESH + 1e-9, "%s: a halo outside its voxel" % tag)
    check((glen * mp >= H_MINMASS - 0.5 * mp).all(), "%s: a halo below min_mass" % tag)
    check(os.path.exists(os.path.join(out, "halos_mass_function_a1.0000.txt")),
          "%s: no halo-surrogate mass function" % tag)

    # The comparison can fail: other weights, or the right weights without the normalisation.
    got, _ = read_hook(os.path.join(out, "torchmodel_a1.0000.hdf5"), "delta_torch")
    e_other = rel(got, apply_like_caustic(other_net, delta))
    e_nonorm = rel(got, apply_like_caustic(net, delta, normalise=False))
    print("%s: hook vs a module with other weights: %.2e; vs the module without the record's "
          "normalisation: %.2e" % (tag, e_other, e_nonorm))
    check(e_other > 1e3 * TOL, "%s: a module with other weights agrees (%g)" % (tag, e_other))
    check(e_nonorm > 1e3 * TOL, "%s: the unnormalised module agrees (%g)" % (tag, e_nonorm))
    return got


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--mpiexec", default="mpiexec")
    ap.add_argument("--work", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    net, recs = save_models(work)
    other_net = make_net(2)
    # The saved file reloaded by PyTorch is the module (the file, not only the object, is tested).
    x = torch.randn(1, 1, 8, 8, 8)
    with torch.no_grad():
        same = torch.equal(torch.jit.load(os.path.join(work, "torch_model.pt"))(x), net(x))
    check(same, "torch.jit.load of the saved model differs from the module")
    outputs = {}
    for nranks in (1, 2, 3):
        outputs[nranks] = check_run(args, work, nranks, net, other_net, recs)
    # The halo catalogue is the same at every rank count (a float32 rounding of the presence could
    # flip a voxel whose draw lies within 1e-7 of it: allow one such halo).
    if all(n in HALO_CATALOGUES for n in (1, 2, 3)):
        ids1, pos1, len1 = HALO_CATALOGUES[1]
        for n in (2, 3):
            ids_n, pos_n, len_n = HALO_CATALOGUES[n]
            common, i1, i_n = np.intersect1d(ids1, ids_n, return_indices=True)
            extra = len(ids1) + len(ids_n) - 2 * len(common)
            same = np.array_equal(pos1[i1], pos_n[i_n]) and np.array_equal(len1[i1], len_n[i_n])
            print("halo catalogue at %d ranks vs 1 rank: %d halos in one only; common ones %s" %
                  (n, extra, "identical" if same else "DIFFER"))
            check(extra <= 1 and same, "halo catalogue at %d ranks differs from 1 rank" % n)
    # Refusals: a conditioning value outside the record's range, a setting no run has.
    for case, mc, expect in (
            ("range", 14.5, "conditioning baryons.log10_mc = 14.5 outside the trained range [13, 14]"),
            ("unknown", 13.2, "is conditioned on \"baryons.feedback\", which is not a numeric setting")):
        cwork = os.path.join(work, "refuse_" + case)
        os.makedirs(cwork, exist_ok=True)
        rec = painter_record()
        if case == "unknown":
            rec["conditioning"][0]["name"] = "baryons.feedback"
        shutil.copy(os.path.join(work, "torch_painter.pt"), cwork)
        for stem in ("torch_model", "torch_traced", "torch_identity", "torch_halos"):
            shutil.copy(os.path.join(work, stem + ".pt"), cwork)
            shutil.copy(os.path.join(work, stem + ".json"), cwork)
        with open(os.path.join(cwork, "torch_painter.json"), "w") as f:
            json.dump(rec, f)
        pfile = os.path.join(cwork, "run.toml")
        with open(pfile, "w") as f:
            f.write(PARAMS.format(box=BOX, np_=NP, mesh=MESH, out=os.path.join(cwork, "out"), tiles=32,
                                  cmesh=CMESH, mc=mc))
        r = run([args.caustic, "run", pfile])
        print("refused (%s): %s" % (case, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""))
        check(r.returncode != 0 and expect in r.stderr,
              "%s: not refused as expected (%d): %s" % (case, r.returncode, r.stderr[-800:]))
        check(not os.path.exists(os.path.join(cwork, "out", "snapshot_a1.0000.hdf5")),
              "%s: a refused run wrote outputs" % case)
    if outputs[1] is not None and outputs[2] is not None:
        print("hook output at 2 ranks vs 1 rank: max |diff| / rms = %.2e" % rel(outputs[2], outputs[1]))
    check.finish()


if __name__ == "__main__":
    main()
