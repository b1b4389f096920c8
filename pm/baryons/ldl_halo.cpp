#include "pm/baryons/ldl_halo.hpp"

#include "pm/core/comm.hpp"
#include "pm/core/kmath.hpp"

#include <Kokkos_ScatterView.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace caustic {

namespace {

constexpr double kRhoCrit = 2.77536627e11; // (Msun/h) / (Mpc/h)^3

// The catalogue and the layout as device views, and the visit of every (halo, mesh point within
// the last radius node) pair of this rank's x-planes.
struct HaloViews {
  Kokkos::View<double* [3]> pos;
  Kokkos::View<double*> radius;
  Kokkos::View<int*> m0;        // the first mass node of the halo's segment
  Kokkos::View<double* [2]> mw; // its weights at nodes m0, m0 + 1
  Kokkos::View<double*> rnodes; // r / R
  int nm = 0, nj = 0;           // mass nodes, radius parameters (radius nodes - 1)
  std::size_t count = 0;

  HaloViews(const LdlHaloSet& h, const LdlHaloLayout& l, double box)
      : pos("caustic::ldl_halo::pos", h.size()), radius("caustic::ldl_halo::radius", h.size()),
        m0("caustic::ldl_halo::m0", h.size()), mw("caustic::ldl_halo::mw", h.size()),
        rnodes("caustic::ldl_halo::rnodes", l.radius_nodes.size()),
        nm(static_cast<int>(l.mass_nodes.size())), nj(static_cast<int>(l.radius_nodes.size()) - 1),
        count(h.size()) {
    auto hp = Kokkos::create_mirror_view(pos);
    auto hr = Kokkos::create_mirror_view(radius);
    auto hm = Kokkos::create_mirror_view(m0);
    auto hw = Kokkos::create_mirror_view(mw);
    auto hn = Kokkos::create_mirror_view(rnodes);
    const double reach = l.radius_nodes.back();
    const auto& mn = l.mass_nodes;
    for (std::size_t i = 0; i < h.size(); ++i) {
      for (int d = 0; d < 3; ++d) {
        double x = std::fmod(h.pos[3 * i + d], box);
        hp(i, d) = x < 0 ? x + box : x;
      }
      hr(i) = h.radius[i];
      if (!(h.radius[i] > 0) || !(reach * h.radius[i] < 0.5 * box))
        throw std::invalid_argument(
            "LdlHaloModel: halo " + std::to_string(i) + " of R = " + std::to_string(h.radius[i]) +
            " Mpc/h: the layer reaches " + std::to_string(reach) +
            " R, which must be below half the box (" + std::to_string(0.5 * box) + " Mpc/h)");
      const double lm = h.log10_mass[i];
      int s = 0;
      double t = 0;
      if (lm >= mn.back()) {
        s = nm - 2;
        t = 1;
      } else if (lm > mn.front()) {
        while (s + 2 < nm && lm >= mn[s + 1])
          ++s;
        t = (lm - mn[s]) / (mn[s + 1] - mn[s]);
      }
      hm(i) = s;
      hw(i, 0) = 1 - t;
      hw(i, 1) = t;
    }
    for (std::size_t j = 0; j < l.radius_nodes.size(); ++j)
      hn(j) = l.radius_nodes[j];
    Kokkos::deep_copy(pos, hp);
    Kokkos::deep_copy(radius, hr);
    Kokkos::deep_copy(m0, hm);
    Kokkos::deep_copy(mw, hw);
    Kokkos::deep_copy(rnodes, hn);
  }

  // Halo h's term sum_ij theta_ij hatM_i hatR_j at a point of radius segment j, position t in it
  // (the two mass nodes of its segment; hat r_J is not a parameter).
  KOKKOS_INLINE_FUNCTION double term(const Kokkos::View<double*>& theta, std::size_t h, int j,
                                     double t) const {
    double v = 0;
    for (int q = 0; q < 2; ++q) {
      const int row = (m0(h) + q) * nj;
      const double next = j + 1 < nj ? theta(row + j + 1) : 0.0;
      v += mw(h, q) * ((1 - t) * theta(row + j) + t * next);
    }
    return v;
  }
  // a(theta index) += w d term / d theta (a: a ScatterView access or a plain view).
  template <class A>
  KOKKOS_INLINE_FUNCTION void addGradient(A& a, std::size_t h, int j, double t, double w) const {
    for (int q = 0; q < 2; ++q) {
      const int row = (m0(h) + q) * nj;
      a(row + j) += mw(h, q) * (1 - t) * w;
      if (j + 1 < nj)
        a(row + j + 1) += mw(h, q) * t * w;
    }
  }
};

// The parameters params[from ..] as a device view (the hats' coefficients).
Kokkos::View<double*> thetaView(const std::vector<double>& params, std::size_t from) {
  Kokkos::View<double*> theta("caustic::ldl_halo::theta", params.size() - from);
  auto h = Kokkos::create_mirror_view(theta);
  for (std::size_t i = from; i < params.size(); ++i)
    h(i - from) = params[i];
  Kokkos::deep_copy(theta, h);
  return theta;
}

// A per-parameter accumulator summed over the ranks (the same on every rank).
std::vector<double> summedOverRanks(const Kokkos::View<double*>& acc, MPI_Comm comm,
                                    const char* where) {
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), acc);
  std::vector<double> loc(acc.extent(0)), all(acc.extent(0));
  for (std::size_t i = 0; i < loc.size(); ++i)
    loc[i] = h(i);
  mpiCheck(MPI_Allreduce(loc.data(), all.data(), static_cast<int>(loc.size()), MPI_DOUBLE, MPI_SUM,
                         comm),
           where);
  return all;
}

// f(h, index, j, t) for every halo h and mesh point of this rank within rnodes[nj] R_h of it,
// with the point's radius segment j (rnodes[j] <= r / R < rnodes[j + 1]) and t its position in
// the segment, as one labelled kernel over the haloes (f must add to shared data atomically).
template <class F>
void forEachHaloPoint(const char* label, const SlabDecomposition& d, const HaloViews& hv,
                      const F& f) {
  const int n = d.n(), x0 = d.xStart(), nx = d.localNx();
  const double cell = d.box() / n;
  auto pos = hv.pos;
  auto radius = hv.radius;
  auto rn = hv.rnodes;
  const int nj = hv.nj;
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<>(0, hv.count), KOKKOS_LAMBDA(const std::size_t h) {
        const double rr = radius(h), reach = rn(nj) * rr;
        const double cx = pos(h, 0), cy = pos(h, 1), cz = pos(h, 2);
        const long ax = static_cast<long>(km::floor((cx - reach) / cell)),
                   bx = static_cast<long>(km::ceil((cx + reach) / cell));
        const long ay = static_cast<long>(km::floor((cy - reach) / cell)),
                   by = static_cast<long>(km::ceil((cy + reach) / cell));
        const long az = static_cast<long>(km::floor((cz - reach) / cell)),
                   bz = static_cast<long>(km::ceil((cz + reach) / cell));
        for (long ix = ax; ix <= bx; ++ix) {
          const int gx = static_cast<int>(((ix % n) + n) % n);
          if (gx < x0 || gx >= x0 + nx)
            continue;
          const double dx = ix * cell - cx;
          for (long iy = ay; iy <= by; ++iy) {
            const int gy = static_cast<int>(((iy % n) + n) % n);
            const double dy = iy * cell - cy;
            for (long iz = az; iz <= bz; ++iz) {
              const double dz = iz * cell - cz;
              const double r = km::sqrt(dx * dx + dy * dy + dz * dz) / rr;
              if (r >= rn(nj))
                continue;
              int j = 0;
              while (j + 1 < nj && r >= rn(j + 1))
                ++j;
              const double t = (r - rn(j)) / (rn(j + 1) - rn(j));
              const int gz = static_cast<int>(((iz % n) + n) % n);
              f(h, Field<double>::realIndex(gx - x0, gy, gz, n), j, t);
            }
          }
        }
      });
}

} // namespace

LdlHaloSet ldlHaloSet(const std::vector<double>& pos, const std::vector<double>& mass,
                      double omega_m) {
  if (pos.size() != 3 * mass.size())
    throw std::invalid_argument("ldlHaloSet: " + std::to_string(pos.size()) + " coordinates for " +
                                std::to_string(mass.size()) + " haloes");
  if (!(omega_m > 0))
    throw std::invalid_argument("ldlHaloSet: Omega_m = " + std::to_string(omega_m));
  LdlHaloSet s;
  s.pos = pos;
  const double rho_m = kRhoCrit * omega_m;
  for (std::size_t i = 0; i < mass.size(); ++i) {
    if (!(mass[i] > 0) || !std::isfinite(mass[i]))
      throw std::invalid_argument("ldlHaloSet: halo " + std::to_string(i) + " has mass " +
                                  std::to_string(mass[i]));
    s.log10_mass.push_back(std::log10(mass[i]));
    s.radius.push_back(std::cbrt(3 * mass[i] / (4 * M_PI * 200 * rho_m)));
  }
  return s;
}

void LdlHaloLayout::check(const std::string& what) const {
  auto increasing = [](const std::vector<double>& v) {
    for (std::size_t i = 0; i < v.size(); ++i)
      if (!std::isfinite(v[i]) || (i > 0 && !(v[i] > v[i - 1])))
        return false;
    return true;
  };
  if (mass_nodes.size() < 2 || !increasing(mass_nodes))
    throw std::invalid_argument(what + ": mass nodes must be two or more finite log10 M, "
                                       "increasing");
  if (radius_nodes.size() < 2 || radius_nodes.front() != 0.0 || !increasing(radius_nodes))
    throw std::invalid_argument(what + ": radius nodes must start at 0 and increase (two or "
                                       "more, in units of R200m)");
}

LdlHaloLayout LdlHaloLayout::defaults() {
  return {{11.5, 12.0, 12.5, 13.0, 13.5, 14.0, 14.5}, {0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0}};
}

LdlHaloWrapper::LdlHaloWrapper(std::shared_ptr<const SlabDecomposition> decomp,
                               std::unique_ptr<LdlModel> inner, LdlHaloLayout layout,
                               const char* what)
    : _what(what), _decomp(std::move(decomp)), _inner(std::move(inner)),
      _layout(std::move(layout)) {
  if (!_inner)
    throw std::invalid_argument(std::string(what) + ": no painter");
  _layout.check(what);
}

std::size_t LdlHaloWrapper::startForward(const std::vector<double>& params) {
  const std::size_t ni = _inner->parameterCount(), nt = _layout.parameterCount();
  if (params.size() != ni + nt)
    throw std::invalid_argument(std::string(_what) + ": " + std::to_string(params.size()) +
                                " parameters, " + std::to_string(ni + nt) + " expected (" +
                                std::to_string(ni) + " of the painter, then " + std::to_string(nt) +
                                " of the haloes' hats)");
  if (!_halos)
    throw std::invalid_argument(std::string(_what) + ": no halo catalogue");
  for (std::size_t i = ni; i < params.size(); ++i)
    if (!std::isfinite(params[i]))
      throw std::invalid_argument(std::string(_what) + ": a halo parameter is not finite");
  _used = _halos;
  return ni;
}

void LdlHaloWrapper::startGradient() const {
  if (!_used)
    throw std::logic_error(std::string(_what) + "::gradient before a forward");
}

LdlHaloModel::LdlHaloModel(std::shared_ptr<const SlabDecomposition> decomp,
                           std::unique_ptr<LdlModel> inner, LdlHaloLayout layout)
    : LdlHaloWrapper(decomp, std::move(inner), std::move(layout), "LdlHaloModel"),
      _e(_decomp, "caustic::ldl_halo::exponent"), _out(_decomp, "caustic::ldl_halo::out") {}

LdlHaloModel::~LdlHaloModel() = default;

void LdlHaloModel::forward(const Kokkos::View<double* [3]>& x, std::size_t n,
                           const std::vector<double>& params, Field<double>& out) {
  const std::size_t ni = startForward(params);
  _inner->forward(x, n, std::vector<double>(params.begin(), params.begin() + ni), out);
  const HaloViews hv(*_halos, _layout, _decomp->box());
  const auto theta = thetaView(params, ni);
  _e.setZero();
  auto e = _e.real();
  forEachHaloPoint(
      "caustic::ldl_halo::exponent", *_decomp, hv,
      KOKKOS_LAMBDA(std::size_t h, std::size_t idx, int j, double t) {
        Kokkos::atomic_add(&e(idx), hv.term(theta, h, j, t));
      });
  auto o = out.real(), keep = _out.real();
  _decomp->forEachPoint(
      "caustic::ldl_halo::apply", KOKKOS_LAMBDA(const MeshPoint& pt) {
        const double v = o(pt.index) * km::exp(e(pt.index));
        o(pt.index) = v;
        keep(pt.index) = v;
      });
}

std::vector<double> LdlHaloModel::gradient(const Field<double>& fbar) {
  startGradient();
  const std::size_t nt = _layout.parameterCount();
  // The inner model's cotangent Fbar exp(E).
  Field<double> cot(_decomp, "caustic::ldl_halo::cotangent");
  auto c = cot.real(), fb = fbar.real(), e = _e.real(), fo = _out.real();
  _decomp->forEachPoint(
      "caustic::ldl_halo::inner_cotangent",
      KOKKOS_LAMBDA(const MeshPoint& pt) { c(pt.index) = fb(pt.index) * km::exp(e(pt.index)); });
  std::vector<double> g = _inner->gradient(cot);
  // d<Fbar, F_out>/d theta_ij = sum_x Fbar F_out dE/d theta_ij.
  const HaloViews hv(*_used, _layout, _decomp->box());
  Kokkos::View<double*> acc("caustic::ldl_halo::theta_grad", nt);
  auto sv = Kokkos::Experimental::create_scatter_view(acc);
  forEachHaloPoint(
      "caustic::ldl_halo::theta_gradient", *_decomp, hv,
      KOKKOS_LAMBDA(std::size_t h, std::size_t idx, int j, double t) {
        auto a = sv.access();
        hv.addGradient(a, h, j, t, fb(idx) * fo(idx));
      });
  Kokkos::Experimental::contribute(acc, sv);
  const std::vector<double> all =
      summedOverRanks(acc, _decomp->comm().get(), "LdlHaloModel::gradient");
  g.insert(g.end(), all.begin(), all.end());
  return g;
}

} // namespace caustic

namespace caustic {

constexpr double LdlProfiles::kMassBins[];
constexpr double LdlProfiles::kShellEdges[];

struct LdlProfiles::Impl {
  std::unique_ptr<HaloViews> hv; // the haloes in the mass bins, radius nodes 0 and the edges
  Kokkos::View<int*> bin;        // per halo of hv
  std::vector<int> host_bin;
  std::vector<double> count; // per (halo, shell): mesh points over all ranks
  std::vector<double> halos; // per (bin, shell): haloes with points there
};

LdlProfiles::LdlProfiles(std::shared_ptr<const SlabDecomposition> decomp, const LdlHaloSet& halos)
    : _decomp(std::move(decomp)), _impl(std::make_unique<Impl>()) {
  LdlHaloSet sel;
  for (std::size_t i = 0; i < halos.size(); ++i) {
    const double lm = halos.log10_mass[i];
    int b = -1;
    for (int q = 0; q < kBins; ++q)
      if (lm >= kMassBins[q] && lm < kMassBins[q + 1])
        b = q;
    if (b < 0)
      continue;
    _impl->host_bin.push_back(b);
    sel.log10_mass.push_back(lm);
    sel.radius.push_back(halos.radius[i]);
    for (int d = 0; d < 3; ++d)
      sel.pos.push_back(halos.pos[3 * i + d]);
  }
  LdlHaloLayout l;
  l.mass_nodes = {0.0, 1.0};
  l.radius_nodes = {0.0};
  for (double e : kShellEdges)
    l.radius_nodes.push_back(e);
  _impl->hv = std::make_unique<HaloViews>(sel, l, _decomp->box());
  const std::size_t nh = sel.size();
  _impl->bin = Kokkos::View<int*>("caustic::ldl_profiles::bin", nh);
  {
    auto h = Kokkos::create_mirror_view(_impl->bin);
    for (std::size_t i = 0; i < nh; ++i)
      h(i) = _impl->host_bin[i];
    Kokkos::deep_copy(_impl->bin, h);
  }
  // The points per (halo, shell): a field of ones stacked without the division.
  Kokkos::View<double*> acc("caustic::ldl_profiles::count", std::max<std::size_t>(1, nh * kShells));
  auto sv = Kokkos::Experimental::create_scatter_view(acc);
  forEachHaloPoint(
      "caustic::ldl_profiles::count", *_decomp, *_impl->hv,
      KOKKOS_LAMBDA(std::size_t h, std::size_t, int j, double) {
        if (j >= 1)
          sv.access()(h * kShells + (j - 1)) += 1.0;
      });
  Kokkos::Experimental::contribute(acc, sv);
  auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), acc);
  std::vector<double> loc(nh * kShells);
  for (std::size_t i = 0; i < loc.size(); ++i)
    loc[i] = hc(i);
  _impl->count.assign(loc.size(), 0.0);
  if (!loc.empty())
    mpiCheck(MPI_Allreduce(loc.data(), _impl->count.data(), static_cast<int>(loc.size()),
                           MPI_DOUBLE, MPI_SUM, _decomp->comm().get()),
             "LdlProfiles");
  _impl->halos.assign(kBins * kShells, 0.0);
  for (std::size_t h = 0; h < nh; ++h)
    for (int s = 0; s < kShells; ++s)
      if (_impl->count[h * kShells + s] > 0)
        _impl->halos[_impl->host_bin[h] * kShells + s] += 1;
}

LdlProfiles::~LdlProfiles() = default;

std::vector<double> LdlProfiles::stack(const Field<double>& f) const {
  const std::size_t nh = _impl->hv->count;
  Kokkos::View<double*> acc("caustic::ldl_profiles::sum", std::max<std::size_t>(1, nh * kShells));
  auto sv = Kokkos::Experimental::create_scatter_view(acc);
  auto v = f.real();
  forEachHaloPoint(
      "caustic::ldl_profiles::sum", *_decomp, *_impl->hv,
      KOKKOS_LAMBDA(std::size_t h, std::size_t idx, int j, double) {
        if (j >= 1)
          sv.access()(h * kShells + (j - 1)) += v(idx);
      });
  Kokkos::Experimental::contribute(acc, sv);
  auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), acc);
  std::vector<double> loc(nh * kShells), all(nh * kShells);
  for (std::size_t i = 0; i < loc.size(); ++i)
    loc[i] = hc(i);
  if (!loc.empty())
    mpiCheck(MPI_Allreduce(loc.data(), all.data(), static_cast<int>(loc.size()), MPI_DOUBLE,
                           MPI_SUM, _decomp->comm().get()),
             "LdlProfiles::stack");
  std::vector<double> out(kBins * kShells, 0.0);
  for (std::size_t h = 0; h < nh; ++h)
    for (int s = 0; s < kShells; ++s)
      if (_impl->count[h * kShells + s] > 0)
        out[_impl->host_bin[h] * kShells + s] +=
            all[h * kShells + s] / _impl->count[h * kShells + s];
  for (int q = 0; q < kBins * kShells; ++q)
    out[q] = _impl->halos[q] > 0 ? out[q] / _impl->halos[q] : NAN;
  return out;
}

void LdlProfiles::addCotangent(const std::vector<double>& dj, Field<double>& cot) const {
  if (dj.size() != static_cast<std::size_t>(kBins * kShells))
    throw std::invalid_argument("LdlProfiles::addCotangent: " + std::to_string(dj.size()) +
                                " entries, " + std::to_string(kBins * kShells) + " expected");
  const std::size_t nh = _impl->hv->count;
  // Per (halo, shell): dJ[bin, shell] / (haloes of the bin there x points of the halo there).
  Kokkos::View<double*> coef("caustic::ldl_profiles::coef", std::max<std::size_t>(1, nh * kShells));
  auto hc = Kokkos::create_mirror_view(coef);
  for (std::size_t h = 0; h < nh; ++h)
    for (int s = 0; s < kShells; ++s) {
      const int q = _impl->host_bin[h] * kShells + s;
      const double cnt = _impl->count[h * kShells + s];
      hc(h * kShells + s) = (cnt > 0 && std::isfinite(dj[q]) && _impl->halos[q] > 0)
                                ? dj[q] / (_impl->halos[q] * cnt)
                                : 0.0;
    }
  Kokkos::deep_copy(coef, hc);
  auto c = cot.real();
  forEachHaloPoint(
      "caustic::ldl_profiles::cotangent", *_decomp, *_impl->hv,
      KOKKOS_LAMBDA(std::size_t h, std::size_t idx, int j, double) {
        if (j >= 1)
          Kokkos::atomic_add(&c(idx), coef(h * kShells + (j - 1)));
      });
}

} // namespace caustic

namespace caustic {

namespace {

// The haloes that reach each cell of a grid over the box (each halo listed in every cell its
// reach's bounding box overlaps, periodic), so that a particle visits only the haloes of its own
// cell. Cells of about the mean reach, 1 to 64 per side.
struct HaloCells {
  int nc = 1;
  double side = 0;
  Kokkos::View<int*> start, list; // CSR: haloes of cell c are list[start[c] .. start[c + 1])

  HaloCells(const LdlHaloSet& h, const LdlHaloLayout& l, double box) {
    double mean = 0;
    for (double r : h.radius)
      mean += r * l.radius_nodes.back() / std::max<std::size_t>(1, h.size());
    nc = mean > 0 ? static_cast<int>(std::min(64.0, std::max(1.0, std::floor(box / mean)))) : 1;
    side = box / nc;
    const std::size_t cells = static_cast<std::size_t>(nc) * nc * nc;
    // The cells of halo i: per axis, the first cell index and how many (at most nc: no repeats).
    auto range = [&](std::size_t i, int d, long& first, int& count) {
      const double reach = h.radius[i] * l.radius_nodes.back();
      double x = std::fmod(h.pos[3 * i + d], box);
      x = x < 0 ? x + box : x;
      first = static_cast<long>(std::floor((x - reach) / side));
      const long last = static_cast<long>(std::floor((x + reach) / side));
      count = static_cast<int>(std::min<long>(nc, last - first + 1));
    };
    auto visit = [&](std::size_t i, const auto& f) {
      long a[3];
      int m[3];
      for (int d = 0; d < 3; ++d)
        range(i, d, a[d], m[d]);
      for (int p = 0; p < m[0]; ++p)
        for (int q = 0; q < m[1]; ++q)
          for (int r = 0; r < m[2]; ++r) {
            const long cx = ((a[0] + p) % nc + nc) % nc, cy = ((a[1] + q) % nc + nc) % nc,
                       cz = ((a[2] + r) % nc + nc) % nc;
            f(static_cast<std::size_t>((cx * nc + cy) * nc + cz));
          }
    };
    std::vector<std::size_t> count(cells + 1, 0);
    for (std::size_t i = 0; i < h.size(); ++i)
      visit(i, [&](std::size_t c) { ++count[c + 1]; });
    for (std::size_t c = 0; c < cells; ++c)
      count[c + 1] += count[c];
    start = Kokkos::View<int*>("caustic::ldl_halo::cell_start", cells + 1);
    list =
        Kokkos::View<int*>("caustic::ldl_halo::cell_list", std::max<std::size_t>(1, count[cells]));
    auto hs = Kokkos::create_mirror_view(start);
    auto hl = Kokkos::create_mirror_view(list);
    std::vector<std::size_t> fill(count.begin(), count.end() - 1);
    for (std::size_t c = 0; c <= cells; ++c)
      hs(c) = static_cast<int>(count[c]);
    for (std::size_t i = 0; i < h.size(); ++i)
      visit(i, [&](std::size_t c) { hl(fill[c]++) = static_cast<int>(i); });
    Kokkos::deep_copy(start, hs);
    Kokkos::deep_copy(list, hl);
  }
};

// f(p, h, j, t, u0, u1, u2, R) for every particle p of x and halo h within its reach (r > 0):
// radius segment j and position t in it, the unit vector from the centre and R_h. One labelled
// kernel over the particles (f adds to the particle's own data, or atomically to shared data).
template <class F>
void forEachParticleHalo(const char* label, const Kokkos::View<double* [3]>& x, std::size_t n,
                         double box, const HaloViews& hv, const HaloCells& cells, const F& f) {
  auto pos = hv.pos;
  auto radius = hv.radius;
  auto rn = hv.rnodes;
  const int nj = hv.nj, nc = cells.nc;
  const double side = cells.side, half = 0.5 * box;
  auto start = cells.start;
  auto list = cells.list;
  Kokkos::parallel_for(
      label, Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(const std::size_t p) {
        double xp[3];
        int c[3];
        for (int d = 0; d < 3; ++d) {
          double v = km::fmod(x(p, d), box);
          xp[d] = v < 0 ? v + box : v;
          c[d] = static_cast<int>(xp[d] / side) % nc;
        }
        const int cell = (c[0] * nc + c[1]) * nc + c[2];
        for (int k = start(cell); k < start(cell + 1); ++k) {
          const int h = list(k);
          double dv[3], r2 = 0;
          for (int d = 0; d < 3; ++d) {
            double v = xp[d] - pos(h, d);
            v = v >= half ? v - box : (v < -half ? v + box : v);
            dv[d] = v;
            r2 += v * v;
          }
          const double rr = radius(h), r = km::sqrt(r2), s = r / rr;
          if (!(r > 0) || s >= rn(nj))
            continue;
          int j = 0;
          while (j + 1 < nj && s >= rn(j + 1))
            ++j;
          const double t = (s - rn(j)) / (rn(j + 1) - rn(j));
          f(p, h, j, t, dv[0] / r, dv[1] / r, dv[2] / r, rr);
        }
      });
}

} // namespace

LdlHaloDisplacement::LdlHaloDisplacement(std::shared_ptr<const SlabDecomposition> decomp,
                                         std::unique_ptr<LdlPainter> inner, LdlHaloLayout layout)
    : LdlHaloWrapper(decomp, std::move(inner), std::move(layout), "LdlHaloDisplacement"),
      _painter(static_cast<LdlPainter*>(_inner.get())) {} // the base owns it

LdlHaloDisplacement::~LdlHaloDisplacement() = default;

void LdlHaloDisplacement::forward(const Kokkos::View<double* [3]>& x, std::size_t n,
                                  const std::vector<double>& params, Field<double>& out) {
  const std::size_t ni = startForward(params);
  const double box = _decomp->box();
  const HaloViews hv(*_halos, _layout, box);
  const HaloCells cells(*_halos, _layout, box);
  if (_x.extent(0) < std::max<std::size_t>(1, n)) {
    _x = Kokkos::View<double* [3]>("caustic::ldl_halo::x", std::max<std::size_t>(1, n));
    _moved = Kokkos::View<double* [3]>("caustic::ldl_halo::moved", std::max<std::size_t>(1, n));
  }
  _n = n;
  const auto theta = thetaView(params, ni);
  auto xs = _x, mv = _moved;
  Kokkos::parallel_for(
      "caustic::ldl_halo::copy", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(const std::size_t p) {
        for (int d = 0; d < 3; ++d) {
          xs(p, d) = x(p, d);
          mv(p, d) = x(p, d);
        }
      });
  // Each particle adds to its own row only: no two threads write the same row.
  forEachParticleHalo(
      "caustic::ldl_halo::displace", _x, n, box, hv, cells,
      KOKKOS_LAMBDA(std::size_t p, int h, int j, double t, double u0, double u1, double u2,
                    double rr) {
        const double dd = hv.term(theta, h, j, t);
        mv(p, 0) += rr * dd * u0;
        mv(p, 1) += rr * dd * u1;
        mv(p, 2) += rr * dd * u2;
      });
  Kokkos::parallel_for(
      "caustic::ldl_halo::wrap", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(const std::size_t p) {
        for (int d = 0; d < 3; ++d) {
          double v = km::fmod(mv(p, d), box);
          v = v < 0 ? v + box : v;
          mv(p, d) = v >= box ? 0.0 : v;
        }
      });
  _inner->forward(_moved, n, std::vector<double>(params.begin(), params.begin() + ni), out);
}

std::vector<double> LdlHaloDisplacement::gradient(const Field<double>& fbar) {
  startGradient();
  std::vector<double> g = _inner->gradient(fbar);
  const auto xbar = _painter->inputCotangent();
  const std::size_t nt = _layout.parameterCount();
  const double box = _decomp->box();
  const HaloViews hv(*_used, _layout, box);
  const HaloCells cells(*_used, _layout, box);
  Kokkos::View<double*> acc("caustic::ldl_halo::displacement_grad", nt);
  auto sv = Kokkos::Experimental::create_scatter_view(acc);
  forEachParticleHalo(
      "caustic::ldl_halo::displacement_gradient", _x, _n, box, hv, cells,
      KOKKOS_LAMBDA(std::size_t p, int h, int j, double t, double u0, double u1, double u2,
                    double rr) {
        auto a = sv.access();
        hv.addGradient(a, h, j, t, rr * (xbar(p, 0) * u0 + xbar(p, 1) * u1 + xbar(p, 2) * u2));
      });
  Kokkos::Experimental::contribute(acc, sv);
  const std::vector<double> all =
      summedOverRanks(acc, _decomp->comm().get(), "LdlHaloDisplacement::gradient");
  g.insert(g.end(), all.begin(), all.end());
  return g;
}

} // namespace caustic
