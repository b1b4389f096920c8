#!/usr/bin/env python3
"""The `--set` options that apply the super-resolution hook's fitted post-processing: the PGD
sharpening (a pgd_fit.json of validation/superres_pgd_fit.py) and, when given, the group
contraction (a contraction_fit.json of validation/superres_contraction_fit.py). One argument per
line, for `mapfile -t ARGS < <(python3 validation/superres_hook_sets.py PGD_FIT [CONTRACTION_FIT])`
in scripts/run-main.sh and validation/superres_particles.sh."""
import argparse
import json

CONTRACT_KEYS = ("lambda", "radius", "max_members", "b", "min_members")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("pgd_fit")
    ap.add_argument("contraction_fit", nargs="?")
    ap.add_argument("--hook", default="sr", help="the [emulators.NAME] table (default sr)")
    args = ap.parse_args()
    with open(args.pgd_fit) as f:
        pgd = json.load(f)["pgd"]
    print("--set")
    print("emulators.%s.pgd=[%r, %r, %r]" % (args.hook, *pgd))
    if args.contraction_fit:
        with open(args.contraction_fit) as f:
            c = json.load(f)["contract"]
        for k in CONTRACT_KEYS:
            print("--set")
            print("emulators.%s.contract.%s=%r" % (args.hook, k, c[k]))


if __name__ == "__main__":
    main()
