"""Halofit (Takahashi et al. 2012, ApJ 761, 152), implemented for validation.

The non-linear power spectrum from a linear one, for a flat LCDM background (w = -1: the
dark-energy terms of the fit vanish). k in h/Mpc, P in (Mpc/h)^3.
"""
import numpy as np


def _sigma2(lnk, delta2, R):
    """sigma^2(R) = int Delta^2(k) exp(-k^2 R^2) dlnk and its first two derivatives in R."""
    k = np.exp(lnk)
    w = np.exp(-(k * R) ** 2)
    s0 = np.trapz(delta2 * w, lnk)
    s1 = np.trapz(delta2 * w * (-2 * k * k * R), lnk)
    s2 = np.trapz(delta2 * w * (-2 * k * k + 4 * k**4 * R * R), lnk)
    return s0, s1, s2


def halofit(k, k_lin, p_lin, growth2, omega_m_a):
    """Non-linear P(k) at the scale factor where P_lin(k, a) = growth2 * p_lin(k) and
    Omega_m(a) = omega_m_a. k_lin, p_lin: a finely sampled linear spectrum at a = 1."""
    lnk = np.log(k_lin)
    delta2 = growth2 * k_lin**3 * p_lin / (2 * np.pi**2)
    # R where sigma(R) = 1, by bisection in ln R.
    lo, hi = np.log(1e-3), np.log(1e2)
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        if _sigma2(lnk, delta2, np.exp(mid))[0] > 1.0:
            lo = mid
        else:
            hi = mid
    R = np.exp(0.5 * (lo + hi))
    s0, s1, s2 = _sigma2(lnk, delta2, R)
    dlns = R * s1 / s0
    d2lns = dlns - dlns**2 + R * R * s2 / s0
    ksig, n, C = 1.0 / R, -3.0 - dlns, -d2lns
    an = 10 ** (1.5222 + 2.8553 * n + 2.3706 * n**2 + 0.9903 * n**3 + 0.2250 * n**4 - 0.6038 * C)
    bn = 10 ** (-0.5642 + 0.5864 * n + 0.5716 * n**2 - 1.5474 * C)
    cn = 10 ** (0.3698 + 2.0404 * n + 0.8161 * n**2 + 0.5869 * C)
    gn = 0.1971 - 0.0843 * n + 0.8460 * C
    alpha = abs(6.0835 + 1.3373 * n - 0.1959 * n**2 - 5.5274 * C)
    beta = 2.0379 - 0.7354 * n + 0.3157 * n**2 + 1.2490 * n**3 + 0.3980 * n**4 - 0.1682 * C
    nu = 10 ** (5.2105 + 3.6902 * n)
    f1, f2, f3 = omega_m_a**-0.0307, omega_m_a**-0.0585, omega_m_a**0.0743
    k = np.asarray(k, dtype=float)
    y = k / ksig
    d2l = growth2 * k**3 * np.exp(np.interp(np.log(k), lnk, np.log(p_lin))) / (2 * np.pi**2)
    d2q = d2l * (1 + d2l) ** beta / (1 + alpha * d2l) * np.exp(-y / 4 - y**2 / 8)
    d2h = an * y ** (3 * f1) / (1 + bn * y**f2 + (cn * f3 * y) ** (3 - gn))
    d2h /= 1 + nu / y**2
    return (d2q + d2h) * 2 * np.pi**2 / k**3, {"k_sigma": ksig, "n_eff": n, "C": C}
