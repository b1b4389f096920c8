#!/usr/bin/env python3
"""Plots a trained force correction of the hybrid PM: K(k, a) of a neural_spline or hat_ka record,
or PGD's filter alpha O_l O_s at its scale factors, against k [h/Mpc].

usage: plot_force_correction.py RECORD.json -o OUT.png [--print]

The neural correction is rebuilt with numpy from the record's flat parameter vector (the
LibTorch module's named_parameters order: l1.weight, l1.bias, l2.weight, l2.bias, knots.weight,
knots.bias, weights.weight, weights.bias), independently of Caustic's C++ code: the record is
portable to Python (a PyTorch module with these layers loads the same vector).
"""
import argparse
import json
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def neural_k(rec, x, a):
    arch = rec["architecture"]
    m, L, B = arch["knots"], arch["latent"], arch["bound"]
    theta = np.array(rec["theta"], dtype=np.float64)
    shapes = [(L, 1), (L,), (L, L), (L,), (m, L), (m,), (m + 3, L), (m + 3,)]
    ps, o = [], 0
    for s in shapes:
        n = int(np.prod(s))
        ps.append(theta[o:o + n].reshape(s))
        o += n
    assert o == len(theta), "parameter count does not match the architecture"
    w1, b1, w2, b2, wk, bk, ww, bw = ps
    h = np.tanh(w1 @ np.array([a]) + b1)
    h = np.tanh(w2 @ h + b2)
    z = wk @ h + bk
    frac = np.exp(z - z.max())
    frac /= frac.sum()
    inner = np.concatenate([[0.0], np.cumsum(frac)[:m - 1], [1.0]])
    w = ww @ h + bw
    t = np.concatenate([np.repeat(inner[:1], 3), inner, np.repeat(inner[-1:], 3)])

    def spline(u):
        u = np.clip(u, 0.0, 1.0 - 1e-12)
        Bs = ((u[:, None] >= t[None, :-1]) & (u[:, None] < t[None, 1:])).astype(float)
        for p in (1, 2, 3):
            nb = Bs.shape[1] - 1
            def ratio(num, den):
                return np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
            Bs = (ratio(u[:, None] - t[None, :nb], t[None, p:p + nb] - t[None, :nb]) * Bs[:, :nb]
                  + ratio(t[None, p + 1:p + 1 + nb] - u[:, None],
                          t[None, p + 1:p + 1 + nb] - t[None, 1:1 + nb]) * Bs[:, 1:nb + 1])
        return Bs @ w

    u = x / math.sqrt(3.0)
    s = spline(u) - spline(np.zeros(1))[0]
    return np.exp(B * np.tanh(s / B))


def hat_k(rec, x, a):
    xn, an = rec["architecture"]["x_nodes"], rec["architecture"]["a_nodes"]
    th = np.array(rec["theta"]).reshape(len(xn), len(an))
    wa = np.array([np.interp(a, an, np.eye(len(an))[j]) for j in range(len(an))])
    K = np.ones_like(x)
    xs = np.concatenate([[0.0], xn])
    for i in range(len(xn)):
        e = np.zeros(len(xn) + 1)
        e[i + 1] = 1.0
        h = np.interp(x, xs, e)
        if i == len(xn) - 1:
            h = np.where(x >= xn[-1], 1.0, h)
        K += h * (th[i] @ wa)
    return K


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("record")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--print", action="store_true", help="print K at a few k")
    args = ap.parse_args()
    rec = json.load(open(args.record))
    kny = math.pi / rec["domain"]["cell_size"]
    x = np.linspace(0.0, math.sqrt(3.0), 400)
    k = x * kny
    fig, ax = plt.subplots(figsize=(7, 4.5))
    kind = rec["correction"]
    if kind == "pgd":
        p = rec["pgd"]
        om = 0.5 * sum(rec["domain"]["Omega_m"])
        for a, al, kl, ks in zip(p["a"], p["alpha"], p["k_l"], p["k_s"]):
            with np.errstate(divide="ignore", over="ignore"):
                f = al * np.exp(-(kl / k) ** 2 - (k / ks) ** 4)
            ax.plot(k[1:], f[1:], label="a = %.2f" % a)
        ax.set_ylabel(r"PGD filter $\alpha\, O_l O_s$")
    else:
        scales = sorted(set([rec["domain"]["boundaries"][i] for i in
                             range(1, len(rec["domain"]["boundaries"]), 2)] + [1.0]))
        for a in scales:
            K = neural_k(rec, x, a) if kind == "neural_spline" else hat_k(rec, x, a)
            ax.plot(k, K, label="a = %.2f" % a)
            if args.print:
                sel = [np.argmin(abs(k - kk)) for kk in (0.0, 0.1, 0.3, 0.5, 1.0, 1.5)]
                print("a = %.2f: " % a + "  ".join("K(%.2f) = %.4f" % (k[j], K[j]) for j in sel))
        ax.axhline(1.0, color="k", lw=0.8)
        ax.set_ylabel(r"$K(k, a)$")
    ax.axvline(kny, color="k", ls=":", lw=0.8)
    ax.set_xlabel(r"$|k|$ [$h$/Mpc]  (dotted: the PM mesh Nyquist frequency)")
    ax.set_title("%s (%s)" % (kind, args.record), fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print("wrote " + args.output)


if __name__ == "__main__":
    main()
