#!/usr/bin/env python3
"""`caustic baryonify` end to end: a small run with FoF, baryonified at 1, 2 and 3 ranks.

- Rank independence: the baryonified particles and their columns are identical at every rank
  count; S(k), the meshes and the Compton-y map agree to round-off.
- Against independent computations (numpy): S(k) from the two snapshots painted here; the rms and
  largest displacement; the baryon budget (gas + stars = Omega_b / Omega_m of the mass); the
  meshes' totals against the particles' columns; the Compton-y map against the electron-pressure
  mesh with the physical constants written out here.
- Bad input exits 2 naming the setting or file, before anything is written.
"""
import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks

check = Checks()
ARGS = None

PARAMS = COSMOLOGY + """
[simulation]
box = 32.0
particles = 32
mesh = 64
a_start = 0.05
a_end = 1.0
steps = 12
seed = 11

[output]
directory = "{out}"
a = [0.5, 1.0]
power_spectrum = false

[halos]
enabled = true
min_particles = 20
a = [0.5, 1.0]

[baryons]
enabled = {baryons}
a = [1.0]
"""


def caustic(args, np_=1):
    cmd = ([ARGS.caustic] if np_ == 1 else shlex.split(ARGS.mpiexec) + ["-n", str(np_), ARGS.caustic]) + args
    print("$", " ".join(cmd), flush=True)
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return None


def read_snapshot(path):
    with h5py.File(path, "r") as f:
        ids = f["PartType1/ParticleIDs"][...]
        order = np.argsort(ids)
        out = {"ids": ids[order], "x": f["PartType1/Coordinates"][...][order].astype(np.float64)}
        for name in ("GasFraction", "StarFraction", "Temperature", "ElectronPressure"):
            if name in f["PartType1"]:
                out[name] = f["PartType1/" + name][...][order].astype(np.float64).reshape(-1)
        out["box"] = float(f["Header"].attrs["BoxSize"])
    return out


def cic_power(x, box, n):
    """P(k) of particles painted with CIC on an n^3 mesh (no window correction: the ratio of two
    such spectra is what is compared), in shells of width 2 pi / L."""
    u = x / box * n
    i0 = np.floor(u).astype(np.int64)
    d = u - i0
    rho = np.zeros((n, n, n))
    for dx in (0, 1):
        wx = d[:, 0] if dx else 1 - d[:, 0]
        for dy in (0, 1):
            wy = d[:, 1] if dy else 1 - d[:, 1]
            for dz in (0, 1):
                wz = d[:, 2] if dz else 1 - d[:, 2]
                np.add.at(rho, ((i0[:, 0] + dx) % n, (i0[:, 1] + dy) % n, (i0[:, 2] + dz) % n), wx * wy * wz)
    delta = rho / rho.mean() - 1
    dk = np.fft.rfftn(delta)
    p = np.abs(dk) ** 2
    m = np.fft.fftfreq(n) * n
    mz = np.fft.rfftfreq(n) * n
    kk = np.sqrt(m[:, None, None] ** 2 + m[None, :, None] ** 2 + mz[None, None, :] ** 2)
    b = np.rint(kk).astype(int)
    w = np.ones_like(p)
    w[:, :, 1:-1] = 2  # both halves of the z axis
    num = np.bincount(b.ravel(), (p * w).ravel())
    den = np.bincount(b.ravel(), w.ravel())
    return num, den


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--mpiexec", required=True)
    ARGS = ap.parse_args()
    work = ARGS.work
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    run_dir = os.path.join(work, "run")
    with open(os.path.join(work, "p.toml"), "w") as f:
        f.write(PARAMS.format(out=run_dir, baryons="true"))
    r = caustic(["run", os.path.join(work, "p.toml")], 2)
    if not check(r is not None and r.returncode == 0, "the run: " + ("timeout" if r is None else r.stderr[-2000:])):
        check.finish()
    snap = os.path.join(run_dir, "snapshot_a1.0000.hdf5")
    halos = os.path.join(run_dir, "halos_a1p0000.0.hdf5")
    with h5py.File(halos, "r") as f:
        ngroups = int(f["Header"].attrs["Ngroups_Total"])
    check(ngroups >= 5, f"the run has {ngroups} FoF groups; expected at least 5 for the test")

    outs = {}
    for np_ in (1, 2, 3):
        d = os.path.join(work, f"bcm_np{np_}")
        r = caustic(["baryonify", snap, halos, "-o", d], np_)
        ok = check(r is not None and r.returncode == 0,
                   f"baryonify at {np_} rank(s): " + ("timeout" if r is None else r.stderr[-2000:]))
        if ok:
            outs[np_] = d
    if 1 not in outs:
        check.finish()
    d1 = outs[1]
    with open(os.path.join(d1, "baryonify_summary.json")) as f:
        sm = json.load(f)
    check(sm["haloes_baryonified"] == ngroups, f"summary: {sm['haloes_baryonified']} haloes, catalogue {ngroups}")

    dmo = read_snapshot(snap)
    bcm = read_snapshot(os.path.join(d1, "snapshot_bcm.hdf5"))
    L = dmo["box"]
    n = len(dmo["ids"])
    check(np.array_equal(dmo["ids"], bcm["ids"]), "the baryonified snapshot holds the same particle IDs")
    check(bool(np.all((bcm["x"] >= 0) & (bcm["x"] < L))), "baryonified positions in [0, L)")
    dx = bcm["x"] - dmo["x"]
    dx -= L * np.rint(dx / L)
    disp = np.sqrt((dx ** 2).sum(axis=1))
    rms = np.sqrt((disp ** 2).mean())
    # Coordinates are stored in float32: 1e-5 Mpc/h of rounding per particle.
    check(abs(rms - sm["displacement_rms_mpc_h"]) < 1e-3 * sm["displacement_rms_mpc_h"] + 1e-5,
          f"rms displacement from the snapshots {rms:.6f} vs summary {sm['displacement_rms_mpc_h']:.6f}")
    check(abs(disp.max() - sm["displacement_max_mpc_h"]) < 1e-4,
          f"largest displacement {disp.max():.6f} vs summary {sm['displacement_max_mpc_h']:.6f}")
    check(rms > 1e-3, f"particles were displaced (rms {rms:.5f} Mpc/h)")

    # Baryon budget.
    fb = sm["cosmic_baryon_fraction"]
    budget = (bcm["GasFraction"] + bcm["StarFraction"]).mean()
    check(abs(budget - fb) < 1e-5, f"gas + stars = {budget:.7f} of the mass, Omega_b/Omega_m = {fb:.7f}")
    check(bool(np.all(bcm["GasFraction"] > 0)) and bool(np.all(bcm["StarFraction"] >= 0)),
          "fractions are non-negative")
    check(bool(np.all(bcm["Temperature"] >= 0.99e4)), "gas temperatures at least T_igm")

    # S(k) against numpy's painting of the two snapshots (k below half the particle Nyquist).
    table = np.loadtxt(os.path.join(d1, "suppression.txt"))
    nm = 64
    pd, cnt = cic_power(dmo["x"], L, nm)
    pb, _ = cic_power(bcm["x"], L, nm)
    worst = 0.0
    for row in table:
        b = int(round(row[0] / (2 * np.pi / L)))
        if b < 1 or b > 8:
            continue
        s_np = pb[b] / pd[b]
        worst = max(worst, abs(s_np - row[1]))
    check(worst < 2e-3, f"S(k) of caustic vs numpy's CIC spectra, k <= 8 k_F: largest difference {worst:.2e}")

    # Meshes against the particle columns.
    with h5py.File(os.path.join(d1, "baryon_fields.hdf5"), "r") as f:
        gas = f["Fields/gas_density"][...].astype(np.float64)
        temp = f["Fields/gas_temperature"][...].astype(np.float64)
        pe = f["Fields/electron_pressure"][...].astype(np.float64)
        nmesh = int(f["Header"].attrs["MeshSize"])
        a = float(f["Header"].attrs["Time"])
        h = float(f["Parameters"].attrs["cosmology.h"])
    check(abs(gas.mean() - bcm["GasFraction"].mean() / fb) < 1e-5,
          f"mean gas density {gas.mean():.7f} vs the particles' {bcm['GasFraction'].mean() / fb:.7f}")
    tm = (gas * temp).sum() / gas.sum()
    tp = (bcm["GasFraction"] * bcm["Temperature"]).sum() / bcm["GasFraction"].sum()
    check(abs(tm / tp - 1) < 1e-4, f"gas-mass-weighted T of the mesh {tm:.5e} K vs the particles' {tp:.5e} K")
    # Electron pressure: sum over cells x cell volume = sum over particles of P_e x (gas volume):
    # the particle column is P_e in keV/cm^3 at its position; its gas volume is m_gas / rho_gas.
    # Checked instead through the y-map: y = sigma_T / (m_e c^2) sum_z P_e dl.
    with h5py.File(os.path.join(d1, "compton_y.hdf5"), "r") as f:
        y = f["Maps/compton_y"][...]
    sigma_t = 6.6524587321e-25  # cm^2
    me_c2 = 9.1093837015e-28 * 2.99792458e10 ** 2  # erg
    kev = 1.602176634e-9  # erg
    mpc_cm = 3.085678e24
    dl = a * L / nmesh / h * mpc_cm
    y_np = sigma_t / me_c2 * kev * dl * pe.sum(axis=2)
    check(np.allclose(y, y_np, rtol=1e-5, atol=0), "Compton-y map = sigma_T/(m_e c^2) sum_z P_e dl")
    check(y.max() > 1e-7 and y.min() > 0, f"y between {y.min():.3e} and {y.max():.3e}")

    # Rank independence.
    for np_, d in outs.items():
        if np_ == 1:
            continue
        other = read_snapshot(os.path.join(d, "snapshot_bcm.hdf5"))
        same = np.array_equal(other["x"], bcm["x"]) and all(
            np.array_equal(other[c], bcm[c]) for c in ("GasFraction", "StarFraction", "Temperature", "ElectronPressure"))
        check(same, f"{np_} ranks: baryonified particles and columns identical to 1 rank")
        t2 = np.loadtxt(os.path.join(d, "suppression.txt"))
        check(np.allclose(t2[:, 1], table[:, 1], rtol=1e-9, atol=0), f"{np_} ranks: S(k) equal to 1 rank")
        with h5py.File(os.path.join(d, "compton_y.hdf5"), "r") as f:
            check(np.allclose(f["Maps/compton_y"][...], y, rtol=1e-9, atol=0), f"{np_} ranks: y-map equal to 1 rank")
        with h5py.File(os.path.join(d, "baryon_fields.hdf5"), "r") as f:
            check(np.allclose(f["Fields/gas_density"][...], gas, rtol=1e-5, atol=1e-6),
                  f"{np_} ranks: gas mesh equal to 1 rank (float32)")

    # In-situ ([baryons] enabled in the run) against the command on the run's outputs: the run
    # holds double positions and catalogue, the files float32.
    insitu = os.path.join(run_dir, "baryons_a1.0000")
    ok = check(os.path.isfile(os.path.join(insitu, "suppression.txt")), "in-situ baryons written by the run")
    if ok:
        ti = np.loadtxt(os.path.join(insitu, "suppression.txt"))
        check(np.allclose(ti[:, 1], table[:, 1], rtol=0, atol=1e-5),
              f"in-situ S(k) = baryonify of the run's files (largest difference {abs(ti[:, 1] - table[:, 1]).max():.2e})")
        with open(os.path.join(insitu, "baryons_summary.json")) as f:
            si = json.load(f)
        check(si["haloes_baryonified"] == sm["haloes_baryonified"], "in-situ: the same haloes")
        snap_i = read_snapshot(os.path.join(insitu, "snapshot_bcm.hdf5"))
        check(np.abs(snap_i["x"] - bcm["x"]).max() < 1e-3 and np.array_equal(snap_i["ids"], bcm["ids"]),
              "in-situ baryonified particles = baryonify's (1e-3 Mpc/h)")
    # The run's own particles are not changed by the in-situ model: same snapshot as without it.
    plain = os.path.join(work, "plain")
    with open(os.path.join(work, "plain.toml"), "w") as f:
        f.write(PARAMS.format(out=plain, baryons="false"))
    r = caustic(["run", os.path.join(work, "plain.toml")], 2)
    if check(r is not None and r.returncode == 0, "the run without baryons"):
        check(np.array_equal(read_snapshot(os.path.join(plain, "snapshot_a1.0000.hdf5"))["x"], dmo["x"]),
              "the run's z = 0 snapshot is the same with and without in-situ baryons")

    # LDL painter fitted to the in-situ gas density: a second seed for the held-out pair.
    run2 = os.path.join(work, "run2")
    with open(os.path.join(work, "p2.toml"), "w") as f:
        f.write(PARAMS.format(out=run2, baryons="true").replace("seed = 11", "seed = 12"))
    r = caustic(["run", os.path.join(work, "p2.toml")], 2)
    if check(r is not None and r.returncode == 0, "second run for LDL"):
        tr = snap + "=" + os.path.join(insitu, "baryon_fields.hdf5")
        te = (os.path.join(run2, "snapshot_a1.0000.hdf5") + "=" +
              os.path.join(run2, "baryons_a1.0000", "baryon_fields.hdf5"))
        fits = {}
        for np_ in (1, 2):
            d = os.path.join(work, f"ldl_np{np_}")
            r = caustic(["ldl-fit", "--train", tr, "--test", te, "--iterations", "6", "-o", d], np_)
            if check(r is not None and r.returncode == 0, f"ldl-fit at {np_} rank(s): " +
                     ("timeout" if r is None else r.stderr[-600:])):
                with open(os.path.join(d, "ldl.json")) as f:
                    fits[np_] = json.load(f)
        if 1 in fits:
            j = fits[1]
            check(j["loss_final"] < 0.9 * j["loss_initial"],
                  f"ldl-fit lowers the loss: {j['loss_initial']:.4f} -> {j['loss_final']:.4f}")
            check(len(j["parameters"]) == 13 and len(j["test"]) == 1, "ldl.json: 13 parameters, 1 held-out pair")
            tkr = np.array(j["test"][0]["k_T_r"])
            check(bool(np.all(np.isfinite(tkr))) and tkr[0, 2] > 0.5,
                  f"held-out T(k), r(k) finite, r at the first k {tkr[0, 2]:.3f}")
        if 1 in fits and 2 in fits:
            p1, p2 = np.array(fits[1]["parameters"]), np.array(fits[2]["parameters"])
            check(np.allclose(p1, p2, rtol=1e-6, atol=1e-9), f"ldl-fit at 2 ranks = 1 rank (largest difference {np.abs(p1 - p2).max():.2e})")
        # A mass-conserving matter painter: displacement layers only, with the power term.
        d = os.path.join(work, "ldl_matter")
        r = caustic(["ldl-fit", "--train", tr, "--test", te, "--iterations", "6", "--field",
                     "matter_density", "--displacement-only", "--power-weight", "10", "-o", d], 1)
        if check(r is not None and r.returncode == 0, "ldl-fit --displacement-only: " +
                 ("timeout" if r is None else r.stderr[-600:])):
            with open(os.path.join(d, "ldl.json")) as f:
                j = json.load(f)
            out = dict(zip(j["parameter_names"], j["parameters"]))
            check(j["displacement_only"] and j["power_weight"] == 10 and out["output.mu"] == 1.0
                  and out["output.b_0"] == 0.0,
                  f"--displacement-only holds the output layer (mu {out['output.mu']}, b_0 {out['output.b_0']})")
            check(j["loss_final"] < j["loss_initial"],
                  f"matter fit lowers the loss: {j['loss_initial']:.5f} -> {j['loss_final']:.5f}")
            # --init: an earlier fit's parameters as the start (none moved by 0 iterations), and a
            # record of another field refused.
            d2 = os.path.join(work, "ldl_matter_init")
            r = caustic(["ldl-fit", "--train", tr, "--iterations", "0", "--field", "matter_density",
                         "--displacement-only", "--init", os.path.join(d, "ldl.json"), "-o", d2], 1)
            if check(r is not None and r.returncode == 0, "ldl-fit --init: " +
                     ("timeout" if r is None else r.stderr[-600:])):
                with open(os.path.join(d2, "ldl.json")) as f:
                    j2 = json.load(f)
                check(np.allclose(j2["parameters"], j["parameters"], rtol=1e-12, atol=0),
                      "ldl-fit --init with 0 iterations keeps the record's parameters")
            r = caustic(["ldl-fit", "--train", tr, "--iterations", "0", "--init",
                         os.path.join(d, "ldl.json"), "-o", d2 + "_bad"], 1)
            check(r is not None and r.returncode == 2 and "--init" in r.stderr and "matter_density" in r.stderr
                  and not os.path.exists(d2 + "_bad"),
                  "ldl-fit --init of another field's record: exit 2 naming it, nothing written")
        # A matter painter conditioned on log10_mc: targets of one snapshot baryonified at
        # log10_mc = 13 and 14; the record keeps the range and a slope per parameter, held-out
        # pairs are painted at their own setting, and the hook at the run's.
        conditioned_ok = True
        for mc in ("13.0", "14.0"):
            r = caustic(["baryonify", snap, halos, "-o", os.path.join(work, f"bcm_mc{mc}"), "--set",
                         f"baryons.log10_mc={mc}"], 2)
            conditioned_ok &= check(r is not None and r.returncode == 0, f"baryonify at log10_mc = {mc}")
        if conditioned_ok:
            trc = [snap + "=" + os.path.join(work, f"bcm_mc{mc}", "baryon_fields.hdf5") for mc in ("13.0", "14.0")]
            dc = os.path.join(work, "ldl_conditioned")
            r = caustic(["ldl-fit", "--train", trc[0], "--train", trc[1], "--test", te, "--iterations", "4",
                         "--field", "matter_density", "--displacement-only", "--power-weight", "10",
                         "--condition", "baryons.log10_mc", "-o", dc], 2)
            if check(r is not None and r.returncode == 0, "ldl-fit --condition: " +
                     ("timeout" if r is None else r.stderr[-600:])):
                with open(os.path.join(dc, "ldl.json")) as f:
                    jc = json.load(f)
                cond = jc["conditioning"]
                check(len(cond) == 1 and cond[0]["name"] == "baryons.log10_mc" and cond[0]["min"] == 13.0
                      and cond[0]["max"] == 14.0 and cond[0]["center"] == 13.5 and cond[0]["scale"] == 0.5
                      and cond[0]["train_values"] == [13.0, 14.0],
                      f"conditioned record: the training range of log10_mc ({cond})")
                slope = np.array(cond[0]["slope"])
                check(slope.size == 13 and np.all(slope[10:] == 0) and np.any(slope[:10] != 0),
                      f"conditioned record: 13 slopes, the held output layer's zero ({slope})")
                check(abs(jc["test"][0]["settings"]["baryons.log10_mc"] - 13.32) < 1e-12,
                      "the held-out pair's own log10_mc (the default, 13.32) is recorded")
                check(jc["loss_final"] < jc["loss_initial"],
                      f"conditioned fit lowers the loss: {jc['loss_initial']:.5f} -> {jc['loss_final']:.5f}")
                # In-situ at two settings: different fields, the setting in the file; outside the
                # fitted range refused.
                hookc = '\n[emulators.matter]\nkind = "ldl"\nmodel = "' + os.path.join(dc, "ldl.json") + '"\na = [1.0]\n'
                fields = {}
                for mc in ("13.0", "14.0", "15.0"):
                    d = os.path.join(work, f"hookc_{mc}")
                    with open(os.path.join(work, "hookc.toml"), "w") as f:
                        f.write(PARAMS.format(out=d, baryons="false").replace("[baryons]", f"[baryons]\nlog10_mc = {mc}")
                                + hookc)
                    r = caustic(["run", os.path.join(work, "hookc.toml")], 1)
                    if mc == "15.0":
                        check(r is not None and r.returncode == 2 and "baryons.log10_mc = 15" in r.stderr
                              and not os.path.exists(d), "conditioned LDL hook outside its range: refused, nothing written")
                    elif check(r is not None and r.returncode == 0, f"conditioned LDL hook at log10_mc = {mc}"):
                        with h5py.File(os.path.join(d, "matter_a1.0000.hdf5"), "r") as f:
                            fields[mc] = f["Fields/matter_density"][...].astype(np.float64)
                            at = f["Fields"].attrs["conditioning"]
                            at = at.decode() if isinstance(at, bytes) else at
                            check(at == f"baryons.log10_mc = {float(mc):g}",
                                  f"the hook's file records the setting it painted at ({at})")
                if len(fields) == 2:
                    check(not np.array_equal(fields["13.0"], fields["14.0"]),
                          "the conditioned painter paints differently at log10_mc = 13 and 14")
                r = caustic(["ldl-fit", "--train", tr, "--iterations", "0", "--field", "matter_density",
                             "--displacement-only", "--init", os.path.join(dc, "ldl.json"), "-o", dc + "_bad"], 1)
                check(r is not None and r.returncode == 2 and "--condition" in r.stderr
                      and not os.path.exists(dc + "_bad"),
                      "ldl-fit --init of a conditioned record without its --condition: refused")
            for args, needle, what in [
                    (["--train", trc[0], "--train", trc[1], "--condition", "nonsense"], "--condition nonsense",
                     "an unknown setting"),
                    (["--train", trc[0], "--condition", "baryons.log10_mc"], "two values or more",
                     "one training value of the condition")]:
                r = caustic(["ldl-fit", "--field", "matter_density"] + args + ["-o", dc + "_bad2"], 1)
                check(r is not None and r.returncode == 2 and needle in r.stderr and not os.path.exists(dc + "_bad2"),
                      f"ldl-fit with {what}: exit 2 naming '{needle}', nothing written (got " +
                      ("timeout" if r is None else f"{r.returncode}: {r.stderr[-300:]}") + ")")
        # In-situ: [emulators.gas] kind = "ldl" with the fitted record, at 1 and 2 ranks, in a
        # run that also baryonifies (the painter's target) at a = 1.
        if 1 in fits:
            rec = os.path.join(work, "ldl_np1", "ldl.json")
            hook = '\n[emulators.gas]\nkind = "ldl"\nmodel = "' + rec + '"\na = [1.0]\n'
            painted = {}
            for np_ in (1, 2):
                d = os.path.join(work, f"hook_np{np_}")
                with open(os.path.join(work, "hook.toml"), "w") as f:
                    f.write(PARAMS.format(out=d, baryons="true").replace("seed = 11", "seed = 13") + hook)
                r = caustic(["run", os.path.join(work, "hook.toml")], np_)
                if check(r is not None and r.returncode == 0, f"run with the LDL hook at {np_} rank(s): " +
                         ("timeout" if r is None else r.stderr[-600:])):
                    with h5py.File(os.path.join(d, "gas_a1.0000.hdf5"), "r") as f:
                        painted[np_] = f["Fields/gas_density"][...].astype(np.float64)
                        check(f["Fields"].attrs["kind"] == b"ldl" or f["Fields"].attrs["kind"] == "ldl",
                              "the hook's file records kind = ldl")
                    with h5py.File(os.path.join(d, "baryons_a1.0000", "baryon_fields.hdf5"), "r") as f:
                        truth = f["Fields/gas_density"][...].astype(np.float64)
            if 1 in painted:
                g = painted[1]
                corr = np.corrcoef(g.ravel(), truth.ravel())[0, 1]
                check(np.all(np.isfinite(g)) and corr > 0.8,
                      f"in-situ LDL gas vs the run's own BCM gas (held-out seed): cell correlation {corr:.3f}")
            if 1 in painted and 2 in painted:
                # The run itself agrees between rank counts to round-off (1e-5 Mpc/h in the
                # float32 snapshots), not bit for bit.
                dev = np.abs(painted[1] - painted[2]).max() / np.abs(painted[1]).max()
                check(dev < 1e-5, f"in-situ LDL at 2 ranks = 1 rank (largest difference {dev:.1e} of the maximum)")
            # Outside its domain (another box): refused, or applied with force = true.
            for force in (False, True):
                d = os.path.join(work, f"hook_box_{force}")
                shutil.rmtree(d, ignore_errors=True)
                text = (PARAMS.format(out=d, baryons="false").replace("box = 32.0", "box = 40.0") +
                        hook + ("force = true\n" if force else ""))
                with open(os.path.join(work, "hookbox.toml"), "w") as f:
                    f.write(text)
                r = caustic(["run", os.path.join(work, "hookbox.toml")], 1)
                if force:
                    check(r is not None and r.returncode == 0 and "outside its domain" in r.stderr,
                          "LDL hook with force = true in another box: runs with a warning")
                else:
                    check(r is not None and r.returncode == 2 and "outside the painter's domain" in r.stderr
                          and not os.path.exists(d), "LDL hook in another box: refused, nothing written")
        def hook_fields(tag, hook, name, field, what):
            """The field an LDL hook paints in a run of seed 13 without baryons, at 1 and 2 ranks."""
            painted = {}
            for np_ in (1, 2):
                d = os.path.join(work, f"{tag}_np{np_}")
                with open(os.path.join(work, f"{tag}.toml"), "w") as f:
                    f.write(PARAMS.format(out=d, baryons="false").replace("seed = 11", "seed = 13") + hook)
                r = caustic(["run", os.path.join(work, f"{tag}.toml")], np_)
                if check(r is not None and r.returncode == 0, f"run with {what} at {np_} rank(s): " +
                         ("timeout" if r is None else r.stderr[-600:])):
                    with h5py.File(os.path.join(d, f"{name}_a1.0000.hdf5"), "r") as f:
                        painted[np_] = f["Fields/" + field][...].astype(np.float64)
            return painted

        # A halo layer (ldl-fit --halo-layer, with the profile term): the pairs carry their FoF
        # catalogues; 2 ranks = 1 rank; in-situ it reads the run's own FoF catalogue, equal at 1
        # and 2 ranks; refused without a catalogue for a pair or [halos] in the run.
        trh = tr + "=" + halos
        teh = te + "=" + os.path.join(run2, "halos_a1p0000.0.hdf5")
        hfit = {}
        for np_ in (1, 2):
            dh = os.path.join(work, f"ldl_halo_np{np_}")
            r = caustic(["ldl-fit", "--train", trh, "--test", teh, "--iterations", "4", "--halo-layer",
                         "--profile-weight", "1", "-o", dh], np_)
            if check(r is not None and r.returncode == 0, f"ldl-fit --halo-layer at {np_} rank(s): " +
                     ("timeout" if r is None else r.stderr[-600:])):
                with open(os.path.join(dh, "ldl.json")) as f:
                    hfit[np_] = json.load(f)
        if 1 in hfit:
            j = hfit[1]
            check(j["loss_final"] < j["loss_initial"] and len(j["parameters"]) == 13 + 7 * 7 and
                  j["halo_layer"]["fof_min_particles"] == 20 and
                  any(abs(v) > 1e-6 for v in j["parameters"][13:]),
                  f"ldl-fit --halo-layer: loss {j['loss_initial']:.4f} -> {j['loss_final']:.4f}, "
                  "13 + 49 parameters, the layer moved, the catalogues' FoF settings recorded")
        if 1 in hfit and 2 in hfit:
            p1, p2 = np.array(hfit[1]["parameters"]), np.array(hfit[2]["parameters"])
            check(np.allclose(p1, p2, rtol=1e-6, atol=1e-9),
                  f"ldl-fit --halo-layer at 2 ranks = 1 rank (largest difference {np.abs(p1 - p2).max():.2e})")
        if 1 in hfit:
            hook_h = ('\n[emulators.gas]\nkind = "ldl"\nmodel = "' +
                      os.path.join(work, "ldl_halo_np1", "ldl.json") + '"\na = [1.0]\n')
            painted = hook_fields("hook_halo", hook_h, "gas", "gas_density", "a halo-layer LDL hook")
            if 1 in painted and 2 in painted:
                dev = np.abs(painted[1] - painted[2]).max() / np.abs(painted[1]).max()
                check(np.all(np.isfinite(painted[1])) and dev < 1e-5,
                      f"in-situ halo-layer LDL at 2 ranks = 1 rank (largest difference {dev:.1e} of the maximum)")
            d = os.path.join(work, "hook_halo_nofof")
            shutil.rmtree(d, ignore_errors=True)
            with open(os.path.join(work, "hook_halo_nofof.toml"), "w") as f:
                f.write(PARAMS.format(out=d, baryons="false").replace(
                    "[halos]\nenabled = true", "[halos]\nenabled = false") + hook_h)
            r = caustic(["run", os.path.join(work, "hook_halo_nofof.toml")], 1)
            check(r is not None and r.returncode == 2 and "[halos] enabled = true" in r.stderr and
                  not os.path.exists(d), "a halo-layer LDL hook without [halos]: refused naming it, nothing written")
        # A halo displacement (ldl-fit --halo-displacement): a matter painter of zero layers that
        # only moves the particles around the haloes; the hook at 1 and 2 ranks conserves mass.
        dd = os.path.join(work, "ldl_hdisp")
        r = caustic(["ldl-fit", "--train", trh, "--test", teh, "--field", "matter_density", "--layers", "0",
                     "--displacement-only", "--halo-displacement", "--power-weight", "10",
                     "--iterations", "3", "-o", dd], 2)
        if check(r is not None and r.returncode == 0, "ldl-fit --halo-displacement: " +
                 ("timeout" if r is None else r.stderr[-600:])):
            with open(os.path.join(dd, "ldl.json")) as f:
                jd = json.load(f)
            check(jd["halo_layer"]["kind"] == "displacement" and len(jd["parameters"]) == 3 + 49 and
                  np.allclose(jd["parameters"][:3], [1.0, 1.0, 0.0], rtol=0, atol=1e-6) and jd["loss_final"] < jd["loss_initial"] and
                  any(abs(v) > 1e-6 for v in jd["parameters"][3:]),
                  f"ldl-fit --halo-displacement: loss {jd['loss_initial']:.4f} -> {jd['loss_final']:.4f}, "
                  "the identity output kept, the displacement moved")
            hook_d = ('\n[emulators.matter]\nkind = "ldl"\nmodel = "' + os.path.join(dd, "ldl.json") +
                      '"\na = [1.0]\n')
            painted = hook_fields("hook_hdisp", hook_d, "matter", "matter_density", "a halo-displacement hook")
            if 1 in painted and 2 in painted:
                dev = np.abs(painted[1] - painted[2]).max() / np.abs(painted[1]).max()
                check(dev < 1e-5 and abs(painted[1].mean() - 1) < 1e-6,
                      f"in-situ halo displacement: 2 ranks = 1 rank ({dev:.1e}), mass conserved "
                      f"(mean {painted[1].mean():.8f})")
        r = caustic(["ldl-fit", "--train", trh, "--field", "electron_pressure", "--factor", "a.json", "--factor",
                     "b.json", "--halo-displacement", "-o", os.path.join(work, "ldl_hdisp_bad")], 1)
        check(r is not None and r.returncode == 2 and "--halo-displacement: not with --factor" in r.stderr,
              "ldl-fit --halo-displacement with --factor: refused naming it")
        r = caustic(["ldl-fit", "--train", tr, "--halo-layer", "-o", os.path.join(work, "ldl_halo_bad")], 1)
        check(r is not None and r.returncode == 2 and "SNAPSHOT=FIELDS=HALOS" in r.stderr and
              not os.path.exists(os.path.join(work, "ldl_halo_bad", "ldl.json")),
              "ldl-fit --halo-layer with a pair without its catalogue: exit 2 naming the form, nothing written")
        # A product painter (the electron pressure as gas density times temperature, ldl-fit
        # --factor): the factors fitted for 3 iterations, the product jointly for 2 from them. In
        # a run its hook's field is the record's scale times the fields of plain hooks whose
        # records hold the product's parameters cut per factor (1e-6: float32 files), at 2 ranks.
        facs = []
        for fld in ("gas_density", "gas_temperature"):
            df = os.path.join(work, "ldl_factor_" + fld)
            r = caustic(["ldl-fit", "--train", tr, "--field", fld, "--iterations", "3", "-o", df], 2)
            if check(r is not None and r.returncode == 0, f"ldl-fit of the factor {fld}: " +
                     ("timeout" if r is None else r.stderr[-600:])):
                facs.append(os.path.join(df, "ldl.json"))
        dp = os.path.join(work, "ldl_product")
        jp = None
        if len(facs) == 2:
            r = caustic(["ldl-fit", "--train", tr, "--test", te, "--field", "electron_pressure",
                         "--factor", facs[0], "--factor", facs[1], "--iterations", "2",
                         "--power-weight", "1", "-o", dp], 2)
            if check(r is not None and r.returncode == 0, "ldl-fit --factor: " +
                     ("timeout" if r is None else r.stderr[-600:])):
                with open(os.path.join(dp, "ldl.json")) as f:
                    jp = json.load(f)
                check([q["field"] for q in jp["factors"]] == ["gas_density", "gas_temperature"] and
                      jp["scale"] > 0 and len(jp["parameters"]) == 26 and jp["layers"] == 4 and
                      jp["loss_final"] < jp["loss_initial"],
                      f"product record: factors, scale, 26 parameters, loss falls ({jp['loss_initial']:.4f} -> {jp['loss_final']:.4f})")
                hooks = '\n[emulators.pe]\nkind = "ldl"\nmodel = "' + os.path.join(dp, "ldl.json") + '"\na = [1.0]\n'
                at = 0
                for q, fac in enumerate(jp["factors"]):
                    m = 5 * fac["layers"] + 3
                    cut = {k: jp[k] for k in ("kind", "mesh", "box", "a")}
                    cut.update(field=f"factor{q}", layers=fac["layers"], parameters=jp["parameters"][at:at + m])
                    at += m
                    cp = os.path.join(work, f"ldl_cut{q}.json")
                    with open(cp, "w") as f:
                        json.dump(cut, f)
                    hooks += f'\n[emulators.f{q}]\nkind = "ldl"\nmodel = "{cp}"\na = [1.0]\n'
                d = os.path.join(work, "hook_product")
                with open(os.path.join(work, "hook_product.toml"), "w") as f:
                    f.write(PARAMS.format(out=d, baryons="false").replace("seed = 11", "seed = 13") + hooks)
                r = caustic(["run", os.path.join(work, "hook_product.toml")], 2)
                if check(r is not None and r.returncode == 0, "run with the product hook: " +
                         ("timeout" if r is None else r.stderr[-600:])):
                    def painted_field(name, field):
                        with h5py.File(os.path.join(d, name + "_a1.0000.hdf5"), "r") as f:
                            return f["Fields/" + field][...].astype(np.float64)
                    pe = painted_field("pe", "electron_pressure")
                    want = jp["scale"] * painted_field("f0", "factor0") * painted_field("f1", "factor1")
                    dev = np.abs(pe - want).max() / np.abs(want).max()
                    # The files hold float32: three roundings of 6e-8.
                    check(np.abs(want).max() > 0 and dev < 1e-6,
                          f"product hook = scale x its factors' fields (largest difference {dev:.1e} of the maximum)")
            # A product continues from an earlier product (--init): with 0 iterations its
            # parameters and scale are the record's.
            r = caustic(["ldl-fit", "--train", tr, "--field", "electron_pressure", "--factor", facs[0],
                         "--factor", facs[1], "--init", dp + "/ldl.json", "--iterations", "0",
                         "-o", dp + "_init"], 1)
            if check(r is not None and r.returncode == 0, "ldl-fit --factor --init: " +
                     ("timeout" if r is None else r.stderr[-600:])) and jp is not None:
                with open(os.path.join(dp + "_init", "ldl.json")) as f:
                    ji = json.load(f)
                check(np.allclose(ji["parameters"], jp["parameters"], rtol=1e-12, atol=0) and
                      abs(ji["scale"] / jp["scale"] - 1) < 1e-9,
                      "ldl-fit --factor --init with 0 iterations keeps the product's parameters and scale")
            for args, needle, what in [
                    (["--factor", facs[0]], "--factor", "one factor"),
                    (["--factor", facs[0], "--factor", facs[1], "--condition", "baryons.log10_mc"],
                     "not allowed", "a product with --condition"),
                    (["--factor", facs[0], "--factor", dp + "/ldl.json"], "a plain LDL painter",
                     "a product as a factor"),
                    (["--factor", facs[0], "--factor", facs[1], "--init", facs[0]],
                     "not a product painter", "a product continued from a plain record")]:
                shutil.rmtree(dp + "_bad", ignore_errors=True)
                r = caustic(["ldl-fit", "--train", tr, "--field", "electron_pressure"] + args + ["-o", dp + "_bad"], 1)
                check(r is not None and r.returncode == 2 and needle in r.stderr and
                      not os.path.exists(os.path.join(dp + "_bad", "ldl.json")),
                      f"ldl-fit --factor with {what}: exit 2 naming '{needle}', nothing written (got " +
                      ("timeout" if r is None else f"{r.returncode}: {r.stderr[-300:]}") + ")")
        d = os.path.join(work, "ldl_bad")
        for args, needle, what in [
                (["--train", tr, "--test", tr], "held-out pairs must differ", "test pair = training pair"),
                (["--train", tr, "--field", "nonsense"], "Fields/nonsense", "missing field"),
                (["--train", os.path.join(run_dir, "snapshot_a0.5000.hdf5") + "=" + os.path.join(insitu, "baryon_fields.hdf5")],
                 "is not of snapshot", "field of another snapshot"),
                (["--train", tr, "--layers", "9"], "--layers = 9", "too many layers"),
                (["--train", tr, "--power-weight", "-1"], "--power-weight = -1", "a negative power weight")]:
            shutil.rmtree(d, ignore_errors=True)
            r = caustic(["ldl-fit"] + args + ["-o", d], 2)
            check(r is not None and r.returncode == 2 and needle in r.stderr,
                  f"ldl-fit with {what}: exit 2 naming '{needle}' (got " +
                  ("timeout" if r is None else f"{r.returncode}: {r.stderr[-300:]}") + ")")
            check(not os.path.exists(os.path.join(d, "ldl.json")), f"ldl-fit with {what}: nothing written")

    # Bad input: exit 2, the setting named, nothing written.
    def refused(args, needle, what, np_=2):
        d = os.path.join(work, "refused")
        shutil.rmtree(d, ignore_errors=True)
        r = caustic(args + ["-o", d], np_)
        check(r is not None and r.returncode == 2 and needle in r.stderr,
              f"{what}: exit 2 naming '{needle}' (got " + ("timeout" if r is None else f"{r.returncode}: {r.stderr[-400:]}") + ")")
        check(not os.path.exists(d), f"{what}: nothing written")

    refused(["baryonify", snap, halos, "--set", "baryons.delta=2.5"], "baryons.delta = 2.5", "delta below 3")
    refused(["baryonify", snap, halos, "--set", "baryons.log10_mc=abc"], "baryons.log10_mc", "non-number")
    refused(["baryonify", snap, halos, "--set", "baryons.nonsense=1"], "nonsense", "unknown key")
    refused(["baryonify", snap, os.path.join(run_dir, "halos_a0p5000.0.hdf5")], "is not of snapshot",
            "catalogue of another time")
    refused(["baryonify", snap, os.path.join(run_dir, "missing.hdf5")], "missing.hdf5", "missing catalogue")
    for name, text, needle in [
            ("no halos", PARAMS.replace("[halos]\nenabled = true", "[halos]\nenabled = false"), "halos.enabled"),
            ("a without FoF", PARAMS.replace("[baryons]\nenabled = {baryons}\na = [1.0]",
                                             "[baryons]\nenabled = {baryons}\na = [0.75]"), "baryons.a = 0.75")]:
        d = os.path.join(work, "bad_run")
        shutil.rmtree(d, ignore_errors=True)
        with open(os.path.join(work, "bad.toml"), "w") as f:
            f.write(text.format(out=d, baryons="true"))
        r = caustic(["run", os.path.join(work, "bad.toml")], 1)
        check(r is not None and r.returncode == 2 and needle in r.stderr,
              f"run with [baryons] and {name}: exit 2 naming '{needle}' (got " +
              ("timeout" if r is None else f"{r.returncode}: {r.stderr[-300:]}") + ")")
        check(not os.path.exists(d), f"run with [baryons] and {name}: nothing written")
    # A catalogue without groups (FoF finds none above the threshold): written and read, and the
    # snapshot baryonified unchanged (S = 1 exactly).
    empty = os.path.join(work, "empty_halos.0.hdf5")
    r = caustic(["fof", snap, "--min-particles", "1000000", "-o", empty], 2)
    if check(r is not None and r.returncode == 0, "fof writes a catalogue without groups: " +
             ("timeout" if r is None else r.stderr[-300:])):
        with h5py.File(empty, "r") as f:
            check(int(f["Header"].attrs["Ngroups_Total"]) == 0 and f["Group/GroupLen"].shape == (0,),
                  "the empty catalogue has Ngroups_Total = 0 and empty datasets")
        d = os.path.join(work, "bcm_empty")
        r = caustic(["baryonify", snap, empty, "-o", d], 2)
        if check(r is not None and r.returncode == 0, "baryonify with no haloes: " +
                 ("timeout" if r is None else r.stderr[-300:])):
            te = np.loadtxt(os.path.join(d, "suppression.txt"))
            check(np.all(te[:, 1] == 1.0), "no haloes: S(k) = 1 exactly")

    # A snapshot of another code: no /Parameters, no OmegaBaryon.
    foreign = os.path.join(work, "foreign.hdf5")
    shutil.copy(snap, foreign)
    with h5py.File(foreign, "a") as f:
        del f["Parameters"]
        del f["Header"].attrs["OmegaBaryon"]
    refused(["baryonify", foreign, halos], "cosmology.Omega_b", "foreign snapshot without Omega_b")
    d = os.path.join(work, "foreign_out")
    r = caustic(["baryonify", foreign, halos, "-o", d, "--set", "cosmology.Omega_b=0.049", "--set",
                 "cosmology.n_s=0.96", "--set", "cosmology.sigma8=0.8"], 2)
    ok = check(r is not None and r.returncode == 0, "foreign snapshot with --set cosmology: " +
               ("timeout" if r is None else r.stderr[-400:]))
    if ok:
        tf = np.loadtxt(os.path.join(d, "suppression.txt"))
        check(np.abs(tf[:, 1] - 1).max() > 1e-3, "foreign snapshot baryonified")
    r = caustic(["baryonify", snap, halos, "-o", d1], 1)
    check(r is not None and r.returncode == 2 and "--overwrite" in r.stderr,
          "existing outputs refused without --overwrite")
    check.finish()


if __name__ == "__main__":
    main()
