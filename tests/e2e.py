"""Shared helpers of the end-to-end checks (check_*.py): the shared test parameter file, the
record of failed checks, and running a command."""
import pathlib
import subprocess
import sys

import numpy as np

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


def cic_weights(pos, L, n, shift=0.0):
    """The CIC stencil of positions `pos` on an n^3 mesh of points i L / n: for each of the 8
    corners, (index arrays (ix, iy, iz), weights)."""
    g = pos / (L / n) + shift
    i0 = np.floor(g).astype(np.int64)
    w1 = g - i0
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                w = ((w1[:, 0] if dx else 1 - w1[:, 0]) * (w1[:, 1] if dy else 1 - w1[:, 1]) *
                     (w1[:, 2] if dz else 1 - w1[:, 2]))
                yield ((i0[:, 0] + dx) % n, (i0[:, 1] + dy) % n, (i0[:, 2] + dz) % n), w


def cic_paint(pos, L, n, shift=0.0):
    """Particles per mesh point, CIC (the mesh points i L / n; positions shifted by `shift` cells)."""
    rho = np.zeros((n, n, n))
    for idx, w in cic_weights(pos, L, n, shift):
        np.add.at(rho, idx, w)
    return rho


def cic_readout(field, pos, L):
    """The field interpolated at `pos` with the CIC window."""
    v = np.zeros(len(pos))
    for idx, w in cic_weights(pos, L, field.shape[0]):
        v += w * field[idx]
    return v


def interlaced_cic_power(pos, L, n):
    """The compensated, interlaced CIC power of positions `pos` on an n^3 mesh (points at i L / n,
    the copy painted at x + H/2, signed wavenumbers in (-n/2, n/2], shells round(|m|) = 1..n/2):
    rows (mean k, P, modes), as Caustic's tables."""

    def paint(shift):
        return np.fft.rfftn(cic_paint(pos, L, n, shift) * n**3 / len(pos))

    idx = np.arange(n)
    m = np.where(idx <= n // 2, idx, idx - n).astype(float)
    mz = np.arange(n // 2 + 1).astype(float)
    mx, my, mzz = np.meshgrid(m, m, mz, indexing="ij")
    sinc = lambda q: np.where(q == 0, 1.0, np.sin(np.pi * q / n) / np.where(q == 0, 1.0, np.pi * q / n))
    window = (sinc(mx) * sinc(my) * sinc(mzz)) ** 2
    phase = np.exp(1j * np.pi * (mx + my + mzz) / n)
    v = 0.5 * (paint(0.0) + paint(0.5) * phase) / window
    power = np.abs(v) ** 2 * L**3 / float(n) ** 6
    mag = np.sqrt(mx**2 + my**2 + mzz**2)
    b = np.floor(mag + 0.5).astype(int)
    w = np.where((mzz > 0) & (mzz < n // 2), 2.0, 1.0)
    rows = []
    for k in range(1, n // 2 + 1):
        sel = b == k
        cnt = w[sel].sum()
        rows.append((np.sum(w[sel] * mag[sel]) * 2 * np.pi / L / cnt, np.sum(w[sel] * power[sel]) / cnt, cnt))
    return np.array(rows)
