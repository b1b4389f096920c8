#include "pm/grad/lpt_model.hpp"
#include "pm/core/device_copy.hpp"

#include "pm/core/profiling.hpp"
#include "pm/ic/lpt.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {
// D1, D2 and the velocity factors a^2 E D f at a (as lptParticles).
std::array<double, 4> growthFactors(const Cosmology& c, double a, int order) {
  std::array<double, 4> out{};
  out[0] = c.D1(a);
  out[1] = order >= 2 ? c.D2(a) : 0.0;
  out[2] = a * a * c.E(a) * out[0] * c.f1(a);
  out[3] = order >= 2 ? a * a * c.E(a) * out[1] * c.f2(a) : 0.0;
  return out;
}

// T(k) = N^{3/2} sqrt(P(k) / V) per integer |m|^2 (host).
std::vector<double> amplitudes(const LinearPower& p, const SlabDecomposition& d) {
  const int n = d.n(), m2max = 3 * (n / 2) * (n / 2);
  const double kf = d.kFundamental(), volume = d.box() * d.box() * d.box();
  const double n32 = std::pow(double(n), 1.5);
  std::vector<double> t(static_cast<std::size_t>(m2max) + 1, 0.0);
  for (int m2 = 1; m2 <= m2max; ++m2)
    t[static_cast<std::size_t>(m2)] = n32 * std::sqrt(p(kf * std::sqrt(double(m2))) / volume);
  return t;
}

} // namespace

LptModel::LptModel(const DiffConfig& cfg, const DiffParams& params)
    : _cfg(cfg), _params(params), _cosmo(params.cosmology) {
  requireDiffConfig(cfg, params);
  const auto& d = *cfg.lattice;
  _fft = std::make_unique<FFT<double>>(cfg.lattice);
  _amp = toDeviceView(amplitudes(cfg.power.at(params.cosmology), d), "caustic::LptModel::T");
  _growth = growthFactors(_cosmo, cfg.a_start, cfg.lpt_order);
}

// Centred differences of T and of the growth factors in every parameter they depend on and
// DiffConfig::cosmology_gradient asks for: only the adjoint needs them, so the forward model
// does not pay for them.
void LptModel::ensureDerivatives() const {
  if (_derivatives)
    return;
  const auto& cfg = _cfg;
  const auto& params = _params;
  const auto& d = *cfg.lattice;
  for (CosmoParam p : kAllCosmoParams) {
    const std::size_t ip = static_cast<std::size_t>(p);
    if (!cfg.cosmology_gradient[ip])
      continue;
    const double h = differenceStep(params.cosmology, p);
    const CosmologyParams up = shifted(params.cosmology, p, h);
    const CosmologyParams down = shifted(params.cosmology, p, -h);
    if (cfg.power.dependsOn(p)) {
      const auto tp = amplitudes(cfg.power.at(up), d), tm = amplitudes(cfg.power.at(down), d);
      std::vector<double> dt(tp.size());
      for (std::size_t i = 0; i < dt.size(); ++i)
        dt[i] = (tp[i] - tm[i]) / (2 * h);
      _damp[ip] = toDeviceView(dt, "caustic::LptModel::dT");
    }
    if (entersBackground(p)) {
      const auto gp = growthFactors(Cosmology(up), cfg.a_start, cfg.lpt_order);
      const auto gm = growthFactors(Cosmology(down), cfg.a_start, cfg.lpt_order);
      for (int j = 0; j < 4; ++j)
        _dgrowth[ip][j] = (gp[j] - gm[j]) / (2 * h);
    }
  }
  _derivatives = true;
}

void LptModel::transfer(const Field<double>& omega, Field<double>& f) const {
  Kokkos::deep_copy(f.real(), omega.real());
  _fft->forward(f);
  multiplyByT(f);
}

void LptModel::linearDensity(const Field<double>& omega, Field<double>& delta) const {
  transfer(omega, delta);
  _fft->backward(delta);
}

void LptModel::multiplyByT(Field<double>& f) const {
  const int n = f.decomp().n();
  auto amp = _amp;
  auto c = f.complex();
  f.decomp().forEachMode(
      "caustic::LptModel::transfer",
      KOKKOS_LAMBDA(const MeshMode& m) { c(m.index) *= m.nyquist(n) ? 0.0 : amp(m.m2()); });
}

Particles LptModel::forward(const Field<double>& omega) const {
  ScopedRegion region("caustic::LptModel::forward");
  Field<double> delta(_cfg.lattice, "caustic::LptModel::delta");
  transfer(omega, delta);
  const LptFields<double> lpt = lptDisplacements(delta, *_fft, _cfg.lpt_order);
  return lptParticles(lpt, _cosmo, _cfg.a_start, _cfg.lattice_offset);
}

void LptModel::growthGradient(const Field<double>& delta, const Particles& adj,
                              ParameterGradient& g) const {
  // sum xbar.(dD psi) + pbar.(dv psi) for each differentiated parameter of the background.
  auto wanted = [&](CosmoParam p) {
    return entersBackground(p) && _cfg.cosmology_gradient[static_cast<std::size_t>(p)];
  };
  if (std::none_of(kAllCosmoParams.begin(), kAllCosmoParams.end(), wanted))
    return;
  const auto& d = *_cfg.lattice;
  const bool second = _cfg.lpt_order >= 2;
  const LptFields<double> lpt = lptDisplacements(delta, *_fft, _cfg.lpt_order);
  auto xb = adj.x, pb = adj.p;
  for (CosmoParam p : kAllCosmoParams) {
    if (!wanted(p))
      continue;
    const auto& dg = _dgrowth[static_cast<std::size_t>(p)];
    const double dd1 = dg[0], dd2 = dg[1], dv1 = dg[2], dv2 = dg[3];
    for (int c = 0; c < 3; ++c) {
      auto p1 = lpt.psi1[c]->real();
      auto p2 = second ? lpt.psi2[c]->real() : p1;
      double s = 0.0;
      d.reducePoints(
          "caustic::LptModel::growthGradient",
          KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
            const std::size_t f = q.index, i = q.compact;
            acc += (dd1 * xb(i, c) + dv1 * pb(i, c)) * p1(f);
            if (second)
              acc += (dd2 * xb(i, c) + dv2 * pb(i, c)) * p2(f);
          },
          s);
      g[p] += s;
    }
  }
}

namespace {
// acc(k) += conj(K) F(work) with K = kernel(mx, my, mz) (complex, incl. 1/N^3); work is
// transformed in place.
template <class K>
void pullBack(const FFT<double>& fft, Field<double>& work, Field<double>& acc, K kernel) {
  auto cacc = acc.complex();
  auto cwork = work.complex();
  fft.forward(work);
  work.decomp().forEachMode(
      "caustic::LptModel::pullBack", KOKKOS_LAMBDA(const MeshMode& m) {
        cacc(m.index) += Kokkos::conj(kernel(m.mx, m.my, m.mz)) * cwork(m.index);
      });
}

// work <- the cotangent of displacement component c on the lattice: xbar D + pbar v.
void psiCotangent(Field<double>& work, const Particles& adj, int c, double D, double v) {
  auto w = work.real();
  auto xb = adj.x, pb = adj.p;
  work.decomp().forEachPoint(
      "caustic::LptModel::psiCotangent", KOKKOS_LAMBDA(const MeshPoint& q) {
        w(q.index) = D * xb(q.compact, c) + v * pb(q.compact, c);
      });
}

// k_a k_b / k^2 times `scale` (1 with a normalised inverse transform, 1/N^3 as a pull-back).
KOKKOS_INLINE_FUNCTION Kokkos::complex<double> hessianKernel(int a, int b, double scale, int mx,
                                                             int my, int mz) {
  const int m[3] = {mx, my, mz};
  const int m2 = mx * mx + my * my + mz * mz;
  return Kokkos::complex<double>(m2 == 0 ? 0.0 : scale * double(m[a] * m[b]) / m2, 0.0);
}
} // namespace

void LptModel::deltaCotangent(const Field<double>& delta, const Particles& adj,
                              Field<double>& acc) const {
  const auto& d = *_cfg.lattice;
  const int n = d.n();
  const double kf = d.kFundamental(), n3 = double(n) * n * n;
  // acc(k) = sum over the pieces of conj(K) F(cotangent).
  Field<double> work(_cfg.lattice, "caustic::LptModel::work");
  acc.setZero();
  for (int c = 0; c < 3; ++c) {
    psiCotangent(work, adj, c, _growth[0], _growth[2]);
    // psi1_c = F^H (i k_c / k^2 / N^3) delta
    pullBack(
        *_fft, work, acc, KOKKOS_LAMBDA(int mx, int my, int mz) {
          const int m2 = mx * mx + my * my + mz * mz;
          const int mc = c == 0 ? mx : (c == 1 ? my : mz);
          if (m2 == 0)
            return Kokkos::complex<double>(0.0, 0.0);
          return Kokkos::complex<double>(0.0, double(mc) / (kf * m2 * n3));
        });
  }
  if (_cfg.lpt_order >= 2)
    secondOrderCotangent(delta, adj, work, acc);
}

void LptModel::secondOrderCotangent(const Field<double>& delta, const Particles& adj,
                                    Field<double>& work, Field<double>& acc) const {
  const auto dp = _cfg.lattice;
  const auto& d = *dp;
  const int n = d.n();
  const double kf = d.kFundamental(), n3 = double(n) * n * n;
  auto cwork = work.complex();
  // S2bar = sum_c F^H conj(K2_c) F psi2bar_c, K2_c = -i k_c / k^2 / N^3 (Nyquist zeroed).
  Field<double> sbar(dp, "caustic::LptModel::S2bar");
  sbar.setZero();
  auto csb = sbar.complex();
  for (int c = 0; c < 3; ++c) {
    psiCotangent(work, adj, c, _growth[1], _growth[3]);
    _fft->forward(work);
    d.forEachMode(
        "caustic::LptModel::S2pullBack", KOKKOS_LAMBDA(const MeshMode& m) {
          const int m2 = m.m2();
          if (m2 == 0 || m.nyquist(n))
            return;
          const int mc = c == 0 ? m.mx : (c == 1 ? m.my : m.mz);
          csb(m.index) +=
              Kokkos::complex<double>(0.0, double(mc) / (kf * m2 * n3)) * cwork(m.index);
        });
  }
  _fft->backward(sbar, false);
  // Hessians h_ab = F^H (k_a k_b / k^2 / N^3) delta, recomputed.
  auto hessian = [&](Field<double>& out, int a, int b) {
    auto cin = delta.complex();
    auto cout = out.complex();
    d.forEachMode(
        "caustic::LptModel::hessian", KOKKOS_LAMBDA(const MeshMode& m) {
          cout(m.index) = hessianKernel(a, b, 1.0, m.mx, m.my, m.mz) * cin(m.index);
        });
    _fft->backward(out);
  };
  auto pullBackHessian = [&](int a, int b) {
    pullBack(
        *_fft, work, acc, KOKKOS_LAMBDA(int mx, int my, int mz) {
          return hessianKernel(a, b, 1.0 / n3, mx, my, mz);
        });
  };
  std::array<std::unique_ptr<Field<double>>, 3> h;
  for (int c = 0; c < 3; ++c) {
    h[c] = std::make_unique<Field<double>>(dp, "caustic::LptModel::hessian");
    hessian(*h[c], c, c);
  }
  auto sb = sbar.real();
  auto w = work.real();
  // S2 = h00 h11 + h00 h22 + h11 h22 - h01^2 - h02^2 - h12^2.
  for (int c = 0; c < 3; ++c) {
    auto ha = h[(c + 1) % 3]->real(), hb = h[(c + 2) % 3]->real();
    d.forEachPoint(
        "caustic::LptModel::diagonalCotangent", KOKKOS_LAMBDA(const MeshPoint& q) {
          w(q.index) = sb(q.index) * (ha(q.index) + hb(q.index));
        });
    pullBackHessian(c, c);
  }
  const int pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
  for (auto& pr : pairs) {
    hessian(*h[0], pr[0], pr[1]);
    auto hab = h[0]->real();
    d.forEachPoint(
        "caustic::LptModel::offDiagonalCotangent",
        KOKKOS_LAMBDA(const MeshPoint& q) { w(q.index) = -2.0 * sb(q.index) * hab(q.index); });
    pullBackHessian(pr[0], pr[1]);
  }
}

void LptModel::adjoint(const Field<double>& omega, const Particles& adj, Field<double>& omegabar,
                       ParameterGradient& g) const {
  ScopedRegion region("caustic::LptModel::adjoint");
  const auto dp = _cfg.lattice;
  const auto& d = *dp;
  const int n = d.n();
  const std::size_t local = static_cast<std::size_t>(d.localNx()) * n * n;
  if (adj.size() != local)
    throw std::logic_error("LptModel::adjoint: " + std::to_string(adj.size()) + " cotangents for " +
                           std::to_string(local) + " lattice sites");
  ensureDerivatives();
  // omega(k) once: delta_L = T omega(k), and the parameters' sums below need omega(k) itself.
  Field<double> wk(dp, "caustic::LptModel::omegaK");
  Kokkos::deep_copy(wk.real(), omega.real());
  _fft->forward(wk);
  Field<double> delta(dp, "caustic::LptModel::delta");
  Kokkos::deep_copy(delta.real(), wk.real());
  multiplyByT(delta);
  growthGradient(delta, adj, g);
  Field<double> acc(dp, "caustic::LptModel::acc");
  deltaCotangent(delta, adj, acc);
  // The parameters through T: sum conj(acc) dT/dtheta omega(k) (Nyquist planes zero).
  {
    auto ca = acc.complex(), cw = wk.complex();
    for (CosmoParam p : kAllCosmoParams) {
      auto damp = _damp[static_cast<std::size_t>(p)];
      if (damp.extent(0) == 0)
        continue;
      double s = 0.0;
      d.reduceModes(
          "caustic::LptModel::transferGradient",
          KOKKOS_LAMBDA(const MeshMode& m, double& sum) {
            if (m.nyquist(n))
              return;
            const auto a = ca(m.index), b = cw(m.index);
            sum += m.weight * damp(m.m2()) * (a.real() * b.real() + a.imag() * b.imag());
          },
          s);
      g[p] += s;
    }
  }
  // omegabar = F^H (T acc)
  Kokkos::deep_copy(omegabar.real(), acc.real());
  auto cob = omegabar.complex();
  auto amp = _amp;
  d.forEachMode(
      "caustic::LptModel::noiseCotangent",
      KOKKOS_LAMBDA(const MeshMode& m) { cob(m.index) *= m.nyquist(n) ? 0.0 : amp(m.m2()); });
  _fft->backward(omegabar, false);
}

void whiteNoiseRealSpace(Field<double>& omega, const FFT<double>& fft, const NoiseOptions& opt) {
  fillWhiteNoise(omega, opt);
  fft.backward(omega, false);
  const int n = omega.decomp().n();
  const double s = 1.0 / std::pow(double(n), 1.5);
  auto r = omega.real();
  omega.decomp().forEachPoint(
      "caustic::whiteNoiseRealSpace", KOKKOS_LAMBDA(const MeshPoint& q) { r(q.index) *= s; });
}

} // namespace caustic
