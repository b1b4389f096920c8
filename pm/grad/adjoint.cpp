#include "pm/grad/adjoint.hpp"

#include "pm/ic/lpt.hpp"
#include "pm/core/profiling.hpp"

#include <Kokkos_ScatterView.hpp>
#include <cmath>
#include <stdexcept>

namespace caustic {

namespace {

// Relative step of the centred differences in Omega_m of the background quantities.
constexpr double kOmegaStep = 1e-5;

// f(i, mx, my, mz, w) over the local Fourier modes: flat index, signed integer wavevector and
// the weight of the mode in a sum over the full k space (2 for the modes whose conjugate is not
// stored, 1 on the planes mz = 0 and mz = N/2).
template <class F> void forModes(const SlabDecomposition& d, const char* label, F f) {
  const int n = d.n(), ny = d.localNy(), y0 = d.yStart(), nzc = d.nzComplex();
  if (ny == 0)
    return;
  Kokkos::parallel_for(
      label, Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {ny, n, nzc}),
      KOKKOS_LAMBDA(const int ly, const int x, const int z) {
        const std::size_t i = Field<double>::complexIndex(ly, x, z, n);
        const int mx = SlabDecomposition::signedIndex(x, n);
        const int my = SlabDecomposition::signedIndex(y0 + ly, n);
        const double w = (z == 0 || 2 * z == n) ? 1.0 : 2.0;
        f(i, mx, my, z, w);
      });
  Kokkos::fence();
}

// Sum over the full k space of w Re(conj(a) b) g(i, mx, my, mz) (local modes).
template <class G>
double modeSum(const Field<double>& a, const Field<double>& b, const char* label, G g) {
  const auto& d = a.decomp();
  const int n = d.n(), ny = d.localNy(), y0 = d.yStart(), nzc = d.nzComplex();
  double sum = 0.0;
  if (ny == 0)
    return sum;
  auto ca = a.complex(), cb = b.complex();
  Kokkos::parallel_reduce(
      label, Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {ny, n, nzc}),
      KOKKOS_LAMBDA(const int ly, const int x, const int z, double& acc) {
        const std::size_t i = Field<double>::complexIndex(ly, x, z, n);
        const int mx = SlabDecomposition::signedIndex(x, n);
        const int my = SlabDecomposition::signedIndex(y0 + ly, n);
        const double w = (z == 0 || 2 * z == n) ? 1.0 : 2.0;
        acc += w * (ca(i).real() * cb(i).real() + ca(i).imag() * cb(i).imag()) * g(i, mx, my, z);
      },
      sum);
  return sum;
}

// The local real-space points (lx, y, z) with their field index and lattice (particle) index.
template <class F> void forPoints(const SlabDecomposition& d, const char* label, F f) {
  const int n = d.n(), nx = d.localNx();
  if (nx == 0)
    return;
  Kokkos::parallel_for(
      label, Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {nx, n, n}),
      KOKKOS_LAMBDA(const int lx, const int y, const int z) {
        f(Field<double>::realIndex(lx, y, z, n), (static_cast<std::size_t>(lx) * n + y) * n + z);
      });
  Kokkos::fence();
}

KOKKOS_INLINE_FUNCTION bool onNyquist(int mx, int my, int mz, int n) {
  const int h = n / 2;
  return 2 * h == n && (mx == h || my == h || mz == h);
}

// Hat basis of HatFilter: up to two (node, weight) pairs for |k|.
KOKKOS_INLINE_FUNCTION int hats(const Kokkos::View<double*>& nodes, double k, int idx[2],
                                double w[2]) {
  const int m = static_cast<int>(nodes.extent(0));
  if (k <= nodes(0)) {
    idx[0] = 0;
    w[0] = 1.0;
    return 1;
  }
  if (k >= nodes(m - 1)) {
    idx[0] = m - 1;
    w[0] = 1.0;
    return 1;
  }
  int i = 0;
  while (i + 1 < m - 1 && k >= nodes(i + 1))
    ++i;
  const double t = (k - nodes(i)) / (nodes(i + 1) - nodes(i));
  idx[0] = i;
  w[0] = 1.0 - t;
  idx[1] = i + 1;
  w[1] = t;
  return 2;
}

double localDot(const Kokkos::View<double* [3]>& a, const Kokkos::View<double* [3]>& b,
                std::size_t count) {
  double s = 0.0;
  Kokkos::parallel_reduce(
      "caustic::adjoint::dot", Kokkos::RangePolicy<>(0, count),
      KOKKOS_LAMBDA(const std::size_t i, double& acc) {
        acc += a(i, 0) * b(i, 0) + a(i, 1) * b(i, 1) + a(i, 2) * b(i, 2);
      },
      s);
  return s;
}

CosmologyParams withParams(CosmologyParams c, double Omega_m, double sigma8) {
  c.Omega_m = Omega_m;
  c.sigma8 = sigma8;
  return c;
}

void requireConfig(const DiffConfig& cfg, const DiffParams& params) {
  if (!cfg.lattice || !cfg.mesh)
    throw std::invalid_argument("DiffConfig: the lattice and the mesh decompositions are required");
  if (cfg.lpt_order != 1 && cfg.lpt_order != 2)
    throw std::invalid_argument("DiffConfig: lpt_order = " + std::to_string(cfg.lpt_order) +
                                " (allowed: 1, 2)");
  if (!(cfg.a_start > 0 && cfg.a_end > cfg.a_start && cfg.steps >= 1))
    throw std::invalid_argument("DiffConfig: need 0 < a_start < a_end and steps >= 1 (a_start = " +
                                std::to_string(cfg.a_start) +
                                ", a_end = " + std::to_string(cfg.a_end) +
                                ", steps = " + std::to_string(cfg.steps) + ")");
  if (params.filter.size() != cfg.filter_nodes.size())
    throw std::invalid_argument("DiffParams: " + std::to_string(params.filter.size()) +
                                " filter parameters for " +
                                std::to_string(cfg.filter_nodes.size()) + " filter nodes");
  if (!(params.Omega_m > 2 * kOmegaStep && params.Omega_m < 1.0 - 2 * kOmegaStep))
    throw std::invalid_argument("DiffParams: Omega_m = " + std::to_string(params.Omega_m) +
                                " (allowed: (0, 1))");
  if (!(params.sigma8 > 0))
    throw std::invalid_argument("DiffParams: sigma8 = " + std::to_string(params.sigma8) +
                                " (allowed: > 0)");
}

} // namespace

// ---------------------------------------------------------------------------------------------
// HatFilter

HatFilter::HatFilter(std::vector<double> nodes, std::vector<double> theta)
    : _nodes(std::move(nodes)), _theta(std::move(theta)) {
  if (_nodes.empty() || _nodes.size() != _theta.size())
    throw std::invalid_argument("HatFilter: " + std::to_string(_theta.size()) + " parameters for " +
                                std::to_string(_nodes.size()) +
                                " nodes (need as many, at least one)");
  for (std::size_t i = 0; i < _nodes.size(); ++i)
    if (!(_nodes[i] >= 0) || (i > 0 && !(_nodes[i] > _nodes[i - 1])))
      throw std::invalid_argument("HatFilter: the nodes must be >= 0 and increasing");
  _dnodes = Kokkos::View<double*>("caustic::HatFilter::nodes", _nodes.size());
  _dtheta = Kokkos::View<double*>("caustic::HatFilter::theta", _theta.size());
  auto hn = Kokkos::create_mirror_view(_dnodes);
  auto ht = Kokkos::create_mirror_view(_dtheta);
  for (std::size_t i = 0; i < _nodes.size(); ++i) {
    hn(i) = _nodes[i];
    ht(i) = _theta[i];
  }
  Kokkos::deep_copy(_dnodes, hn);
  Kokkos::deep_copy(_dtheta, ht);
}

void HatFilter::apply(Field<double>& phi_k, double) const {
  const double kf = phi_k.decomp().kFundamental();
  auto nodes = _dnodes, theta = _dtheta;
  auto c = phi_k.complex();
  forModes(
      phi_k.decomp(), "caustic::HatFilter::apply",
      KOKKOS_LAMBDA(std::size_t i, int mx, int my, int mz, double) {
        int idx[2];
        double w[2];
        const int m = hats(nodes, kf * km::sqrt(double(mx * mx + my * my + mz * mz)), idx, w);
        double k = 1.0;
        for (int j = 0; j < m; ++j)
          k += theta(idx[j]) * w[j];
        c(i) *= k;
      });
}

void HatFilter::accumulateGradient(const Field<double>& lhs, const Field<double>& rhs,
                                   std::vector<double>& grad) const {
  if (grad.size() != _nodes.size())
    grad.assign(_nodes.size(), 0.0);
  Kokkos::View<double*> acc("caustic::HatFilter::gradient", _nodes.size());
  auto sacc = Kokkos::Experimental::create_scatter_view(acc);
  const double kf = lhs.decomp().kFundamental();
  auto nodes = _dnodes;
  auto a = lhs.complex(), b = rhs.complex();
  forModes(
      lhs.decomp(), "caustic::HatFilter::gradient",
      KOKKOS_LAMBDA(std::size_t i, int mx, int my, int mz, double wz) {
        auto s = sacc.access();
        int idx[2];
        double w[2];
        const int m = hats(nodes, kf * km::sqrt(double(mx * mx + my * my + mz * mz)), idx, w);
        const double v = wz * (a(i).real() * b(i).real() + a(i).imag() * b(i).imag());
        for (int j = 0; j < m; ++j)
          s(idx[j]) += v * w[j];
      });
  Kokkos::Experimental::contribute(acc, sacc);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), acc);
  for (std::size_t j = 0; j < grad.size(); ++j)
    grad[j] += h(j);
}

void whiteNoiseRealSpace(Field<double>& omega, const FFT<double>& fft, const NoiseOptions& opt) {
  fillWhiteNoise(omega, opt);
  fft.backward(omega, false);
  const int n = omega.decomp().n();
  const double s = 1.0 / std::pow(double(n), 1.5);
  auto r = omega.real();
  forPoints(
      omega.decomp(), "caustic::whiteNoiseRealSpace",
      KOKKOS_LAMBDA(std::size_t f, std::size_t) { r(f) *= s; });
}

void ParamGrad::allreduce(const Comm& comm) {
  std::vector<double> v = {Omega_m, sigma8};
  v.insert(v.end(), filter.begin(), filter.end());
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM,
                         comm.get()),
           "ParamGrad::allreduce");
  Omega_m = v[0];
  sigma8 = v[1];
  for (std::size_t i = 0; i < filter.size(); ++i)
    filter[i] = v[2 + i];
}

Particles copyParticles(const Particles& p) {
  Particles out(p.size(), p.capacity());
  Kokkos::deep_copy(out.x, p.x);
  Kokkos::deep_copy(out.p, p.p);
  Kokkos::deep_copy(out.id, p.id);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Trajectory

Trajectory::Trajectory(const DiffConfig& cfg, const DiffParams& params, double total_particles)
    : _cfg(cfg), _params(params), _cosmo(withParams(cfg.cosmology, params.Omega_m, params.sigma8)),
      _total(total_particles), _migrator(cfg.mesh) {
  requireConfig(cfg, params);
  _a = timeSteps(cfg.a_start, cfg.a_end, cfg.steps, cfg.spacing);
  const int S = steps();
  // Kick factor at boundary s (closing half of step s plus opening half of step s + 1, summed in
  // the order NBody::step sums them) and drift factor of step s.
  auto factors = [&](const Cosmology& c, std::vector<double>& kick, std::vector<double>& drift) {
    const FastPMFactors f(c);
    kick.assign(S + 1, 0.0);
    drift.assign(S + 1, 0.0);
    for (int s = 0; s <= S; ++s) {
      const double as = _a[s];
      if (s == 0) {
        kick[s] = f.kick(as, midpoint(as, _a[1], cfg.spacing), as);
      } else {
        const double h = midpoint(_a[s - 1], as, cfg.spacing);
        const double close = f.kick(h, as, as);
        kick[s] = s < S ? close + f.kick(as, midpoint(as, _a[s + 1], cfg.spacing), as) : close;
        drift[s] = f.drift(_a[s - 1], as, h);
      }
    }
  };
  factors(_cosmo, _kick, _drift);
  std::vector<double> kp, dp, km_, dm;
  const double h = kOmegaStep;
  factors(Cosmology(withParams(cfg.cosmology, params.Omega_m + h, params.sigma8)), kp, dp);
  factors(Cosmology(withParams(cfg.cosmology, params.Omega_m - h, params.sigma8)), km_, dm);
  _dkick.resize(S + 1);
  _ddrift.resize(S + 1);
  for (int s = 0; s <= S; ++s) {
    _dkick[s] = (kp[s] - km_[s]) / (2 * h);
    _ddrift[s] = (dp[s] - dm[s]) / (2 * h);
  }
  GravityOptions opt;
  opt.window = cfg.window;
  opt.kernel = GravityKernel::FiniteDifference;
  _nbody = std::make_unique<NBody<double>>(cfg.mesh, _cosmo, opt, total_particles);
  if (!cfg.filter_nodes.empty()) {
    _filter = std::make_shared<HatFilter>(cfg.filter_nodes, params.filter);
    _nbody->gravity().setFilter(_filter);
  }
  _adjField = std::make_unique<Field<double>>(cfg.mesh, "caustic::Trajectory::adjoint");
}

void Trajectory::forward(Particles& parts) {
  ScopedRegion region("caustic::Trajectory::forward");
  _nbody->start(parts, _a.front());
  _nbody->run(parts, _a, _cfg.spacing);
}

void Trajectory::force(const Particles& parts, const Kokkos::View<double* [3]>& f, double a) {
  _nbody->gravity().force(parts.x, parts.size(), _total, parts.x, parts.size(), f, a, 1.0, false);
}

void Trajectory::forceVJP(const Particles& parts, const Kokkos::View<double* [3]>& z, double scale,
                          const Kokkos::View<double* [3]>& xbar, const Kokkos::View<double* [3]>& f,
                          ParamGrad& g, double a) {
  ScopedRegion region("caustic::Trajectory::forceVJP");
  auto& grav = _nbody->gravity();
  const auto& painter = grav.painter();
  const auto& fft = grav.fft();
  Field<double>& A = grav.scratch(); // density -> potential
  Field<double>& B = *_adjField;     // potential cotangent -> density cotangent
  const std::size_t np = parts.size();
  const int n = _cfg.mesh->n();
  const double mass = double(n) * n * n / _total;
  // phibar = R^T (scale z): R the gradient readout at fixed x.
  painter.readoutGradientAdjoint(B, parts.x, np, z, scale);
  painter.paint(A, parts.x, np, mass);
  fft.forward(A);
  fft.forward(B);
  if (_filter) {
    // phi = F^H K0 H F rho: d<phibar, phi>/dtheta_i = sum conj(F phibar) K0 B_i F rho.
    grav.applyPotential(A, a, false);
    if (g.filter.size() != _cfg.filter_nodes.size())
      g.filter.assign(_cfg.filter_nodes.size(), 0.0);
    _filter->accumulateGradient(B, A, g.filter);
    _filter->apply(A, a);
  } else {
    grav.applyPotential(A, a, true);
  }
  grav.applyPotential(B, a, true); // rhobar = Phi phibar (Phi self-adjoint)
  fft.backward(A, false);
  fft.backward(B, false);
  painter.readoutGradient(A, parts.x, np, f, 1.0, false);
  painter.readoutGradientJacobianT(A, parts.x, np, z, xbar, scale);
  painter.readoutWindowGradient(B, parts.x, np, xbar, mass);
  // F is proportional to Omega_m (the Poisson prefactor).
  g.Omega_m += scale * localDot(z, f, np) / _params.Omega_m;
}

void Trajectory::kick(Particles& parts, int s) {
  _migrator(parts);
  _nbody->gravity().force(parts.x, parts.size(), _total, parts.x, parts.size(), parts.p, _a[s],
                          _kick[s], true);
}

void Trajectory::drift(Particles& parts, int s) {
  caustic::drift(parts, _drift[s], _cfg.mesh->box());
  _migrator(parts);
}

void Trajectory::kickReverse(Particles& parts, Particles& adj, int s, ParamGrad& g) {
  ScopedRegion region("caustic::Trajectory::kickReverse");
  if (_f.extent(0) < parts.size())
    _f = Kokkos::View<double* [3]>("caustic::Trajectory::force", parts.capacity());
  const std::size_t np = parts.size();
  // p_after = p + k F(x): xbar += k (dF/dx)^T pbar; pbar unchanged.
  forceVJP(parts, adj.p, _kick[s], adj.x, _f, g, _a[s]);
  g.Omega_m += _dkick[s] * localDot(adj.p, _f, np);
  auto p = parts.p;
  auto f = _f;
  const double k = _kick[s];
  Kokkos::parallel_for(
      "caustic::Trajectory::unkick", Kokkos::RangePolicy<>(0, np), KOKKOS_LAMBDA(std::size_t i) {
        for (int c = 0; c < 3; ++c)
          p(i, c) -= k * f(i, c);
      });
  Kokkos::fence();
}

void Trajectory::driftReverse(Particles& parts, Particles& adj, int s, ParamGrad& g) {
  ScopedRegion region("caustic::Trajectory::driftReverse");
  const std::size_t np = parts.size();
  // x_after = x + d p: pbar += d xbar; xbar unchanged.
  g.Omega_m += _ddrift[s] * localDot(adj.x, parts.p, np);
  const double d = _drift[s];
  auto xb = adj.x, pb = adj.p;
  Kokkos::parallel_for(
      "caustic::Trajectory::driftAdjoint", Kokkos::RangePolicy<>(0, np),
      KOKKOS_LAMBDA(std::size_t i) {
        for (int c = 0; c < 3; ++c)
          pb(i, c) += d * xb(i, c);
      });
  Kokkos::fence();
  caustic::drift(parts, -d, _cfg.mesh->box());
  _migrator(parts, &adj);
}

void Trajectory::reverse(Particles& parts, Particles& adj, ParamGrad& g) {
  ScopedRegion region("caustic::Trajectory::reverse");
  if (adj.size() != parts.size())
    throw std::logic_error("Trajectory::reverse: cotangents and particles differ in number");
  adj.reserve(parts.capacity());
  _migrator(parts, &adj);
  for (int s = steps(); s >= 0; --s) {
    kickReverse(parts, adj, s, g);
    if (s > 0)
      driftReverse(parts, adj, s, g);
  }
}

// ---------------------------------------------------------------------------------------------
// LptModel

LptModel::LptModel(const DiffConfig& cfg, const DiffParams& params)
    : _cfg(cfg), _params(params), _cosmo(withParams(cfg.cosmology, params.Omega_m, params.sigma8)) {
  requireConfig(cfg, params);
  const auto& d = *cfg.lattice;
  _fft = std::make_unique<FFT<double>>(cfg.lattice);
  const int n = d.n();
  const double kf = d.kFundamental(), volume = d.box() * d.box() * d.box();
  const double n32 = std::pow(double(n), 1.5);
  const int m2max = 3 * (n / 2) * (n / 2);
  const double h = kOmegaStep;
  const LinearPower p0 = LinearPower::eisensteinHu(_cosmo.params());
  const LinearPower pp =
      LinearPower::eisensteinHu(withParams(cfg.cosmology, params.Omega_m + h, params.sigma8));
  const LinearPower pm =
      LinearPower::eisensteinHu(withParams(cfg.cosmology, params.Omega_m - h, params.sigma8));
  _amp = Kokkos::View<double*>("caustic::LptModel::T", m2max + 1);
  _damp = Kokkos::View<double*>("caustic::LptModel::dT", m2max + 1);
  auto ha = Kokkos::create_mirror_view(_amp);
  auto hd = Kokkos::create_mirror_view(_damp);
  ha(0) = hd(0) = 0.0;
  for (int m2 = 1; m2 <= m2max; ++m2) {
    const double k = kf * std::sqrt(double(m2));
    ha(m2) = n32 * std::sqrt(p0(k) / volume);
    hd(m2) = n32 * (std::sqrt(pp(k) / volume) - std::sqrt(pm(k) / volume)) / (2 * h);
  }
  Kokkos::deep_copy(_amp, ha);
  Kokkos::deep_copy(_damp, hd);
  // Growth and velocity factors at a_start (as lptParticles) and their Omega_m derivatives.
  const double a = cfg.a_start;
  auto growth = [&](const Cosmology& c, double out[4]) {
    out[0] = c.D1(a);
    out[1] = cfg.lpt_order >= 2 ? c.D2(a) : 0.0;
    out[2] = a * a * c.E(a) * out[0] * c.f1(a);
    out[3] = cfg.lpt_order >= 2 ? a * a * c.E(a) * out[1] * c.f2(a) : 0.0;
  };
  double g0[4], gp[4], gm[4];
  growth(_cosmo, g0);
  growth(Cosmology(withParams(cfg.cosmology, params.Omega_m + h, params.sigma8)), gp);
  growth(Cosmology(withParams(cfg.cosmology, params.Omega_m - h, params.sigma8)), gm);
  _d1 = g0[0];
  _d2 = g0[1];
  _v1 = g0[2];
  _v2 = g0[3];
  _dd1 = (gp[0] - gm[0]) / (2 * h);
  _dd2 = (gp[1] - gm[1]) / (2 * h);
  _dv1 = (gp[2] - gm[2]) / (2 * h);
  _dv2 = (gp[3] - gm[3]) / (2 * h);
}

void LptModel::transfer(const Field<double>& omega, Field<double>& f, bool dOmega) const {
  Kokkos::deep_copy(f.real(), omega.real());
  _fft->forward(f);
  const int n = f.decomp().n();
  auto amp = dOmega ? _damp : _amp;
  auto c = f.complex();
  forModes(
      f.decomp(), "caustic::LptModel::transfer",
      KOKKOS_LAMBDA(std::size_t i, int mx, int my, int mz, double) {
        c(i) *= onNyquist(mx, my, mz, n) ? 0.0 : amp(mx * mx + my * my + mz * mz);
      });
}

Particles LptModel::forward(const Field<double>& omega) const {
  ScopedRegion region("caustic::LptModel::forward");
  Field<double> delta(_cfg.lattice, "caustic::LptModel::delta");
  transfer(omega, delta, false);
  const LptFields<double> lpt = lptDisplacements(delta, *_fft, _cfg.lpt_order);
  return lptParticles(lpt, _cosmo, _cfg.a_start, _cfg.lattice_offset);
}

void LptModel::adjoint(const Field<double>& omega, const Particles& adj, Field<double>& omegabar,
                       ParamGrad& g) const {
  ScopedRegion region("caustic::LptModel::adjoint");
  const auto dp = _cfg.lattice;
  const auto& d = *dp;
  const int n = d.n();
  const std::size_t local = static_cast<std::size_t>(d.localNx()) * n * n;
  if (adj.size() != local)
    throw std::logic_error("LptModel::adjoint: " + std::to_string(adj.size()) + " cotangents for " +
                           std::to_string(local) + " lattice sites");
  const bool second = _cfg.lpt_order >= 2;
  const double kf = d.kFundamental(), n3 = double(n) * n * n;
  auto xb = adj.x, pb = adj.p;
  Field<double> delta(dp, "caustic::LptModel::delta");
  transfer(omega, delta, false);

  // Omega_m through the growth and velocity factors: sum xbar.(dD psi) + pbar.(dv psi).
  {
    const LptFields<double> lpt = lptDisplacements(delta, *_fft, _cfg.lpt_order);
    for (int c = 0; c < 3; ++c) {
      auto p1 = lpt.psi1[c]->real();
      auto p2 = second ? lpt.psi2[c]->real() : p1;
      const double dd1 = _dd1, dd2 = _dd2, dv1 = _dv1, dv2 = _dv2;
      double s = 0.0;
      if (d.localNx() > 0)
        Kokkos::parallel_reduce(
            "caustic::LptModel::growthGradient",
            Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {d.localNx(), n, n}),
            KOKKOS_LAMBDA(const int lx, const int y, const int z, double& acc) {
              const std::size_t f = Field<double>::realIndex(lx, y, z, n);
              const std::size_t i = (static_cast<std::size_t>(lx) * n + y) * n + z;
              acc += (dd1 * xb(i, c) + dv1 * pb(i, c)) * p1(f);
              if (second)
                acc += (dd2 * xb(i, c) + dv2 * pb(i, c)) * p2(f);
            },
            s);
      g.Omega_m += s;
    }
  }

  // acc(k) = sum over the pieces of conj(K) F(cotangent): omegabar = F^H (T acc).
  Field<double> acc(dp, "caustic::LptModel::acc");
  Field<double> work(dp, "caustic::LptModel::work");
  acc.setZero();
  auto cacc = acc.complex();
  auto cwork = work.complex();
  // Adds conj(K) F(work) with K = kernel(mx, my, mz) (complex, incl. 1/N^3).
  auto pullBack = [&](auto kernel) {
    _fft->forward(work);
    forModes(
        d, "caustic::LptModel::pullBack",
        KOKKOS_LAMBDA(std::size_t i, int mx, int my, int mz, double) {
          cacc(i) += Kokkos::conj(kernel(mx, my, mz)) * cwork(i);
        });
  };
  // Cotangents of psi1 and psi2 on the lattice: xbar D + pbar v.
  auto cotangentOf = [&](int c, double D, double v) {
    auto w = work.real();
    forPoints(
        d, "caustic::LptModel::psiCotangent",
        KOKKOS_LAMBDA(std::size_t f, std::size_t i) { w(f) = D * xb(i, c) + v * pb(i, c); });
  };
  for (int c = 0; c < 3; ++c) {
    cotangentOf(c, _d1, _v1);
    // psi1_c = F^H (i k_c / k^2 / N^3) delta
    pullBack(KOKKOS_LAMBDA(int mx, int my, int mz) {
      const int m2 = mx * mx + my * my + mz * mz;
      const int mc = c == 0 ? mx : (c == 1 ? my : mz);
      if (m2 == 0)
        return Kokkos::complex<double>(0.0, 0.0);
      return Kokkos::complex<double>(0.0, double(mc) / (kf * m2 * n3));
    });
  }
  if (second) {
    // S2bar = sum_c F^H conj(K2_c) F psi2bar_c, K2_c = -i k_c / k^2 / N^3 (Nyquist zeroed).
    Field<double> sbar(dp, "caustic::LptModel::S2bar");
    sbar.setZero();
    auto csb = sbar.complex();
    for (int c = 0; c < 3; ++c) {
      cotangentOf(c, _d2, _v2);
      _fft->forward(work);
      forModes(
          d, "caustic::LptModel::S2pullBack",
          KOKKOS_LAMBDA(std::size_t i, int mx, int my, int mz, double) {
            const int m2 = mx * mx + my * my + mz * mz;
            if (m2 == 0 || onNyquist(mx, my, mz, n))
              return;
            const int mc = c == 0 ? mx : (c == 1 ? my : mz);
            csb(i) += Kokkos::complex<double>(0.0, double(mc) / (kf * m2 * n3)) * cwork(i);
          });
    }
    _fft->backward(sbar, false);
    // Hessians h_ab = F^H (k_a k_b / k^2 / N^3) delta, recomputed.
    // k_a k_b / k^2 times `scale` (1 with a normalised inverse transform, 1/N^3 as a pull-back).
    auto hessianKernel = [](int a, int b, double scale) {
      return KOKKOS_LAMBDA(int mx, int my, int mz) {
        const int m[3] = {mx, my, mz};
        const int m2 = mx * mx + my * my + mz * mz;
        return Kokkos::complex<double>(m2 == 0 ? 0.0 : scale * double(m[a] * m[b]) / m2, 0.0);
      };
    };
    auto hessian = [&](Field<double>& out, int a, int b) {
      auto kern = hessianKernel(a, b, 1.0);
      auto cin = delta.complex();
      auto cout = out.complex();
      forModes(
          d, "caustic::LptModel::hessian",
          KOKKOS_LAMBDA(std::size_t i, int mx, int my, int mz, double) {
            cout(i) = kern(mx, my, mz) * cin(i);
          });
      _fft->backward(out);
    };
    std::array<std::unique_ptr<Field<double>>, 3> h;
    for (int c = 0; c < 3; ++c) {
      h[c] = std::make_unique<Field<double>>(dp, "caustic::LptModel::hessian");
      hessian(*h[c], c, c);
    }
    auto sb = sbar.real();
    // S2 = h00 h11 + h00 h22 + h11 h22 - h01^2 - h02^2 - h12^2.
    for (int c = 0; c < 3; ++c) {
      auto ha = h[(c + 1) % 3]->real(), hb = h[(c + 2) % 3]->real();
      auto w = work.real();
      forPoints(
          d, "caustic::LptModel::diagonalCotangent",
          KOKKOS_LAMBDA(std::size_t f, std::size_t) { w(f) = sb(f) * (ha(f) + hb(f)); });
      pullBack(hessianKernel(c, c, 1.0 / n3));
    }
    const int pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
    for (auto& pr : pairs) {
      hessian(*h[0], pr[0], pr[1]);
      auto hab = h[0]->real();
      auto w = work.real();
      forPoints(
          d, "caustic::LptModel::offDiagonalCotangent",
          KOKKOS_LAMBDA(std::size_t f, std::size_t) { w(f) = -2.0 * sb(f) * hab(f); });
      pullBack(hessianKernel(pr[0], pr[1], 1.0 / n3));
    }
  }
  // sigma8 and Omega_m through T: sum conj(acc) dT omega(k).
  {
    transfer(omega, work, true); // dT/dOmega_m omega(k)
    g.Omega_m += modeSum(
        acc, work, "caustic::LptModel::dOmega",
        KOKKOS_LAMBDA(std::size_t, int, int, int) { return 1.0; });
    g.sigma8 += modeSum(
                    acc, delta, "caustic::LptModel::dSigma8",
                    KOKKOS_LAMBDA(std::size_t, int, int, int) { return 1.0; }) /
                _params.sigma8;
  }
  // omegabar = F^H (T acc)
  Kokkos::deep_copy(omegabar.real(), acc.real());
  auto cob = omegabar.complex();
  auto amp = _amp;
  forModes(
      d, "caustic::LptModel::noiseCotangent",
      KOKKOS_LAMBDA(std::size_t i, int mx, int my, int mz, double) {
        cob(i) *= onNyquist(mx, my, mz, n) ? 0.0 : amp(mx * mx + my * my + mz * mz);
      });
  _fft->backward(omegabar, false);
}

// ---------------------------------------------------------------------------------------------
// DiffPM

DiffPM::DiffPM(DiffConfig cfg) : _cfg(std::move(cfg)) {
  requireConfig(_cfg, DiffParams{0.3, 0.8, std::vector<double>(_cfg.filter_nodes.size(), 0.0)});
}

double DiffPM::totalParticles() const {
  const double n = _cfg.lattice->n();
  return n * n * n;
}

const Particles& DiffPM::forward(const Field<double>& noise, const DiffParams& params) {
  ScopedRegion region("caustic::DiffPM::forward");
  requireConfig(_cfg, params);
  _params = params;
  if (!_noise)
    _noise = std::make_unique<Field<double>>(_cfg.lattice, "caustic::DiffPM::noise");
  Kokkos::deep_copy(_noise->real(), noise.real());
  {
    const LptModel lpt(_cfg, params);
    _initial = lpt.forward(noise);
  }
  Particles parts = copyParticles(_initial);
  {
    Trajectory traj(_cfg, params, totalParticles());
    traj.forward(parts);
  }
  Migrator(_cfg.lattice).toLattice(parts);
  _state = std::move(parts);
  return _state;
}

DiffGradient DiffPM::gradient(const Particles& cot) {
  ScopedRegion region("caustic::DiffPM::gradient");
  if (!_noise)
    throw std::logic_error("DiffPM::gradient: no forward run");
  if (cot.size() != _state.size())
    throw std::invalid_argument("DiffPM::gradient: " + std::to_string(cot.size()) +
                                " cotangents for " + std::to_string(_state.size()) + " particles");
  ParamGrad g;
  g.filter.assign(_cfg.filter_nodes.size(), 0.0);
  Particles parts = copyParticles(_state);
  Particles adj = copyParticles(cot);
  adj.reserve(parts.capacity());
  {
    Trajectory traj(_cfg, _params, totalParticles());
    traj.reverse(parts, adj, g);
  }
  Migrator(_cfg.lattice).toLattice(parts, &adj);

  // Reconstruction against the true initial state (both in lattice order).
  {
    const auto& d = *_cfg.lattice;
    const int n = d.n();
    const double L = d.box(), cell = d.cell(), off = _cfg.lattice_offset;
    const int x0 = d.xStart();
    auto xr = parts.x, pr = parts.p, xt = _initial.x, pt = _initial.p;
    double mx = 0.0, mp = 0.0, sx = 0.0, sp = 0.0;
    const std::size_t np = parts.size();
    Kokkos::parallel_reduce(
        "caustic::DiffPM::reconstruction", Kokkos::RangePolicy<>(0, np),
        KOKKOS_LAMBDA(std::size_t i, double& ax, double& ap, double& bx, double& bp) {
          const std::size_t lx = i / (std::size_t(n) * n), y = (i / n) % n, z = i % n;
          const double q[3] = {(x0 + double(lx)) * cell + off, double(y) * cell + off,
                               double(z) * cell + off};
          for (int c = 0; c < 3; ++c) {
            double dx = xr(i, c) - xt(i, c);
            dx -= L * km::floor(dx / L + 0.5);
            double s = xt(i, c) - q[c];
            s -= L * km::floor(s / L + 0.5);
            ax = km::fmax(ax, km::fabs(dx));
            ap = km::fmax(ap, km::fabs(pr(i, c) - pt(i, c)));
            bx += s * s;
            bp += pt(i, c) * pt(i, c);
          }
        },
        Kokkos::Max<double>(mx), Kokkos::Max<double>(mp), sx, sp);
    double mm[2] = {mx, mp}, ss[2] = {sx, sp};
    const MPI_Comm comm = d.comm().get();
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, mm, 2, MPI_DOUBLE, MPI_MAX, comm), "DiffPM::gradient");
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, ss, 2, MPI_DOUBLE, MPI_SUM, comm), "DiffPM::gradient");
    _rec.max_dx = mm[0];
    _rec.max_dp = mm[1];
    _rec.rms_displacement = std::sqrt(ss[0] / totalParticles());
    _rec.rms_momentum = std::sqrt(ss[1] / totalParticles());
  }

  DiffGradient out;
  out.noise = std::make_unique<Field<double>>(_cfg.lattice, "caustic::DiffPM::noiseGradient");
  {
    const LptModel lpt(_cfg, _params);
    lpt.adjoint(*_noise, adj, *out.noise, g);
  }
  g.allreduce(_cfg.lattice->comm());
  out.Omega_m = g.Omega_m;
  out.sigma8 = g.sigma8;
  out.filter = g.filter;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Losses

double particleLoss(const Particles& state, const Particles& target, double box, double weight_p,
                    Particles& cot, const Comm& comm) {
  const std::size_t np = state.size();
  if (target.size() != np)
    throw std::invalid_argument("particleLoss: " + std::to_string(target.size()) + " targets for " +
                                std::to_string(np) + " particles");
  cot = Particles(np, state.capacity());
  auto x = state.x, p = state.p, tx = target.x, tp = target.p, cx = cot.x, cp = cot.p;
  auto id = state.id, tid = target.id;
  double value = 0.0;
  long mismatched = 0;
  Kokkos::parallel_reduce(
      "caustic::particleLoss", Kokkos::RangePolicy<>(0, np),
      KOKKOS_LAMBDA(std::size_t i, double& acc, long& bad) {
        if (id(i) != tid(i))
          ++bad;
        for (int c = 0; c < 3; ++c) {
          double dx = x(i, c) - tx(i, c);
          dx -= box * km::floor(dx / box + 0.5);
          const double dp = p(i, c) - tp(i, c);
          acc += dx * dx + weight_p * dp * dp;
          cx(i, c) = 2.0 * dx;
          cp(i, c) = 2.0 * weight_p * dp;
        }
      },
      value, mismatched);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_DOUBLE, MPI_SUM, comm.get()), "particleLoss");
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &mismatched, 1, MPI_LONG, MPI_SUM, comm.get()),
           "particleLoss");
  if (mismatched)
    throw std::invalid_argument("particleLoss: state and target are not in the same (lattice) "
                                "order: " +
                                std::to_string(mismatched) + " particle IDs differ");
  Kokkos::deep_copy(cot.id, state.id);
  return value;
}

FieldChi2Loss::FieldChi2Loss(std::shared_ptr<const SlabDecomposition> mesh,
                             std::shared_ptr<const SlabDecomposition> lattice, Window window,
                             const Field<double>& observed, const Field<double>& sigma,
                             const Field<double>* mask)
    : _mesh(std::move(mesh)), _lattice(std::move(lattice)), _painter(_mesh, window), _obs(observed),
      _sigma(sigma), _mask(mask) {}

void FieldChi2Loss::density(const Particles& state, Field<double>& delta) const {
  Particles parts = copyParticles(state);
  Migrator toMesh(_mesh);
  toMesh(parts);
  const double n = _lattice->n();
  paintDensityContrast(delta, _painter, parts, n * n * n);
}

double FieldChi2Loss::operator()(const Particles& state, Particles& cot) const {
  ScopedRegion region("caustic::FieldChi2Loss");
  Particles parts = copyParticles(state);
  cot = Particles(parts.size(), parts.capacity());
  Migrator toMesh(_mesh);
  toMesh(parts, &cot);
  const double nl = _lattice->n();
  const double total = nl * nl * nl;
  Field<double> delta(_mesh, "caustic::FieldChi2Loss::delta");
  paintDensityContrast(delta, _painter, parts, total);
  auto r = delta.real(), obs = _obs.real(), sig = _sigma.real();
  const bool masked = _mask != nullptr;
  auto mask = masked ? _mask->real() : r;
  const int n = _mesh->n();
  double chi2 = 0.0;
  if (_mesh->localNx() > 0)
    Kokkos::parallel_reduce(
        "caustic::FieldChi2Loss::chi2",
        Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {_mesh->localNx(), n, n}),
        KOKKOS_LAMBDA(const int lx, const int y, const int z, double& acc) {
          const std::size_t f = Field<double>::realIndex(lx, y, z, n);
          const double m = masked ? mask(f) : 1.0;
          const double res = r(f) - obs(f);
          const double iv = 1.0 / (sig(f) * sig(f));
          acc += m * res * res * iv;
          r(f) = 2.0 * m * res * iv; // dchi2/ddelta
        },
        chi2);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &chi2, 1, MPI_DOUBLE, MPI_SUM, _mesh->comm().get()),
           "FieldChi2Loss");
  // delta = m sum W(x - g) - 1 with m = n^3 / N.
  const double mass = double(n) * n * n / total;
  _painter.readoutWindowGradient(delta, parts.x, parts.size(), cot.x, mass);
  Migrator(_lattice).toLattice(parts, &cot);
  return chi2;
}

} // namespace caustic
