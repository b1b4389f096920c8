#!/usr/bin/env python3
"""The quantiles of validation/infer_coverage.py (its own incomplete beta and gamma functions,
written because scipy is not among the scripts' packages) against closed forms: Student's t with
1 and 2 degrees of freedom, F(2, d2), the normal quantiles, chi^2 with 2 degrees of freedom, and
I_x(a, 1) = x^a, I_x(1, b) = 1 - (1 - x)^b."""
import importlib.util
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location(
    "infer_coverage", os.path.join(ROOT, "validation", "infer_coverage.py"))
cov = importlib.util.module_from_spec(spec)
spec.loader.exec_module(cov)

failures = []


def close(what, got, want, rel=1e-9):
    if not abs(got - want) <= rel * abs(want):
        failures.append("%s: %.12g, expected %.12g" % (what, got, want))


for x in (0.03, 0.3, 0.7, 0.97):
    for a in (0.5, 2.0, 7.5):
        close("I_%g(%g, 1)" % (x, a), cov.incomplete_beta(x, a, 1.0), x ** a, 1e-12)
        close("I_%g(1, %g)" % (x, a), cov.incomplete_beta(x, 1.0, a), 1 - (1 - x) ** a, 1e-12)
for level, z in ((0.68, 0.994457883209753), (0.95, 1.959963984540054)):
    u = 0.5 * (1 + level)
    close("t_1 %g" % level, cov.interval_scales(level, 1, 2)[0], math.tan(math.pi * (u - 0.5)))
    close("t_2 %g" % level, cov.interval_scales(level, 1, 3)[0],
          (2 * u - 1) / math.sqrt(2 * u * (1 - u)))
    m, joint = cov.interval_scales(level, 1, 7)
    close("F(1, 6) = t_6^2 %g" % level, joint, m * m)
    for n in (3, 4, 10):
        d2 = n - 2.0
        f = 0.5 * d2 * ((1 - level) ** (-2 / d2) - 1)
        close("Hotelling 2 parameters, %d simulations, %g" % (n, level),
              cov.interval_scales(level, 2, n)[1], 2 * (n - 1) / d2 * f)
    z_got, chi2 = cov.interval_scales(level, 2)
    close("normal %g" % level, z_got, z)
    close("chi^2_2 %g" % level, chi2, -2 * math.log(1 - level))
    close("chi^2_1 = z^2 %g" % level, cov.interval_scales(level, 1)[1], z * z)

if failures:
    print("\n".join("FAIL " + f for f in failures))
    sys.exit(1)
print("coverage quantiles: all closed forms matched")
