#!/usr/bin/env python3
"""Caustic's snapshots and FoF halo catalogues read by yt (4.1.4, Debian's python3-yt) with no
arguments, checked against what h5py reads from the same files and against the parameter file.

A 2-rank run (32^3 particles in 64 Mpc/h, snapshots and in-situ halo catalogues at a = 0.5 and 1,
member IDs on), then `caustic fof` on the final snapshot. With yt:

snapshots  the reader that takes the file's units (OWLS layout: /Units, /Constants); box 64
           Mpccm/h (64 a Mpc/h physical), redshift, Omega_m, Omega_Lambda, h, the time (Time_GYR
           against yt's own cosmology), particle count, positions and IDs, peculiar velocities
           (sqrt(a) times the stored ones), particle mass in 1e10 Msun/h and total mass Omega_m
           rho_crit L^3 with yt's rho_crit; a particle projection saved as a PNG, finite and
           positive everywhere, summing to the total mass (yt 4.1.4's equivalent of
           ProjectionPlot(ds, "z", ("deposit", "all_density")), which it cannot make for particle
           data: its projection pixelizer handles only SPH fields of particle datasets and raises
           NotImplementedError for a deposit field, with Gadget's reader as well); the deposited
           all_density on a 16^3 grid (ds.arbitrary_grid): mean Omega_m rho_crit.
halos      the catalogue under its default name (halos_a1p0000.0.hdf5: the Gadget group-file
           form, since yt reads the data from "<name up to its first dot>.0.hdf5") is a
           GadgetFOFDataset with the file's cosmology, box and halo count; count, positions
           in Mpccm/h and masses equal to the file's (and the masses GroupLen times the snapshot's
           particle mass in yt), peculiar velocities, member IDs of two halos (against /IDs/ID
           and GroupMinID) whose centre of mass in the snapshot is the halo's position; the
           mass-function table (Msun/h) sums to the yt masses. The `caustic fof` catalogue, written under a
           yt-ready name, agrees with the in-situ one.
"""
import argparse
import os
import shlex
import shutil
import sys
import time
import traceback

import h5py
import numpy as np

from e2e import COSMOLOGY, Checks, run

BOX, NP, MESH, MIN_PARTICLES = 64.0, 32, 64, 10
OMEGA_M, HUBBLE = 0.3, 0.7  # tests/data/cosmology.toml
PARAMS = COSMOLOGY + """
[simulation]
box = {box}
particles = {np}
mesh = {mesh}
a_start = 0.05
a_end = 1.0
steps = 10
seed = 7

[output]
directory = "{out}"
a = [0.5, 1.0]
power_spectrum = false

[halos]
enabled = true
min_particles = {minp}
member_ids = true
a = [0.5, 1.0]
"""

check = Checks()


def close(x, y, rtol, what, atol=0.0):
    """check(x == y within rtol (relative to y) + atol), printing both when they differ."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    ok = x.shape == y.shape and np.allclose(x, y, rtol=rtol, atol=atol)
    if not ok:
        err = np.max(np.abs(x - y)) if x.shape == y.shape and x.size else "shape"
        print("  %s: yt %s, expected %s (max difference %s)" % (what, x.ravel()[:4], y.ravel()[:4], err))
    return check(ok, what)


def check_snapshot(yt, path, a, work):
    tag = "snapshot a = %g: " % a
    with h5py.File(path, "r") as f:
        h = f["Header"].attrs
        box, n_file = float(h["BoxSize"]), int(h["NumPart_Total"][1])
        mp = float(h["MassTable"][1])
        z_file = float(h["Redshift"])
        pos = f["PartType1/Coordinates"][...].astype(np.float64)
        vel = f["PartType1/Velocities"][...].astype(np.float64)
        ids = f["PartType1/ParticleIDs"][...]
    check(box == BOX and n_file == NP**3, tag + "header BoxSize %g, NumPart_Total %d" % (box, n_file))
    ds = yt.load(path)
    print(tag + "yt reader %s" % type(ds).__name__, flush=True)
    close(ds.domain_width.to("Mpccm/h").d, [BOX] * 3, 1e-5, tag + "domain_width in Mpccm/h")
    close(ds.domain_width.to("Mpc/h").d, [BOX * a] * 3, 1e-5, tag + "domain_width in physical Mpc/h")
    close(ds.domain_left_edge.to("Mpccm/h").d, [0.0] * 3, 0, tag + "domain_left_edge", atol=1e-12)
    check(ds.cosmological_simulation == 1, tag + "not a cosmological simulation")
    close(ds.current_redshift, 1 / a - 1, 1e-9, tag + "current_redshift against a")
    close(ds.current_redshift, z_file, 1e-12, tag + "current_redshift against the header")
    close(ds.omega_matter, OMEGA_M, 1e-12, tag + "omega_matter")
    close(ds.omega_lambda, 1 - OMEGA_M, 1e-12, tag + "omega_lambda")
    close(ds.hubble_constant, HUBBLE, 1e-12, tag + "hubble_constant")
    from yt.utilities.cosmology import Cosmology
    cosmo = Cosmology(hubble_constant=HUBBLE, omega_matter=OMEGA_M, omega_lambda=1 - OMEGA_M)
    close(ds.current_time.to("Gyr").d, cosmo.t_from_z(1 / a - 1).to("Gyr").d, 1e-4,
          tag + "current_time against yt's cosmology")

    ad = ds.all_data()
    yid = ad["PartType1", "particle_index"].d.astype(np.int64)
    check(yid.size == NP**3 and ds.particle_type_counts.get("PartType1") == NP**3,
          tag + "yt particle count %d (expected %d)" % (yid.size, NP**3))
    order, forder = np.argsort(yid), np.argsort(ids)
    check(np.array_equal(yid[order], ids[forder].astype(np.int64)), tag + "particle IDs")
    ypos = ad["PartType1", "particle_position"].to("Mpccm/h").d[order]
    check(np.allclose(ypos, pos[forder], rtol=0, atol=1e-5 * BOX), tag + "positions in Mpccm/h")
    # Peculiar velocities: the stored Gadget velocities are v_pec / sqrt(a).
    yvel = ad["PartType1", "particle_velocity"].to("km/s").d[order]
    check(np.allclose(yvel, vel[forder] * np.sqrt(a), rtol=1e-5, atol=1e-4),
          tag + "peculiar velocities in km/s")
    ymass = ad["PartType1", "particle_mass"].to("Msun/h")
    close(ymass.d, np.full(NP**3, mp * 1e10), 1e-5, tag + "particle mass (MassTable in 1e10 Msun/h)")
    # Total mass: Omega_m rho_crit(z = 0) (64 Mpc/h)^3 with yt's critical density.
    volume = ds.quan(BOX, "Mpc/h").to("cm") ** 3
    rho_crit = ds.cosmology.critical_density(0)
    close(ymass.sum().d, (OMEGA_M * rho_crit * volume).to("Msun/h").d, 2e-4,
          tag + "total mass Omega_m rho_crit L^3")

    # Projection of the particle mass (ProjectionPlot of a deposit field is not implemented for
    # particle datasets in yt 4.1.4). Nearest-grid-point deposition keeps all the mass in the image (CIC loses what falls past its
    # edges); 32^2 pixels of 2 Mpc/h leave no column empty (an empty pixel would be NaN).
    p = yt.ParticleProjectionPlot(ds, "z", ("all", "particle_mass"), deposition="ngp",
                                  axes_unit="Mpccm/h")
    p.set_buff_size(32)
    p.set_unit(("all", "particle_mass"), "Msun/h")
    png = os.path.join(work, "projection_a%.4f.png" % a)
    p.save(png)
    img = p.frb["all", "particle_mass"].to("Msun/h").d
    check(os.path.getsize(png) > 10000, tag + "projection PNG %s" % png)
    check(img.shape == (32, 32) and np.all(np.isfinite(img)) and np.all(img > 0),
          tag + "projection: %d non-finite, %d non-positive pixels" %
          (np.sum(~np.isfinite(img)), np.sum(~(img > 0))))
    close(np.nansum(img), ymass.sum().d, 1e-6, tag + "projection sums to the total mass")
    grid = ds.arbitrary_grid([0.0] * 3, [box] * 3, dims=[16] * 3)
    rho = grid["deposit", "all_density"].to("Msun*h**2/Mpccm**3").d
    close(rho.mean(), mp * 1e10 * NP**3 / box**3, 2e-2, tag + "deposit all_density mean")
    return float(ymass[0].d), yid[order], ypos


def check_halos(yt, out, a, snap, work):
    mp_yt, snap_ids, snap_pos = snap
    tag = "halos a = %g: " % a
    path = os.path.join(out, "halos_a%s.0.hdf5" % ("%.4f" % a).replace(".", "p"))
    with h5py.File(path, "r") as f:
        h = f["Header"].attrs
        ng = int(h["Ngroups_Total"])
        glen = f["Group/GroupLen"][...]
        gmass = f["Group/GroupMass"][...].astype(np.float64)
        gpos = f["Group/GroupPos"][...].astype(np.float64)
        gvel = f["Group/GroupVel"][...].astype(np.float64)
        goff = f["Group/GroupOffset"][...]
        gmin = f["Group/GroupMinID"][...]
        mids = f["IDs/ID"][...]
        mp_file = float(h["ParticleMass"])
    check(ng > 0 and ng == glen.size, tag + "%d groups in the file (%d rows)" % (ng, glen.size))
    ds = yt.load(path)  # the default name: the reader and its metadata
    check(type(ds).__name__ == "GadgetFOFDataset", tag + "yt reader %s" % type(ds).__name__)
    close(ds.domain_width.to("Mpccm/h").d, [BOX] * 3, 1e-9, tag + "domain_width in Mpccm/h")
    close(ds.current_redshift, 1 / a - 1, 1e-9, tag + "current_redshift")
    close([ds.omega_matter, ds.omega_lambda, ds.hubble_constant], [OMEGA_M, 1 - OMEGA_M, HUBBLE],
          1e-12, tag + "cosmology")
    check(int(ds.parameters["Ngroups_Total"]) == ng, tag + "yt's Ngroups_Total")
    ad = ds.all_data()
    yn = ad["Group", "particle_identifier"].size
    check(yn == ng and ds.index.particle_count["Group"] == ng, tag + "yt counts %d halos, file %d" % (yn, ng))
    if yn != ng:
        return
    close(ad["Group", "particle_position"].to("Mpccm/h").d, gpos, 1e-6, tag + "GroupPos in Mpccm/h")
    ymass = ad["Group", "particle_mass"].to("Msun/h").d
    close(ymass, gmass * 1e10, 1e-6, tag + "GroupMass in Msun/h")
    close(ymass, glen * mp_yt, 1e-5, tag + "GroupMass = GroupLen x the snapshot's particle mass in yt")
    close(mp_yt, mp_file * 1e10, 1e-5, tag + "ParticleMass in the header")
    close(ad["Group", "particle_number"].d, glen, 0, tag + "GroupLen")
    close(ad["Group", "particle_velocity"].to("km/s").d, gvel * np.sqrt(a), 1e-5,
          tag + "peculiar velocities in km/s")
    ypos = ad["Group", "particle_position"].to("Mpccm/h").d
    for g in (0, ng - 1):
        halo = ds.halo("Group", g)
        got = np.sort(halo["Group", "member_ids"].d.astype(np.int64))
        want = np.sort(mids[goff[g]:goff[g] + glen[g]].astype(np.int64))
        check(np.array_equal(got, want) and got[0] == gmin[g], tag + "member IDs of halo %d" % g)
        # The members' centre of mass in the snapshot (as yt reads it) is the halo's position.
        p = snap_pos[np.searchsorted(snap_ids, got)]
        d = (p - p[0] + BOX / 2) % BOX - BOX / 2
        com = (p[0] + d.mean(axis=0)) % BOX
        dc = (com - ypos[g] + BOX / 2) % BOX - BOX / 2
        check(np.all(np.abs(dc) < 1e-3), tag + "halo %d at %s Mpccm/h, its members' centre %s" %
              (g, ypos[g], com))
    mf = np.loadtxt(os.path.join(out, "mass_function_a%.4f.txt" % a), ndmin=2)
    check(mf[:, 4].sum() == ng, tag + "mass function counts %d groups" % mf[:, 4].sum())
    close((mf[:, 1] * mf[:, 4]).sum(), ymass.sum(), 1e-5, tag + "mass function M_mean [Msun/h]")
    return gpos


def guarded(fn, *args):
    """fn(*args); an exception is a failed check (yt refusing or misreading a file)."""
    try:
        return fn(*args)
    except Exception as e:
        traceback.print_exc()
        check(False, "%s: %s: %s" % (fn.__name__, type(e).__name__, e))
        return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--caustic", required=True)
    ap.add_argument("--mpiexec", default="mpiexec")
    ap.add_argument("--work", required=True)
    ap.add_argument("--np", type=int, default=2)
    args = ap.parse_args()
    t0 = time.time()
    try:
        import yt
    except ImportError as e:
        # scripts/setup.sh installs python3-yt: its absence is a failed setup, not a skip.
        print("FAIL: yt is not installed (%s); run scripts/setup.sh" % e)
        sys.exit(1)
    yt.set_log_level(40)
    print("yt %s" % yt.__version__, flush=True)

    work = os.path.abspath(args.work)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    out = os.path.join(work, "out")
    pfile = os.path.join(work, "run.toml")
    with open(pfile, "w") as f:
        f.write(PARAMS.format(box=BOX, np=NP, mesh=MESH, out=out, minp=MIN_PARTICLES))
    mpi = shlex.split(args.mpiexec) + ["-n", str(args.np)]
    r = run(mpi + [args.caustic, "run", pfile])
    if not check(r.returncode == 0, "caustic run failed:\n" + r.stdout + r.stderr):
        check.finish()

    res = None
    for a in (0.5, 1.0):
        snap = guarded(check_snapshot, yt, os.path.join(out, "snapshot_a%.4f.hdf5" % a), a, work)
        if snap is not None:
            res = guarded(check_halos, yt, out, a, snap, work)

    # `caustic fof` on the final snapshot, under its default name (halos_snapshot_a1p0000.0.hdf5
    # beside the snapshot): its header cosmology comes from the snapshot's.
    fof = os.path.join(out, "halos_snapshot_a1p0000.0.hdf5")
    r = run(mpi + [args.caustic, "fof", os.path.join(out, "snapshot_a1.0000.hdf5"),
                   "--min-particles", str(MIN_PARTICLES)])
    ok = check(r.returncode == 0, "caustic fof failed:\n" + r.stdout + r.stderr)
    ds = guarded(yt.load, fof) if ok else None
    if ds is not None:
        check(type(ds).__name__ == "GadgetFOFDataset", "caustic fof: yt reader %s" % type(ds).__name__)
        close([ds.omega_matter, ds.hubble_constant, ds.current_redshift], [OMEGA_M, HUBBLE, 0.0], 1e-9,
              "caustic fof: cosmology from the snapshot")
        if res is not None:
            pos = ds.all_data()["Group", "particle_position"].to("Mpccm/h").d
            check(pos.shape == res.shape and np.allclose(pos, res, atol=1e-4),
                  "caustic fof: halos differ from the in-situ catalogue")
    print("%.1f s" % (time.time() - t0))
    check.finish()


if __name__ == "__main__":
    main()
