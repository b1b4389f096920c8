#!/usr/bin/env python3
"""The main job's halo surrogates (scripts/run-main.sh): the cheap production run's FoF groups
against the per-group surrogates' catalogues and expected halo-mass fields, in the same run.

    plot_halo_main.py OUT

OUT holds the run's FoF catalogues (halos_a*.0.hdf5) and the hooks' outputs
(halo_catalogue_z{1,0}_a*.0.hdf5, halo_field_z{1,0}_candidates_a*.hdf5). No truth here: the
held-out figures against the high-force-resolution truth are validation/halos.sh's. Writes
OUT/halo_surrogate.png (mass functions; a 16 Mpc/h slab of FoF's halos and of the expected
halo masses at z = 0) and OUT/halo_surrogate.md (numbers of halos above the catalogue's threshold).
"""
import sys

import h5py
import numpy as np

from plot_halos import catalogue, plt  # Agg backend; (pos, mass [Msun/h], len, box, m_p)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    fig, ax = plt.subplots(1, 4, figsize=(19, 4.6))
    rows = ["| z | FoF groups above the threshold | surrogate catalogue | threshold [Msun/h] |",
            "|---|---|---|---|"]
    for col, (z, a) in enumerate(((1, "0.5000"), (0, "1.0000"))):
        tag = a.replace(".", "p")
        fp, fm, _, box, _ = catalogue(f"{out}/halos_a{tag}.0.hdf5")
        sp, sm, _, _, _ = catalogue(f"{out}/halo_catalogue_z{z}_a{tag}.0.hdf5")
        with h5py.File(f"{out}/halo_field_z{z}_candidates_a{a}.hdf5", "r") as f:
            mmin = float(f["Header"].attrs["MinHaloMass"]) * 1e10
            cpos = f["Candidates/Pos"][:]
            cexp = f["Candidates/ExpectedMass"][:] * 1e10
        edges = np.log10(mmin) + 0.2 * np.arange(10)
        centres = 0.5 * (edges[1:] + edges[:-1])
        for name, m in (("FoF on this run", fm), ("surrogate catalogue", sm)):
            h = np.histogram(np.log10(m), bins=edges)[0]
            ax[col].step(centres, np.maximum(h, 0.5), where="mid", label=name)
        ax[col].set_yscale("log")
        ax[col].set_xlabel("log10 M [Msun/h]")
        ax[col].set_ylabel("halos per 0.2 dex")
        ax[col].set_title(f"z = {z}: mass functions above the n = 1e-3 threshold")
        ax[col].legend()
        rows.append(f"| {z} | {int((fm >= mmin).sum())} | {len(sm)} | {mmin:.3g} |")
        if z == 0:  # a 16 Mpc/h slab: FoF's halos above the threshold and the candidates,
            # marker areas proportional to the halo mass and the expected halo mass
            keep = fm >= mmin
            for k, (p, w, title) in enumerate(((fp[keep], fm[keep], "FoF halos"),
                                               (cpos, cexp, "expected halo mass"))):
                s = (p[:, 2] % box) < 16.0
                ax[2 + k].scatter(p[s, 0] % box, p[s, 1] % box, s=w[s] / 2e12, alpha=0.6,
                                  linewidths=0)
                ax[2 + k].set_aspect("equal")
                ax[2 + k].set_xlim(0, box)
                ax[2 + k].set_ylim(0, box)
                ax[2 + k].set_xlabel("x [Mpc/h]")
                ax[2 + k].set_title(f"z = 0, a slab 16 Mpc/h deep: {title}")
    fig.tight_layout()
    fig.savefig(f"{out}/halo_surrogate.png", dpi=100)
    text = "\n".join(rows) + "\n"
    open(f"{out}/halo_surrogate.md", "w").write(text)
    print(text)


if __name__ == "__main__":
    main()
