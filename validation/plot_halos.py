#!/usr/bin/env python3
"""Halo-surrogate validation figures and table (validation/halos.sh).

    plot_halos.py OUT MESH SEED [SEED ...] [--calibrate-on SEED,SEED,...] [--groups]
                  [--measure-mesh M] [--prefix P] [--choose FILE | --recommend FILE]

For every held-out seed and both redshifts, against the truth's halos above the n = 1e-3 mass
(halo_fields_a*.hdf5 of truth_SEED) and side by side with FoF on the cheap run itself (its most
massive groups, as many as the truth has: abundance matching) and, with --calibrate-on, with
the cheap run's FoF groups whose masses are mapped to the truth's by abundance matching on those
(training) seeds (`calibrated_masses`: the mass a surrogate has to beat without moving a halo):
  - the halo-mass field (mass per cell on the surrogate's MESH^3): cross-correlation r(k) with the truth's, and the
    error power P_err = P_tt (1 - r^2) (the truth's power not explained by the prediction after
    the best scaling) in units of the Poisson 1/n; for the surrogate both its expected field
    (presence x mass, from the in-situ output) and its sampled catalogue, and for the per-group
    surrogate the expected field of its candidates (every cheap group at its centre with
    weight E[M 1(M >= M_min)], NAME_candidates_a*.hdf5);
  - the error power paired with FoF on the cheap run's in the same box: per seed, the mean over
    k <= 0.3 of P_err relative to FoF's, then the mean and standard error over seeds (the boxes'
    own scatter, which moves both alike, cancels);
  - the mass function above 100 particles (0.2 dex bins, summed over seeds), the worst bin among
    those with at least 100 truth groups (Poisson error <= 10%) and among all shown (>= 20);
  - the halo P(k) of the catalogues (number density, shot noise subtracted) relative to the truth,
    mean over seeds, the worst bin to k = 0.5 h/Mpc with the standard error of that mean;
  - the cost: wall time of the cheap run + surrogate against the truth run (FoF included, the
    power-spectrum outputs excluded) from the run summaries.
With --choose (on selection seeds, not the held-out ones) it picks per redshift the per-group
record whose expected field has the lowest paired error power and the one whose catalogue has the
lowest of the P(k) and mass-function worst bins, and writes them to FILE; with --recommend FILE
(on the held-out seeds) it tables those records against FoF on the cheap run with the issue's
targets, so what is recommended was not chosen on the seeds that measure it.
Writes OUT/P_validation.txt, OUT/P_rk.png, OUT/P_mf.png, OUT/P_pk.png (P: --prefix, "halo").
"""
import json
import sys

import h5py
import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

N = 64  # set from the command line


def catalogue(path):
    with h5py.File(path, "r") as f:
        h = dict(f["Header"].attrs)
        return (f["Group/GroupPos"][:], f["Group/GroupMass"][:] * 1e10, f["Group/GroupLen"][:],
                float(h["BoxSize"]), float(h["ParticleMass"]) * 1e10)


def ngp(pos, weight, box):
    idx = np.rint(pos / (box / N)).astype(np.int64) % N
    flat = (idx[:, 0] * N + idx[:, 1]) * N + idx[:, 2]
    return np.bincount(flat, weights=weight, minlength=N**3).reshape(N, N, N)


def fields(pos, mass, box):
    """A catalogue's halo-mass and halo-number fields on the mesh."""
    return ngp(pos, mass, box), ngp(pos, np.ones(len(mass)), box)


def spectra(a, b, box):
    """Auto and cross power of the overdensities of a and b in shells of the fundamental."""
    fa = np.fft.rfftn(a / a.mean() - 1.0)
    fb = np.fft.rfftn(b / b.mean() - 1.0)
    kf = 2 * np.pi / box
    kx = np.fft.fftfreq(N, 1.0 / N)
    kz = np.fft.rfftfreq(N, 1.0 / N)
    kk = np.sqrt(kx[:, None, None] ** 2 + kx[None, :, None] ** 2 + kz[None, None, :] ** 2)
    w = np.full(kk.shape, 2.0)
    w[..., 0] = 1.0
    w[..., -1] = 1.0
    shell = np.rint(kk).astype(int)
    nb = N // 2
    def bin_(x):
        return np.bincount(shell.ravel(), weights=(w * x).ravel(), minlength=nb + 1)[1:nb]
    cnt = bin_(np.ones_like(kk))
    vol = box**3
    paa = bin_(np.abs(fa) ** 2) / cnt * vol / N**6
    pbb = bin_(np.abs(fb) ** 2) / cnt * vol / N**6
    pab = bin_((fa * np.conj(fb)).real) / cnt * vol / N**6
    k = kf * bin_(kk) / cnt
    return k, paa, pbb, pab


def calibrated_masses(out, a, seeds):
    """The map ln M_cheap -> ln M_truth that abundance-matches the cheap run's FoF groups to the
    truth's at scale factor a: the i-th most massive group of each side, ln M averaged over the
    seeds (the same volume each), interpolated (monotone) in ln M_cheap."""
    tag = a.replace(".", "p")
    cheap, truth = [], []
    for s in seeds:
        cheap.append(np.sort(catalogue(f"{out}/cheap_{s}/halos_a{tag}.0.hdf5")[1])[::-1])
        truth.append(np.sort(catalogue(f"{out}/truth_{s}/halos_a{tag}.0.hdf5")[1])[::-1])
    rank = min(len(x) for x in cheap + truth)
    lc = np.mean([np.log(x[:rank]) for x in cheap], axis=0)[::-1]
    lt = np.mean([np.log(x[:rank]) for x in truth], axis=0)[::-1]
    return lambda m: np.exp(np.interp(np.log(m), lc, lt))


def choose_records(summary, groups, seeds, meshes, path):
    """On selection seeds (not the held-out ones): per redshift, the per-group surrogate whose
    expected field has the lowest error power paired with FoF's (mean over the meshes), and the one
    whose catalogue has the lowest of max(halo P(k) worst bin on the finest mesh, mass-function
    worst bin). Written to `path` (JSON) for --recommend; returns the table's lines."""
    choice, lines = {}, []
    for a, figs in summary.items():
        z = 1.0 / float(a) - 1.0
        field = {f"{n} (expected field)": np.mean([figs[(m, f"{n} (expected field)")]["paired"]
                                                   for m in meshes])
                 for n, (_, _, shown) in groups.items() if shown}
        cat = {n: max(figs[(meshes[-1], n)]["pk"], figs["mf"][n]) for n in groups}
        best_f, best_c = min(field, key=field.get), min(cat, key=cat.get)
        choice[a] = {"field": best_f, "catalogue": best_c, "seeds": seeds}
        lines.append(f"\n## Choice at z = {z:.0f} on seeds {' '.join(map(str, seeds))}")
        lines.append("expected field, paired error power (mean over meshes): " + ", ".join(
            f"{n} {v * 100:+.1f}%" for n, v in sorted(field.items(), key=lambda x: x[1])))
        lines.append("catalogue, max(P(k) worst bin, mass-function worst bin): " + ", ".join(
            f"{n} {v * 100:.1f}%" for n, v in sorted(cat.items(), key=lambda x: x[1])))
        lines.append(f"chosen: field `{best_f}`, catalogue `{best_c}`")
    json.dump(choice, open(path, "w"), indent=1)
    return lines


def recommended_table(summary, choice, meshes):
    """The records a choice file names (chosen on other seeds) against FoF on the cheap run, with
    the issue's targets, on this run's seeds."""
    lines = ["\n## The chosen records on these seeds (chosen on seeds " +
             " ".join(map(str, next(iter(choice.values()))["seeds"])) + ") against FoF on the cheap run",
             "| z | product | prediction | r(k<=0.5) min | r(0.7) | r - FoF's r, mean over k<=0.5, "
             "paired | P_err n, k<=0.3 max | P_err / FoF's - 1, paired | halo P(k) worst bin | "
             "rms of P(k)/truth - 1 minus FoF's, paired | mass function worst bin |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    def both(figs, name, key, fmt):
        return " / ".join(fmt(figs[(m, name)][key]) for m in meshes)
    verdict = []
    for a, c in choice.items():
        figs, z = summary[a], 1.0 / float(a) - 1.0
        f, k, fof = c["field"], c["catalogue"], "cheap FoF"
        last = meshes[-1]
        for product, name in (("field", f), ("catalogue", k), ("both", fof)):
            row = (f"| {z:.0f} | {product} | {name} | {both(figs, name, 'r', '{:.3f}'.format)} | "
                   f"{both(figs, name, 'r07', '{:.3f}'.format)} | ")
            row += ("" if name == fof else " / ".join(
                f"{figs[(m, name)]['dr']:+.4f} ± {figs[(m, name)]['dr_se']:.4f}" for m in meshes))
            row += f" | {both(figs, name, 'err', '{:.3f}'.format)} | "
            row += ("" if name == fof else " / ".join(
                f"{figs[(m, name)]['paired'] * 100:+.1f}% ± {figs[(m, name)]['paired_se'] * 100:.1f}%"
                for m in meshes)) + " | "
            if product != "field":
                g = figs[(last, name)]
                row += f"{g['pk'] * 100:.1f}% ± {g['pk_se'] * 100:.1f}% | "
                row += ("" if name == fof else f"{g['pk_rms_paired'] * 100:+.2f} ± "
                        f"{g['pk_rms_paired_se'] * 100:.2f} points") + " | "
                row += f"{figs['mf'][name] * 100:.1f}% |"
            else:
                row += " | | |"
            lines.append(row)
        # The targets, and whether the chosen records beat FoF in each figure.
        checks = []
        for m in meshes:
            checks += [(f"r(k<=0.5) >= 0.95 ({m}^3)", figs[(m, f)]["r"] >= 0.95,
                        figs[(m, f)]["r"] > figs[(m, fof)]["r"]),
                       (f"r(0.7) >= 0.9 ({m}^3)", figs[(m, f)]["r07"] >= 0.9,
                        figs[(m, f)]["r07"] > figs[(m, fof)]["r07"]),
                       (f"P_err < 1/n ({m}^3)", figs[(m, f)]["err"] < 1,
                        figs[(m, f)]["paired"] < 0)]
        checks += [("halo P(k) within 10%", figs[(last, k)]["pk"] <= 0.1,
                    figs[(last, k)]["pk"] < figs[(last, fof)]["pk"]),
                   ("mass function within 10%", figs["mf"][k] <= 0.1, figs["mf"][k] < figs["mf"][fof])]
        verdict.append(f"z = {z:.0f}: " + "; ".join(
            f"{n}: {'met' if ok else 'NOT met'}, {'beats' if win else 'does NOT beat'} FoF"
            for n, ok, win in checks))
    return lines + [""] + verdict


def pop_option(args, name):
    """The value after `name` in args, both removed; None when absent."""
    if name not in args:
        return None
    i = args.index(name)
    value = args[i + 1]
    del args[i:i + 2]
    return value


def main():
    global N
    args = sys.argv[1:]
    measure = pop_option(args, "--measure-mesh")  # catalogues also painted on this finer mesh
    prefix = pop_option(args, "--prefix") or "halo"  # OUT/PREFIX_validation.txt, PREFIX_rk.png
    choose = pop_option(args, "--choose")  # write the records chosen per redshift and product
    recommend = pop_option(args, "--recommend")  # table the records a --choose file names
    recommend = json.load(open(recommend)) if recommend else None
    calibrate = pop_option(args, "--calibrate-on")
    calibrate = [int(s) for s in calibrate.split(",")] if calibrate else []
    groups = {}
    if "--groups" in args:  # the per-group surrogate's held-out runs (validation/halos.sh)
        args.remove("--groups")
        names = {"halos_z1": "groups_z1", "halos_z0": "groups_z0"}
        # name: (run directory prefix, hooks, whether its candidates' expected field is shown: the
        # "top" and "sampled" runs have the same candidates as the threshold run)
        groups = {"group surrogate": ("heldout_groups", names, True),
                  "group surrogate (top)": ("heldout_groups_top", names, False),
                  "group surrogate (sampled)": ("heldout_groups_sample", names, False),
                  "group surrogate, no position correction": ("heldout_groups_nopos", names, True),
                  "group surrogate, assigned mass target": ("heldout_groups_assigned", names, True),
                  "group surrogate, assigned, field loss": ("heldout_groups_field", names, True)}
    out = args[0]
    N = int(args[1])
    meshes = [N] + ([int(measure)] if measure else [])
    seeds = [int(s) for s in args[2:]]
    thresholds = {}
    for line in open(f"{out}/thresholds.txt"):
        if not line.startswith("#"):
            a, n = line.split()
            thresholds[a] = int(n)
    hooks = {"0.5000": "halos_z1", "1.0000": "halos_z0"}
    def setup(path):  # (particles, box, mesh, steps) from a catalogue's /Parameters
        with h5py.File(path, "r") as f:
            p = f["Parameters"].attrs
            return tuple(p[f"simulation.{k}"] for k in ("particles", "box", "mesh", "steps"))
    tsim = setup(f"{out}/truth_{seeds[0]}/halos_a1p0000.0.hdf5")
    csim = setup(f"{out}/cheap_{seeds[0]}/halos_a1p0000.0.hdf5")
    summary = {}  # a -> {(mesh, name): figures}, and a -> {"mf": {name: worst bin}}
    lines = ["# Halo surrogate, seeds " + " ".join(map(str, seeds)) +
             f" ({tsim[0]}^3 particles, {tsim[1]:g} Mpc/h; truth: {tsim[2]}^3 mesh, {tsim[3]} steps;"
             f" cheap: {csim[2]}^3, {csim[3]} steps)"]
    fig_r, ax_r = plt.subplots(2, 2, figsize=(12, 11), sharex=True)
    for ax in ax_r.flat:  # up to 25 curves per panel
        ax.set_prop_cycle(color=plt.cm.tab20.colors)
    fig_m, ax_m = plt.subplots(1, 2, figsize=(11, 4.5))
    fig_p, ax_p = plt.subplots(1, 2, figsize=(11, 4.5))
    for col, (a, hook) in enumerate(hooks.items()):
        z = 1.0 / float(a) - 1.0
        acc = {}
        mf = {"truth": [], "surrogate": [], "surrogate (top)": [], "cheap FoF": []}
        remap = calibrated_masses(out, a, calibrate) if calibrate else None
        if remap:
            mf["cheap FoF, calibrated masses"] = []
        for s in seeds:
            tp, tm, tl, box, mp = catalogue(f"{out}/truth_{s}/halos_a{a.replace('.', 'p')}.0.hdf5")
            keep = tl >= thresholds[a]
            tp, tm = tp[keep], tm[keep]
            nt = len(tm)
            tag = a.replace('.', 'p')
            sp, sm, _, _, _ = catalogue(f"{out}/heldout_{s}/{hook}_a{tag}.0.hdf5")
            cp, cm, _, _, _ = catalogue(f"{out}/heldout_{s}/halos_a{tag}.0.hdf5")
            if remap:  # every group whose calibrated mass reaches the truth's threshold
                qm = remap(cm)
                above = qm >= thresholds[a] * mp
                qp, qm = cp[above], qm[above]
            top = np.argsort(cm)[::-1][:nt]
            cp, cm = cp[top], cm[top]
            with h5py.File(f"{out}/heldout_{s}/{hook}_a{a}.hdf5", "r") as f:
                expected = f["Fields/halo_mass_density"][:].astype(np.float64)
            # The same surrogate with selection = "top" (the most probable voxels).
            xp, xm, _, _, _ = catalogue(f"{out}/heldout_top_{s}/{hook}_a{tag}.0.hdf5")
            cats = {"surrogate (sampled)": (sp, sm), "surrogate (top)": (xp, xm),
                    "cheap FoF": (cp, cm)}
            if remap:
                cats["cheap FoF, calibrated masses"] = (qp, qm)
                mf["cheap FoF, calibrated masses"].append(qm)
            for name, (gdir, ghook, _) in groups.items():
                gp, gm, _, _, _ = catalogue(f"{out}/{gdir}_{s}/{ghook[hook]}_a{tag}.0.hdf5")
                cats[name] = (gp, gm)
                mf.setdefault(name, []).append(gm)
            expected_groups = {}
            for name, (gdir, ghook, shown) in groups.items():
                if not shown:
                    continue
                # every candidate group weighted by its expected halo mass
                with h5py.File(f"{out}/{gdir}_{s}/{ghook[hook]}_candidates_a{a}.hdf5", "r") as f:
                    expected_groups[name + " (expected field)"] = (
                        f["Candidates/Pos"][:], f["Candidates/ExpectedMass"][:] * 1e10)
            n = nt / box**3
            for mesh in meshes:
                N = mesh
                truth_m = ngp(tp, tm, box)
                truth_n = ngp(tp, np.ones(nt), box)
                preds = {name: fields(pp, mm, box) for name, (pp, mm) in cats.items()}
                for name, (gp, gw) in expected_groups.items():
                    preds[name] = (ngp(gp, gw, box), None)
                if mesh == meshes[0]:  # the voxel surrogate's own field lives on its mesh
                    preds = {"surrogate (expected field)": (expected, None), **preds}
                for name, (fm, fn) in preds.items():
                    k, ptt, ppp, ptp = spectra(truth_m, fm, box)
                    r = ptp / np.sqrt(ptt * ppp)
                    e = acc.setdefault((mesh, name), {"r": [], "err": [], "pk": [], "n": []})
                    e["k"] = k
                    e["r"].append(r)
                    e["err"].append(ptt * (1 - r**2) * n)
                    if fn is not None:
                        _, pt_n, pp_n, _ = spectra(truth_n, fn, box)
                        npred = fn.sum() / box**3
                        e["pk"].append((pp_n - 1 / npred) / (pt_n - 1 / n))
                        e["n"].append(npred / n)
            N = meshes[0]
            mf["truth"].append(tm)
            mf["surrogate"].append(sm)
            mf["surrogate (top)"].append(xm)
            mf["cheap FoF"].append(cm)
        lines.append(f"\n## z = {z:.1f} (a = {a}): truth halos >= {thresholds[a]} particles "
                     f"(n = 1e-3 (h/Mpc)^3), mean over seeds")
        lines.append("| mesh | prediction | r(k<=0.5) min | r(0.7) | P_err n, k<=0.3 max | P_err / cheap FoF's - 1, paired | halo P(k<=0.5)/truth - 1, worst bin ± s.e. of the seed mean | n/n_truth |")
        lines.append("|---|---|---|---|---|---|---|---|")
        for (mesh, name), e in acc.items():
            r = np.mean(e["r"], axis=0)
            err = np.mean(e["err"], axis=0)
            kk = e["k"]
            i07 = np.argmin(np.abs(kk - 0.7))
            # Per seed, the error power averaged over k <= 0.3 relative to FoF on the cheap run's in
            # the same box (the boxes' own scatter cancels), mean ± s.e. over the seeds.
            low3 = kk <= 0.3
            fof = np.array(acc[(mesh, "cheap FoF")]["err"])[:, low3].mean(axis=1)
            rel = np.array(e["err"])[:, low3].mean(axis=1) / fof - 1
            paired = "" if name == "cheap FoF" else (
                f"{rel.mean() * 100:+.1f}% ± {rel.std(ddof=1) / np.sqrt(len(rel)) * 100:.1f}%")
            row = (f"| {mesh}^3 | {name} | {r[kk <= 0.5].min():.3f} | {r[i07]:.3f} | "
                   f"{err[kk <= 0.3].max():.3f} | {paired} |")
            fig = summary.setdefault(a, {}).setdefault((mesh, name), {})
            # Per seed, r - FoF's r averaged over k <= 0.5 (paired as above).
            dr = (np.array(e["r"]) - np.array(acc[(mesh, "cheap FoF")]["r"]))[:, kk <= 0.5].mean(axis=1)
            fig.update(r=r[kk <= 0.5].min(), r07=r[i07], err=err[kk <= 0.3].max(),
                       paired=rel.mean(), paired_se=rel.std(ddof=1) / np.sqrt(len(rel)),
                       dr=dr.mean(), dr_se=dr.std(ddof=1) / np.sqrt(len(dr)))
            if e["pk"]:
                pk = np.mean(e["pk"], axis=0)
                # the standard error of the seed mean in that bin (the seeds' scatter / sqrt(n))
                se = np.std(e["pk"], axis=0, ddof=1) / np.sqrt(len(e["pk"])) if len(e["pk"]) > 1 \
                    else np.full_like(pk, np.nan)
                low = kk <= 0.5
                w = np.argmax(np.abs(pk[low] - 1))
                # Per seed, the rms of P/P_truth - 1 over k <= 0.5 minus FoF's in the same box.
                dev = np.sqrt(np.mean((np.array(e["pk"])[:, low] - 1) ** 2, axis=1))
                dev_fof = np.sqrt(np.mean((np.array(acc[(mesh, "cheap FoF")]["pk"])[:, low] - 1) ** 2,
                                          axis=1))
                fig.update(pk=abs(pk[low][w] - 1), pk_se=se[low][w], pk_k=kk[low][w],
                           pk_rms=dev.mean(), pk_rms_paired=(dev - dev_fof).mean(),
                           pk_rms_paired_se=(dev - dev_fof).std(ddof=1) / np.sqrt(len(dev)))
                row += (f" {abs(pk[low][w] - 1) * 100:.1f}% ± {se[low][w] * 100:.1f}% (k = {kk[low][w]:.2f})"
                        f" | {np.mean(e['n']):.3f} |")
                if mesh == meshes[-1]:
                    ax_p[col].plot(kk, pk, label=name)
            else:
                row += " | |"
            lines.append(row)
            style = "-" if mesh == meshes[-1] else ":"
            ax_r[0][col].plot(kk, r, style, label=f"{name} ({mesh}^3)")
            ax_r[1][col].plot(kk, err, style, label=f"{name} ({mesh}^3)")
        # Mass function above 100 particles.
        edges = np.log10(100 * mp) + 0.2 * np.arange(12)
        h = {name: np.histogram(np.log10(np.concatenate(v)), bins=edges)[0] for name, v in mf.items()}
        others = [k2 for k2 in mf if k2 != "truth"]
        lines.append("\n| log10 M [Msun/h] | truth groups | truth's Poisson error | " +
                     " | ".join(f"{k2}/truth" for k2 in others) + " |")
        lines.append("|---|---|---|" + "---|" * len(others))
        # The worst bin among those whose truth count is known to 10% (>= 100 groups: a 10%
        # tolerance cannot be tested on fewer), and among all rows shown (>= 20 groups).
        worst = {k2: 0.0 for k2 in others}
        worst_all = {k2: 0.0 for k2 in others}
        for i in range(len(edges) - 1):
            if h["truth"][i] < 20:
                continue
            row = (f"| {edges[i]:.1f}-{edges[i + 1]:.1f} | {h['truth'][i]} | "
                   f"{100 / np.sqrt(h['truth'][i]):.1f}% |")
            for k2 in others:
                ratio = h[k2][i] / h["truth"][i]
                worst_all[k2] = max(worst_all[k2], abs(ratio - 1))
                if h["truth"][i] >= 100:
                    worst[k2] = max(worst[k2], abs(ratio - 1))
                row += f" {ratio:.3f} |"
            lines.append(row)
        summary[a]["mf"] = worst
        lines.append("worst bin (>= 100 truth groups): " +
                     ", ".join(f"{k2} {worst[k2] * 100:.1f}%" for k2 in others))
        lines.append("worst bin (>= 20 truth groups, Poisson errors up to 22%): " +
                     ", ".join(f"{k2} {worst_all[k2] * 100:.1f}%" for k2 in others))
        centres = 0.5 * (edges[1:] + edges[:-1])
        for name in mf:
            ax_m[col].step(centres, np.maximum(h[name], 0.5), where="mid", label=name)
        ax_m[col].set_yscale("log")
        ax_m[col].set_xlabel("log10 M [Msun/h]")
        ax_m[col].set_title(f"z = {z:.0f}: groups above 100 particles ({len(seeds)} seeds)")
        ax_m[col].legend()
        ax_r[0][col].set_title(f"halo-mass field, z = {z:.0f}")
        ax_r[0][col].set_ylabel("r(k)")
        ax_r[0][col].axhline(0.95, color="gray", ls=":")
        ax_r[1][col].set_ylabel("P_err n")
        ax_r[1][col].axhline(1.0, color="gray", ls=":")
        ax_r[1][col].set_yscale("log")
        ax_r[1][col].set_xlabel("k [h/Mpc]")
        ax_p[col].axhline(1.0, color="gray", ls=":")
        ax_p[col].fill_between([0, 0.5], 0.9, 1.1, color="gray", alpha=0.2)
        ax_p[col].set_xscale("log")
        ax_p[col].set_ylim(0, 2)
        ax_p[col].set_xlabel("k [h/Mpc]")
        ax_p[col].set_ylabel("P_halo / P_halo,truth (shot noise subtracted)")
        ax_p[col].set_title(f"z = {z:.0f}")
        ax_p[col].legend(fontsize=8)
    # Cost.
    lines.append("\n## Cost (2 ranks, wall seconds from run_summary.json of this validation's runs, which may"
                 " have shared the machine: validation/halo_cost.sh is the benchmark on an idle one)")
    lines.append("| seed | truth run (FoF, no P(k)) | cheap run + surrogates (no FoF) | surrogates | speed-up |" +
                 (" cheap run + group surrogates (no [halos] FoF) | group surrogates | speed-up |" if groups else ""))
    lines.append("|---|---|---|---|---|" + ("---|---|---|" if groups else ""))
    for s in seeds:
        t = json.load(open(f"{out}/truth_{s}/run_summary.json"))
        c = json.load(open(f"{out}/heldout_{s}/run_summary.json"))
        tt = t["wall_seconds"] - t["timings_seconds_max_over_ranks"].get("step:observer:power_spectrum", 0)
        ct = c["timings_seconds_max_over_ranks"]
        hook = sum(v for k2, v in ct.items() if k2.startswith("step:observer:emulator"))
        cc = c["wall_seconds"] - ct.get("step:observer:fof", 0)
        row = f"| {s} | {tt:.1f} | {cc:.1f} | {hook:.1f} | {tt / cc:.1f}x |"
        if groups:
            g = json.load(open(f"{out}/heldout_groups_{s}/run_summary.json"))
            gt = g["timings_seconds_max_over_ranks"]
            ghook = sum(v for k2, v in gt.items() if k2.startswith("step:observer:emulator"))
            gc = g["wall_seconds"] - gt.get("step:observer:fof", 0)
            row += f" {gc:.1f} | {ghook:.1f} | {tt / gc:.1f}x |"
        lines.append(row)
    if choose:
        lines += choose_records(summary, groups, seeds, meshes, choose)
    if recommend:
        lines += recommended_table(summary, recommend, meshes)
    text = "\n".join(lines) + "\n"
    open(f"{out}/{prefix}_validation.txt", "w").write(text)
    print(text)
    # One legend for all four panels, below them (the curves fill the panels).
    handles, labels = ax_r[0][0].get_legend_handles_labels()
    fig_r.legend(handles, labels, loc="lower center", ncol=3, fontsize=7)
    fig_r.tight_layout(rect=(0, 0.17, 1, 1))
    fig_r.savefig(f"{out}/{prefix}_rk.png", dpi=110)
    fig_m.tight_layout()
    fig_m.savefig(f"{out}/{prefix}_mf.png", dpi=110)
    fig_p.tight_layout()
    fig_p.savefig(f"{out}/{prefix}_pk.png", dpi=110)


if __name__ == "__main__":
    main()
