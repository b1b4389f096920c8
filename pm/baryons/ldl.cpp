#include "pm/baryons/ldl.hpp"

#include "pm/core/comm.hpp"
#include "pm/core/kmath.hpp"
#include "pm/core/memory.hpp"
#include "pm/particles/distributor.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {

constexpr double kEps = 1e-8; // as the authors' code: (1 + delta + 1e-8)^gamma

KOKKOS_INLINE_FUNCTION double ldlFilter(double k, double k_l, double k_h, double n) {
  if (k <= 0)
    return 0.0;
  return km::exp(-k * k / (k_h * k_h) - k_l * k_l / (k * k) + n * km::log(k));
}

void checkParams(const std::vector<double>& p, int layers) {
  const std::size_t want = LdlPainter::kLayerParams * layers + LdlPainter::kOutputParams;
  if (p.size() != want)
    throw std::invalid_argument("LdlPainter: " + std::to_string(p.size()) + " parameters, " +
                                std::to_string(want) + " expected (" + std::to_string(layers) +
                                " layers of 5, then 3)");
  for (int l = 0; l < layers; ++l) {
    const double k_l = p[5 * l + 2], k_h = p[5 * l + 3];
    if (!(k_l > 0) || !(k_h > 0) || !std::isfinite(p[5 * l]) || !std::isfinite(p[5 * l + 1]) ||
        !std::isfinite(p[5 * l + 4]))
      throw std::invalid_argument("LdlPainter: layer " + std::to_string(l) +
                                  ": k_l and k_h must be positive and every parameter finite");
  }
  for (int i = 0; i < 3; ++i)
    if (!std::isfinite(p[5 * layers + i]))
      throw std::invalid_argument("LdlPainter: output layer parameters must be finite");
}

// A particle-sized vector (at least one row) advised huge pages before its first touch (4 KB page
// faults on tens of MB cost more than the kernels that fill it); zero-filled unless `zero` is
// false (the caller writes every row first).
Kokkos::View<double* [3]> particleBuffer(const std::string& label, std::size_t n,
                                         bool zero = true) {
  using V = Kokkos::View<double* [3]>;
  n = std::max<std::size_t>(1, n);
  return zero ? zeroedHugePageView<V>(label, n) : hugePageView<V>(label, n);
}

} // namespace

struct LdlPainter::Exchange {
  Distributor dist;
  Kokkos::View<int*> dest;        // per home particle: the rank owning its x-plane
  Kokkos::View<int*> owner;       // per x-plane: its owner
  Kokkos::View<double* [3]> x;    // the particles' copies on the owning rank
  Kokkos::View<double* [3]> a, b; // slab-order vectors (displacement, cotangents)
  Kokkos::View<double* [3]> home; // a home-order vector
  std::size_t m = 0;              // copies held here
};

double LdlPainter::filter(double k, double k_l, double k_h, double n) {
  return ldlFilter(k, k_l, k_h, n);
}

LdlPainter::LdlPainter(std::shared_ptr<const SlabDecomposition> decomp, int layers,
                       const LdlPainter* share)
    : _decomp(decomp), _layers(layers), _painter(decomp, Window::CIC), _fft(decomp) {
  if (layers < 0 || layers > 16)
    throw std::invalid_argument("LdlPainter: " + std::to_string(layers) +
                                " displacement layers; allowed 0 to 16");
  if (share) {
    if (share->_decomp.get() != _decomp.get())
      throw std::invalid_argument("LdlPainter: the painter to share buffers with is on another "
                                  "decomposition");
    _ex = share->_ex; // its plane owners too
    return;
  }
  _ex = std::make_shared<Exchange>();
  const int n = decomp->n();
  _ex->owner = Kokkos::View<int*>("caustic::ldl::owner", n);
  auto h = Kokkos::create_mirror_view(_ex->owner);
  for (int i = 0; i < n; ++i)
    h(i) = decomp->ownerOfPlane(i);
  Kokkos::deep_copy(_ex->owner, h);
}

LdlPainter::~LdlPainter() = default;

void LdlPainter::density(const Kokkos::View<double* [3]>& x, std::size_t n, Field<double>& rho) {
  Exchange& e = *_ex;
  if (e.dest.extent(0) < n)
    e.dest = hugePageView<Kokkos::View<int*>>("caustic::ldl::dest", n);
  auto dest = e.dest;
  auto owner = e.owner;
  const int nm = _decomp->n();
  const double inv_cell = 1.0 / _decomp->cell();
  Kokkos::parallel_for(
      "caustic::ldl::destinations", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(std::size_t i) {
        dest(i) = owner(SlabDecomposition::planeOfPosition(x(i, 0), inv_cell, nm));
      });
  Kokkos::fence();
  e.dist.plan(_decomp->comm().get(), dest, n, Distributor::Local::Send);
  e.m = e.dist.imported();
  if (e.x.extent(0) < e.m || e.x.extent(0) == 0) {
    const std::size_t cap = e.m + e.m / 10 + 16;
    // Not zero-filled: the rows below e.m are written (the exchange, the readouts, the adjoint's
    // fills) before they are read, and no kernel reads beyond them.
    e.x = particleBuffer("caustic::ldl::x", cap, false);
    e.a = particleBuffer("caustic::ldl::a", cap, false);
    e.b = particleBuffer("caustic::ldl::b", cap, false);
  }
  e.dist.forward({Distributor::column(x)}, {Distributor::column(e.x)});
  // Mass N_cells / N_particles per particle: the painted field is 1 + delta.
  const double nc = double(nm) * nm * nm;
  _painter.paint(rho, e.x, e.m, nc / _total);
}

void LdlPainter::forward(const Kokkos::View<double* [3]>& x, std::size_t n,
                         const std::vector<double>& params, Field<double>& out) {
  checkParams(params, _layers);
  _params = params;
  _n = n;
  double local = double(n);
  mpiCheck(MPI_Allreduce(&local, &_total, 1, MPI_DOUBLE, MPI_SUM, _decomp->comm().get()),
           "LdlPainter::forward");
  if (!(_total > 0))
    throw std::invalid_argument("LdlPainter: no particles");
  Exchange& e = *_ex;
  _xs.clear();
  {
    Kokkos::View<double* [3]> x0 = particleBuffer("caustic::ldl::x0", n, false);
    Kokkos::deep_copy(Kokkos::subview(x0, std::make_pair(std::size_t(0), n), Kokkos::ALL),
                      Kokkos::subview(x, std::make_pair(std::size_t(0), n), Kokkos::ALL));
    _xs.push_back(x0);
  }
  if (e.home.extent(0) < std::max<std::size_t>(1, n))
    e.home = particleBuffer("caustic::ldl::home", n);
  const double L = _decomp->box(), kf = 2 * M_PI / L;
  Field<double> a(_decomp, "caustic::ldl::field");
  for (int l = 0; l < _layers; ++l) {
    const double alpha = params[5 * l], gamma = params[5 * l + 1], k_l = params[5 * l + 2],
                 k_h = params[5 * l + 3], pn = params[5 * l + 4];
    const auto& xl = _xs.back();
    density(xl, n, a);
    auto r = a.real();
    _decomp->forEachPoint(
        "caustic::ldl::source", KOKKOS_LAMBDA(const MeshPoint& pt) {
          r(pt.index) = km::pow(r(pt.index) + kEps, gamma);
        });
    _fft.forward(a);
    auto c = a.complex();
    _decomp->forEachMode(
        "caustic::ldl::filter", KOKKOS_LAMBDA(const MeshMode& md) {
          c(md.index) *= ldlFilter(kf * km::sqrt(double(md.m2())), k_l, k_h, pn);
        });
    _fft.backward(a);
    _painter.readoutGradient(a, e.x, e.m, e.a, 1.0, false);
    e.dist.reverse({Distributor::column(e.a)}, {Distributor::column(e.home)});
    Kokkos::View<double* [3]> next = particleBuffer("caustic::ldl::x", n, false);
    auto s = e.home;
    Kokkos::parallel_for(
        "caustic::ldl::displace", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(std::size_t i) {
          for (int d = 0; d < 3; ++d) {
            double v = xl(i, d) + alpha * s(i, d);
            v -= L * km::floor(v / L);
            next(i, d) = v >= L ? 0.0 : v;
          }
        });
    _xs.push_back(next);
  }
  // Output layer.
  const double mu = params[5 * _layers], b1 = params[5 * _layers + 1], b0 = params[5 * _layers + 2];
  density(_xs.back(), n, out);
  auto o = out.real();
  _decomp->forEachPoint(
      "caustic::ldl::output", KOKKOS_LAMBDA(const MeshPoint& pt) {
        const double u = b1 * km::pow(o(pt.index) + kEps, mu) - b0;
        o(pt.index) = u > 0 ? u : 0.0;
      });
}

std::vector<double> LdlPainter::gradient(const Field<double>& fbar) {
  if (_xs.empty())
    throw std::logic_error("LdlPainter::gradient: no forward pass");
  Exchange& e = *_ex;
  const std::size_t n = _n;
  const int nm = _decomp->n();
  const double nc = double(nm) * nm * nm, paint_mass = nc / _total;
  const double L = _decomp->box(), kf = 2 * M_PI / L;
  std::vector<double> g(_params.size(), 0.0);
  MPI_Comm comm = _decomp->comm().get();
  Field<double> rho(_decomp, "caustic::ldl::rho"), f(_decomp, "caustic::ldl::f"),
      phi(_decomp, "caustic::ldl::phi"), bar(_decomp, "caustic::ldl::bar");
  Kokkos::View<double* [3]> xbar("caustic::ldl::xbar", std::max<std::size_t>(1, n));

  // Output layer: F = ReLU(b1 (rho + eps)^mu - b0).
  {
    const double mu = _params[5 * _layers], b1 = _params[5 * _layers + 1],
                 b0 = _params[5 * _layers + 2];
    density(_xs.back(), n, rho);
    auto r = rho.real(), fb = fbar.real(), rb = bar.real();
    const int nn = nm;
    double sums[3] = {0, 0, 0}; // mu, b1, b0
    for (int k = 0; k < 3; ++k) {
      double s = 0;
      _decomp->reduceRows(
          "caustic::ldl::output_adjoint",
          KOKKOS_LAMBDA(const MeshRow& row, double& acc) {
            for (int z = 0; z < nn; ++z) {
              const std::size_t i = row.index + z;
              const double base = r(i) + kEps, pw = km::pow(base, mu);
              if (b1 * pw - b0 <= 0)
                continue;
              acc += k == 0 ? fb(i) * b1 * pw * km::log(base) : (k == 1 ? fb(i) * pw : -fb(i));
            }
          },
          s);
      sums[k] = s;
    }
    _decomp->forEachPoint(
        "caustic::ldl::output_rhobar", KOKKOS_LAMBDA(const MeshPoint& pt) {
          const double base = r(pt.index) + kEps, pw = km::pow(base, mu);
          rb(pt.index) = b1 * pw - b0 > 0 ? fb(pt.index) * b1 * mu * pw / base : 0.0;
        });
    for (int k = 0; k < 3; ++k)
      g[5 * _layers + k] = sums[k];
    // The paint's adjoint: xbar at the copies, then home.
    Kokkos::deep_copy(e.b, 0.0);
    _painter.readoutWindowGradient(bar, e.x, e.m, e.b, paint_mass);
    e.dist.reverse({Distributor::column(e.b)}, {Distributor::column(xbar)});
  }
  for (int l = _layers - 1; l >= 0; --l) {
    const double alpha = _params[5 * l], gamma = _params[5 * l + 1], k_l = _params[5 * l + 2],
                 k_h = _params[5 * l + 3], pn = _params[5 * l + 4];
    // Recompute the layer: rho, f^ (kept in f), phi.
    density(_xs[l], n, rho);
    auto r = rho.real(), fr = f.real(), pr = phi.real(), br = bar.real();
    _decomp->forEachPoint(
        "caustic::ldl::source", KOKKOS_LAMBDA(const MeshPoint& pt) {
          fr(pt.index) = km::pow(r(pt.index) + kEps, gamma);
        });
    _fft.forward(f);
    auto fc = f.complex(), pc = phi.complex();
    _decomp->forEachMode(
        "caustic::ldl::filter", KOKKOS_LAMBDA(const MeshMode& md) {
          pc(md.index) = fc(md.index) * ldlFilter(kf * km::sqrt(double(md.m2())), k_l, k_h, pn);
        });
    _fft.backward(phi);
    // The cotangent of x_{l+1} at the copies; alpha's gradient from the displacement.
    e.dist.forward({Distributor::column(xbar)}, {Distributor::column(e.b)});
    _painter.readoutGradient(phi, e.x, e.m, e.a, 1.0, false);
    {
      auto sa = e.a, zb = e.b;
      double s = 0;
      Kokkos::parallel_reduce(
          "caustic::ldl::alpha_adjoint", Kokkos::RangePolicy<>(0, e.m),
          KOKKOS_LAMBDA(std::size_t i, double& acc) {
            acc += sa(i, 0) * zb(i, 0) + sa(i, 1) * zb(i, 1) + sa(i, 2) * zb(i, 2);
          },
          s);
      g[5 * l] = s;
    }
    // phibar = alpha R^T z; xbar_copies = alpha (dR/dx)^T z.
    _painter.readoutGradientAdjoint(bar, e.x, e.m, e.b, alpha);
    Kokkos::deep_copy(e.a, 0.0);
    _painter.readoutGradientJacobianT(phi, e.x, e.m, e.b, e.a, alpha);
    // Filter parameters: theta_bar = N^-3 sum_k dO/dtheta Re(f^ conj(phibar^)).
    _fft.forward(bar);
    auto bc = bar.complex();
    const double inv_n3 = 1.0 / nc;
    for (int k = 0; k < 3; ++k) {
      double s = 0;
      _decomp->reduceModes(
          "caustic::ldl::filter_adjoint",
          KOKKOS_LAMBDA(const MeshMode& md, double& acc) {
            const double kk = kf * km::sqrt(double(md.m2()));
            if (kk <= 0)
              return;
            const double o = ldlFilter(kk, k_l, k_h, pn);
            const double d = k == 0 ? o * (-2.0 * k_l / (kk * kk))
                                    : (k == 1 ? o * 2.0 * kk * kk / (k_h * k_h * k_h) : o * km::log(kk));
            const auto a = fc(md.index), b = bc(md.index);
            acc += md.weight * d * (a.real() * b.real() + a.imag() * b.imag());
          },
          s);
      g[5 * l + 2 + k] = s * inv_n3;
    }
    // fbar = F^-1[O phibar^] (the filter is real and even: its own adjoint).
    _decomp->forEachMode(
        "caustic::ldl::filter_transpose", KOKKOS_LAMBDA(const MeshMode& md) {
          bc(md.index) *= ldlFilter(kf * km::sqrt(double(md.m2())), k_l, k_h, pn);
        });
    _fft.backward(bar);
    // gamma and rho: f = (rho + eps)^gamma.
    {
      const int nn = nm;
      double s = 0;
      _decomp->reduceRows(
          "caustic::ldl::gamma_adjoint",
          KOKKOS_LAMBDA(const MeshRow& row, double& acc) {
            for (int z = 0; z < nn; ++z) {
              const std::size_t i = row.index + z;
              const double base = r(i) + kEps;
              acc += br(i) * km::pow(base, gamma) * km::log(base);
            }
          },
          s);
      g[5 * l + 1] = s;
    }
    _decomp->forEachPoint(
        "caustic::ldl::source_adjoint", KOKKOS_LAMBDA(const MeshPoint& pt) {
          const double base = r(pt.index) + kEps;
          br(pt.index) = br(pt.index) * gamma * km::pow(base, gamma - 1.0);
        });
    (void)pr;
    _painter.readoutWindowGradient(bar, e.x, e.m, e.a, paint_mass);
    // Back home, added to the identity path of x_{l+1} = x_l + ...
    e.dist.reverse({Distributor::column(e.a)}, {Distributor::column(e.home)});
    auto xb = xbar, hm = e.home;
    Kokkos::parallel_for(
        "caustic::ldl::xbar", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(std::size_t i) {
          for (int d = 0; d < 3; ++d)
            xb(i, d) += hm(i, d);
        });
  }
  _xbar = xbar;
  std::vector<double> out(g.size(), 0.0);
  mpiCheck(MPI_Allreduce(g.data(), out.data(), static_cast<int>(g.size()), MPI_DOUBLE, MPI_SUM, comm),
           "LdlPainter::gradient");
  return out;
}

} // namespace caustic

namespace caustic {

bool ldlLogParameter(std::size_t i, int layers) {
  return i < static_cast<std::size_t>(LdlPainter::kLayerParams * layers) &&
         (i % LdlPainter::kLayerParams == 2 || i % LdlPainter::kLayerParams == 3);
}
bool ldlOutputParameter(std::size_t i, int layers) {
  const auto first = static_cast<std::size_t>(LdlPainter::kLayerParams * layers);
  return i >= first && i < first + LdlPainter::kOutputParams;
}

LdlProduct::LdlProduct(std::shared_ptr<const SlabDecomposition> decomp,
                       const std::vector<int>& layers, double scale)
    : _decomp(std::move(decomp)), _layers(layers), _scale(scale) {
  if (layers.size() < 2)
    throw std::invalid_argument("LdlProduct: " + std::to_string(layers.size()) +
                                " factors; a product needs two or more");
  if (!std::isfinite(scale))
    throw std::invalid_argument("LdlProduct: the scale is not finite");
  for (int l : layers) {
    _painters.push_back(std::make_unique<LdlPainter>(
        _decomp, l, _painters.empty() ? nullptr : _painters.front().get()));
    _fields.push_back(std::make_unique<Field<double>>(_decomp, "caustic::ldl::factor"));
  }
}

LdlProduct::~LdlProduct() = default;

std::size_t LdlProduct::parameterCount() const {
  std::size_t n = 0;
  for (const auto& p : _painters)
    n += p->parameterCount();
  return n;
}

std::pair<std::size_t, std::size_t> LdlProduct::locate(std::size_t i) const {
  for (std::size_t f = 0; f < _painters.size(); ++f) {
    const std::size_t m = _painters[f]->parameterCount();
    if (i < m)
      return {f, i};
    i -= m;
  }
  return {_painters.size(), 0};
}

bool LdlProduct::logParameter(std::size_t i) const {
  const auto [f, j] = locate(i);
  return f < _painters.size() && _painters[f]->logParameter(j);
}
bool LdlProduct::outputParameter(std::size_t i) const {
  const auto [f, j] = locate(i);
  return f < _painters.size() && _painters[f]->outputParameter(j);
}

void LdlProduct::forward(const Kokkos::View<double* [3]>& x, std::size_t n,
                         const std::vector<double>& params, Field<double>& out) {
  if (params.size() != parameterCount())
    throw std::invalid_argument("LdlProduct: " + std::to_string(params.size()) + " parameters, " +
                                std::to_string(parameterCount()) + " expected (the factors')");
  std::size_t at = 0;
  for (std::size_t f = 0; f < _painters.size(); ++f) {
    const std::size_t m = _painters[f]->parameterCount();
    _painters[f]->forward(x, n, std::vector<double>(params.begin() + at, params.begin() + at + m),
                          *_fields[f]);
    at += m;
  }
  auto o = out.real(), first = _fields.front()->real();
  const double s = _scale;
  _decomp->forEachPoint(
      "caustic::ldl::product",
      KOKKOS_LAMBDA(const MeshPoint& pt) { o(pt.index) = s * first(pt.index); });
  for (std::size_t f = 1; f < _fields.size(); ++f) {
    auto v = _fields[f]->real();
    _decomp->forEachPoint(
        "caustic::ldl::product_factor",
        KOKKOS_LAMBDA(const MeshPoint& pt) { o(pt.index) *= v(pt.index); });
  }
}

std::vector<double> LdlProduct::gradient(const Field<double>& fbar) {
  std::vector<double> g;
  Field<double> cot(_decomp, "caustic::ldl::factor_cotangent");
  auto c = cot.real();
  auto fb = fbar.real();
  const double s = _scale;
  for (std::size_t f = 0; f < _painters.size(); ++f) {
    _decomp->forEachPoint(
        "caustic::ldl::product_cotangent",
        KOKKOS_LAMBDA(const MeshPoint& pt) { c(pt.index) = s * fb(pt.index); });
    for (std::size_t h = 0; h < _fields.size(); ++h) {
      if (h == f)
        continue;
      auto v = _fields[h]->real();
      _decomp->forEachPoint(
          "caustic::ldl::product_cotangent_factor",
          KOKKOS_LAMBDA(const MeshPoint& pt) { c(pt.index) *= v(pt.index); });
    }
    const std::vector<double> gf = _painters[f]->gradient(cot);
    g.insert(g.end(), gf.begin(), gf.end());
  }
  return g;
}

} // namespace caustic
