#!/usr/bin/env python3
"""Fails when a library folder includes a folder (or a third-party header) it may not depend on.

The layering (docs/architecture.md): pm <- io <- campaign, pm <- io <- emulators, pm <- infer
(with Trilinos ROL), and src/ on top. pm/ is the physics: it never sees HDF5, TOML, JSON or LibTorch. The build enforces the same
through each target's include root (cmake/CausticDependencies.cmake); this check also covers
headers a target does not compile, and says which line breaks the rule.

  check_layering.py [--root DIR]        exit 1 and list the offending lines, or exit 0
"""
import argparse
import pathlib
import re
import sys

# folder -> forbidden include prefixes (quoted project headers and angle-bracket third parties)
RULES = {
    "pm": ["io/", "emulators/", "campaign/", "infer/", "src/", "torch/", "ATen/", "hdf5", "H5",
           "toml++/", "nlohmann/", "CLI/", "ROL_", "Teuchos_"],
    "io": ["emulators/", "campaign/", "infer/", "src/", "torch/", "ATen/", "CLI/", "ROL_",
           "Teuchos_"],
    "campaign": ["emulators/", "infer/", "src/", "torch/", "CLI/", "ROL_", "Teuchos_"],
    "emulators": ["campaign/", "infer/", "src/", "CLI/", "ROL_", "Teuchos_"],
    # infer/ is the optimiser (ROL) on the differentiable model: no files, no LibTorch.
    "infer": ["io/", "emulators/", "campaign/", "src/", "torch/", "ATen/", "hdf5", "H5",
              "toml++/", "nlohmann/", "CLI/"],
}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


def violations(root: pathlib.Path):
    for folder, banned in RULES.items():
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".hpp", ".cpp", ".h"):
                continue
            for lineno, line in enumerate(path.read_text().splitlines(), 1):
                m = INCLUDE.match(line)
                if m and any(m.group(1).startswith(b) for b in banned):
                    yield f"{path.relative_to(root)}:{lineno}: {folder}/ may not include {m.group(1)}"


def self_test():
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        t = pathlib.Path(tmp)
        cases = {"pm/a/x.hpp": '#include "io/params.hpp"', "pm/y.cpp": "#include <hdf5.h>",
                 "io/z.cpp": '#include "emulators/model.hpp"', "campaign/c.hpp": "#include <torch/torch.h>",
                 "emulators/e.cpp": '#include "campaign/campaign.hpp"', "io/ok.cpp": '#include "pm/x.hpp"'}
        for rel, text in cases.items():
            (t / rel).parent.mkdir(parents=True, exist_ok=True)
            (t / rel).write_text(text + "\n")
        found = {v.split(":")[0] for v in violations(t)}
        want = {rel for rel in cases if not rel.startswith("io/ok")}
        if found != want:
            print("check_layering self-test: caught", sorted(found), "expected", sorted(want))
            return False
    return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", default=str(pathlib.Path(__file__).resolve().parents[1]))
    ap.add_argument("--self-test", action="store_true",
                    help="first check that a tree with one violation of each rule is caught")
    args = ap.parse_args()
    if args.self_test and not self_test():
        return 1
    root = pathlib.Path(args.root)
    bad = list(violations(root))
    for v in bad:
        print(v)
    checked = sum(1 for f in RULES for p in (root / f).rglob("*") if p.suffix in (".hpp", ".cpp"))
    if checked == 0:
        print("check_layering: no sources found under", root)
        return 1
    print(f"check_layering: {checked} files, {len(bad)} violations")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
