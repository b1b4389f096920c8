"""Shared helpers of the end-to-end checks (check_*.py): the shared test parameter file, the
record of failed checks, and running a command."""
import pathlib
import subprocess
import sys

# The [cosmology] section every test run uses (tests/data/cosmology.toml); a test's parameter
# text is COSMOLOGY + its own sections.
COSMOLOGY = (pathlib.Path(__file__).resolve().parent / "data" / "cosmology.toml").read_text() + "\n"


class Checks:
    """Collects failed checks; finish() prints the tally and exits with 1 if any failed."""

    def __init__(self):
        self.failures = []

    def __call__(self, cond, msg):
        if not cond:
            self.failures.append(msg)
            print("FAIL: " + msg, flush=True)
        return cond

    def finish(self, passed_line=None):
        if passed_line is not None and not self.failures:
            print(passed_line)
        print("%d check(s) failed" % len(self.failures) if self.failures else "all checks passed")
        sys.exit(1 if self.failures else 0)


def run(cmd, echo=True, **kw):
    """Runs cmd (a list), capturing its output as text."""
    if echo:
        print("$", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)
