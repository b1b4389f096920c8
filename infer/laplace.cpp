#include "infer/laplace.hpp"

#include "pm/core/profiling.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

void hessianVector(ROL::Objective<double>& obj, const FieldVector& x, const FieldVector& v,
                   FieldVector& hv, double step, long* gradients) {
  ScopedRegion region("caustic::hessianVector");
  const double vn = v.norm();
  if (vn == 0.0) {
    hv.zero();
    return;
  }
  const double h = step * std::sqrt(static_cast<double>(v.dimension())) / vn;
  FieldVector xp(x), gp(x), gm(x);
  double tol = 0.0;
  xp.set(x);
  xp.axpy(h, v);
  obj.value(xp, tol);
  obj.gradient(gp, xp, tol);
  xp.set(x);
  xp.axpy(-h, v);
  obj.value(xp, tol);
  obj.gradient(gm, xp, tol);
  if (gradients)
    *gradients += 2;
  hv.set(gp);
  hv.axpy(-1.0, gm);
  hv.scale(0.5 / h);
}

std::vector<std::vector<double>> invertSpd(const std::vector<std::vector<double>>& a) {
  const std::size_t n = a.size();
  std::vector<std::vector<double>> l(n, std::vector<double>(n, 0.0));
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t j = 0; j <= i; ++j) {
      double s = a[i][j];
      for (std::size_t k = 0; k < j; ++k)
        s -= l[i][k] * l[j][k];
      if (i == j) {
        if (!(s > 0.0))
          throw std::runtime_error("Laplace: the parameters' Schur complement is not positive "
                                   "definite (pivot " +
                                   std::to_string(s) + "): the point is not a posterior mode");
        l[i][i] = std::sqrt(s);
      } else {
        l[i][j] = s / l[j][j];
      }
    }
  // inv = L^{-T} L^{-1}, column by column.
  std::vector<std::vector<double>> inv(n, std::vector<double>(n, 0.0));
  for (std::size_t c = 0; c < n; ++c) {
    std::vector<double> y(n, 0.0), z(n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
      double s = i == c ? 1.0 : 0.0;
      for (std::size_t k = 0; k < i; ++k)
        s -= l[i][k] * y[k];
      y[i] = s / l[i][i];
    }
    for (std::size_t i = n; i-- > 0;) {
      double s = y[i];
      for (std::size_t k = i + 1; k < n; ++k)
        s -= l[k][i] * z[k];
      z[i] = s / l[i][i];
    }
    for (std::size_t i = 0; i < n; ++i)
      inv[i][c] = z[i];
  }
  return inv;
}

LaplaceResult laplaceCovariance(ROL::Objective<double>& obj, const FieldVector& x,
                                const LaplaceSettings& s) {
  const HessianProduct fd = [&](const FieldVector& v, FieldVector& hv, long* gradients) {
    hessianVector(obj, x, v, hv, s.step, gradients);
  };
  return laplaceCovariance(fd, fd, x, s);
}

LaplaceResult laplaceCovariance(const HessianProduct& columns, const HessianProduct& noise_block,
                                const FieldVector& x, const LaplaceSettings& s) {
  ScopedRegion region("caustic::laplaceCovariance");
  const std::size_t np = x.params().size();
  if (np == 0)
    throw std::invalid_argument("laplaceCovariance: the point carries no parameters");
  LaplaceResult r;
  r.hessian.assign(np, std::vector<double>(np, 0.0));
  std::vector<FieldVector> cols; // H_omega,u columns (noise parts)
  FieldVector e(x), he(x);
  for (std::size_t j = 0; j < np; ++j) {
    e.zero();
    e.params()[j] = 1.0;
    columns(e, he, &r.gradients);
    for (std::size_t i = 0; i < np; ++i)
      r.hessian[i][j] = he.params()[i];
    FieldVector c(x);
    c.set(he);
    for (double& p : c.params())
      p = 0.0;
    cols.push_back(std::move(c));
  }
  // The noise block: v -> the noise part of H (v, 0).
  auto applyNoiseBlock = [&](const FieldVector& v, FieldVector& out) {
    noise_block(v, out, &r.gradients);
    for (double& p : out.params())
      p = 0.0;
  };
  r.schur = r.hessian;
  for (std::size_t j = 0; j < np; ++j) {
    // CG for H_omega,omega z = b, b = the column j (noise part).
    const FieldVector& b = cols[j];
    FieldVector z(x), res(x), p(x), ap(x);
    z.zero();
    res.set(b);
    p.set(b);
    const double bn = b.norm();
    double rr = res.dot(res);
    int it = 0;
    while (it < s.cg_max_iterations && std::sqrt(rr) > s.cg_tolerance * bn) {
      applyNoiseBlock(p, ap);
      const double pap = p.dot(ap);
      if (!(pap > 0.0))
        throw std::runtime_error("Laplace: the noise block of the Hessian is not positive "
                                 "definite (p.Hp = " +
                                 std::to_string(pap) + "): the point is not a posterior mode");
      const double alpha = rr / pap;
      z.axpy(alpha, p);
      res.axpy(-alpha, ap);
      const double rr_new = res.dot(res);
      p.scale(rr_new / rr);
      p.axpy(1.0, res);
      rr = rr_new;
      ++it;
    }
    r.cg_iterations.push_back(it);
    r.cg_residuals.push_back(bn > 0 ? std::sqrt(rr) / bn : 0.0);
    for (std::size_t i = 0; i < np; ++i)
      r.schur[i][j] -= cols[i].dot(z);
  }
  for (std::size_t i = 0; i < np; ++i)
    for (std::size_t j = 0; j < i; ++j)
      r.schur[i][j] = r.schur[j][i] = 0.5 * (r.schur[i][j] + r.schur[j][i]);
  r.covariance = invertSpd(r.schur);
  return r;
}

} // namespace caustic
