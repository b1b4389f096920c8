#include "pm/baryons/baryonify.hpp"

#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {

constexpr int kGrid = BcmHaloProfile::kGrid;
// The kernels' tables: every second point of the profile's grid.
constexpr int kStride = 2;
constexpr int kTab = (kGrid - 1) / kStride + 1;
constexpr int kTables = 5; // displacement, ln rho_bcm, ln rho_gas, ln rho_star, ln P

// Periodic minimal image of d in a box of side L.
KOKKOS_INLINE_FUNCTION double wrapDelta(double d, double L) {
  if (d > 0.5 * L)
    return d - L;
  if (d < -0.5 * L)
    return d + L;
  return d;
}

// The x-range of this rank's particles.
void particleRange(const Particles& parts, double& lo, double& hi) {
  auto x = parts.x;
  double mn = 0, mx = 0;
  Kokkos::parallel_reduce(
      "caustic::baryonify::range", Kokkos::RangePolicy<>(0, parts.size()),
      KOKKOS_LAMBDA(std::size_t i, double& a) {
        if (x(i, 0) < a)
          a = x(i, 0);
      },
      Kokkos::Min<double>(mn));
  Kokkos::parallel_reduce(
      "caustic::baryonify::range", Kokkos::RangePolicy<>(0, parts.size()),
      KOKKOS_LAMBDA(std::size_t i, double& a) {
        if (x(i, 0) > a)
          a = x(i, 0);
      },
      Kokkos::Max<double>(mx));
  lo = mn;
  hi = mx;
}

// The haloes that reach a point, found through the cell list (device-copyable views):
// f(h, dx, dy, dz, r) for every halo h (in catalogue order) with r = |x - x_h| < r_max(h), the
// separation the periodic minimal image.
struct HaloLookup {
  Kokkos::View<double* [3]> pos;
  Kokkos::View<double*> rmax, r200;
  Kokkos::View<float**, Kokkos::LayoutRight> table;
  Kokkos::View<int*> start, list;
  int nc = 1;
  double inv_cell = 1.0, box = 1.0;

  template <class F>
  KOKKOS_INLINE_FUNCTION void forEachHalo(double px, double py, double pz, const F& f) const {
    const double p[3] = {px, py, pz};
    int cidx[3];
    for (int c = 0; c < 3; ++c) {
      const int q = static_cast<int>(p[c] * inv_cell);
      cidx[c] = q < 0 ? 0 : (q >= nc ? nc - 1 : q);
    }
    const int cell = (cidx[0] * nc + cidx[1]) * nc + cidx[2];
    for (int e = start(cell); e < start(cell + 1); ++e) {
      const int h = list(e);
      const double dx = wrapDelta(px - pos(h, 0), box), dy = wrapDelta(py - pos(h, 1), box),
                   dz = wrapDelta(pz - pos(h, 2), box);
      const double r = Kokkos::Experimental::sqrt(dx * dx + dy * dy + dz * dz);
      if (r < rmax(h))
        f(h, dx, dy, dz, r);
    }
  }
};

} // namespace

struct BaryonModel::Impl {
  BcmParameters p;
  BcmBackground bg;
  double box = 0, x_lo = 0, x_hi = 0;
  std::size_t given = 0;
  int nh = 0, ncell = 1;
  double cell = 1.0;
  Kokkos::View<double* [3]> pos;
  Kokkos::View<double*> rmax, r200;
  Kokkos::View<float**, Kokkos::LayoutRight> table; // nh x (kTables kTab)
  Kokkos::View<int*> cell_start, cell_halo;          // CSR: haloes of cell c

  HaloLookup lookup() const {
    HaloLookup l;
    l.pos = pos;
    l.rmax = rmax;
    l.r200 = r200;
    l.table = table;
    l.start = cell_start;
    l.list = cell_halo;
    l.nc = ncell;
    l.inv_cell = 1.0 / cell;
    l.box = box;
    return l;
  }
  // Particles outside [x_lo, x_hi] would miss haloes: refused.
  void checkRange(const Particles& parts, const char* what) const {
    if (parts.size() == 0 || x_hi - x_lo >= box)
      return;
    double lo = 0, hi = 0;
    particleRange(parts, lo, hi);
    if (lo < x_lo || hi > x_hi)
      throw std::invalid_argument(std::string("baryonification (") + what + "): particles at x in [" +
                                  std::to_string(lo) + ", " + std::to_string(hi) +
                                  "] outside the model's range [" + std::to_string(x_lo) + ", " +
                                  std::to_string(x_hi) + "]");
  }
};

BaryonModel::BaryonModel(const std::vector<BcmHalo>& haloes, const BcmParameters& p,
                         const BcmBackground& bg, double box, double x_lo, double x_hi)
    : _impl(std::make_unique<Impl>()) {
  const std::string err = p.check();
  if (!err.empty())
    throw std::invalid_argument("baryonification: " + err);
  Impl& s = *_impl;
  s.p = p;
  s.bg = bg;
  s.box = box;
  s.x_lo = x_lo;
  s.x_hi = x_hi;
  s.given = haloes.size();
  const std::size_t ng = haloes.size();
  std::vector<double> rmax(ng);
  for (std::size_t h = 0; h < ng; ++h) {
    const BcmHalo& hl = haloes[h];
    for (int c = 0; c < 3; ++c)
      if (!(hl.pos[c] >= 0 && hl.pos[c] < box))
        throw std::invalid_argument("baryonification: halo " + std::to_string(h) +
                                    " lies outside the box [0, " + std::to_string(box) + ")");
    if (!(hl.m200c > 0 && std::isfinite(hl.m200c)) || !(hl.c200c > 0 && std::isfinite(hl.c200c)))
      throw std::invalid_argument("baryonification: halo " + std::to_string(h) +
                                  " has M200c = " + std::to_string(hl.m200c) +
                                  " Msun/h and c = " + std::to_string(hl.c200c) +
                                  "; both must be positive");
    rmax[h] = p.r_max_factor * r200c(hl.m200c, bg);
  }
  // The cell list's geometry from the whole list, so it is the same on every rank: cells about
  // twice the median r_max, at most 128 per side.
  if (ng > 0) {
    std::vector<double> sorted(rmax);
    std::nth_element(sorted.begin(), sorted.begin() + ng / 2, sorted.end());
    s.ncell = std::max(1, std::min(128, static_cast<int>(box / (2.0 * sorted[ng / 2]))));
  }
  s.cell = box / s.ncell;
  // This rank's haloes: those within r_max of [x_lo, x_hi] (periodic).
  std::vector<std::size_t> local;
  const bool whole = x_hi - x_lo >= box;
  for (std::size_t h = 0; h < ng; ++h) {
    const double x = haloes[h].pos[0];
    double d = 0;
    if (!whole && (x < x_lo || x > x_hi))
      d = std::min(std::min(std::abs(x - x_lo), box - std::abs(x - x_lo)),
                   std::min(std::abs(x - x_hi), box - std::abs(x - x_hi)));
    if (d <= rmax[h])
      local.push_back(h);
  }
  s.nh = static_cast<int>(local.size());
  s.pos = Kokkos::View<double* [3]>("caustic::baryonify::pos", s.nh);
  s.rmax = Kokkos::View<double*>("caustic::baryonify::rmax", s.nh);
  s.r200 = Kokkos::View<double*>("caustic::baryonify::r200", s.nh);
  s.table = Kokkos::View<float**, Kokkos::LayoutRight>(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::baryonify::table"), s.nh,
      kTables * kTab);
  auto hpos = Kokkos::create_mirror_view(s.pos);
  auto hrmax = Kokkos::create_mirror_view(s.rmax);
  auto hr200 = Kokkos::create_mirror_view(s.r200);
  auto htab = Kokkos::create_mirror_view(s.table);
  auto lg = [](double v) { return static_cast<float>(std::log(std::max(v, 1e-300))); };
  for (int l = 0; l < s.nh; ++l) {
    const BcmHalo& hl = haloes[local[l]];
    const BcmHaloProfile prof(p, bg, hl.m200c, hl.c200c);
    for (int c = 0; c < 3; ++c)
      hpos(l, c) = hl.pos[c];
    hrmax(l) = prof.rMax();
    hr200(l) = prof.r200c();
    const double sga = prof.fStar() - prof.fCga();
    for (int t = 0; t < kTab; ++t) {
      const int j = t * kStride;
      const double r = prof.radius(j);
      // Stars: the central galaxy plus the satellites, which move with the relaxed
      // collisionless matter (f_sga / f_clm of it).
      const double cga = prof.densityCga(r);
      const double clm =
          std::max(0.0, prof.densityBcmTable()[j] - prof.densityGasTable()[j] - cga);
      htab(l, t) = static_cast<float>(prof.displacementTable()[j]);
      htab(l, kTab + t) = lg(prof.densityBcmTable()[j]);
      htab(l, 2 * kTab + t) = lg(prof.densityGasTable()[j]);
      htab(l, 3 * kTab + t) = lg(cga + sga / prof.fClm() * clm);
      htab(l, 4 * kTab + t) = lg(prof.pressureTable()[j]);
    }
  }
  Kokkos::deep_copy(s.pos, hpos);
  Kokkos::deep_copy(s.rmax, hrmax);
  Kokkos::deep_copy(s.r200, hr200);
  Kokkos::deep_copy(s.table, htab);
  // Cell list: halo l in every cell its cube [x - r_max, x + r_max] touches, in ascending l (so
  // ascending catalogue order) within a cell.
  const int nc = s.ncell;
  const std::size_t ncells = static_cast<std::size_t>(nc) * nc * nc;
  std::vector<std::vector<int>> cells_of(ncells);
  for (int l = 0; l < s.nh; ++l) {
    int lo[3], hi[3];
    for (int c = 0; c < 3; ++c) {
      lo[c] = static_cast<int>(std::floor((hpos(l, c) - hrmax(l)) / s.cell));
      hi[c] = static_cast<int>(std::floor((hpos(l, c) + hrmax(l)) / s.cell));
      if (2 * hrmax(l) >= box || hi[c] - lo[c] >= nc) {
        lo[c] = 0;
        hi[c] = nc - 1;
      }
    }
    for (int i = lo[0]; i <= hi[0]; ++i)
      for (int j = lo[1]; j <= hi[1]; ++j)
        for (int k = lo[2]; k <= hi[2]; ++k) {
          const int a = ((i % nc) + nc) % nc, b = ((j % nc) + nc) % nc, c = ((k % nc) + nc) % nc;
          std::vector<int>& v = cells_of[(static_cast<std::size_t>(a) * nc + b) * nc + c];
          if (v.empty() || v.back() != l)
            v.push_back(l);
        }
  }
  std::size_t total = 0;
  for (const auto& v : cells_of)
    total += v.size();
  s.cell_start = Kokkos::View<int*>("caustic::baryonify::cell_start", ncells + 1);
  s.cell_halo = Kokkos::View<int*>("caustic::baryonify::cell_halo", std::max<std::size_t>(1, total));
  auto hstart = Kokkos::create_mirror_view(s.cell_start);
  auto hhalo = Kokkos::create_mirror_view(s.cell_halo);
  std::size_t at = 0;
  for (std::size_t c = 0; c < ncells; ++c) {
    hstart(c) = static_cast<int>(at);
    for (int l : cells_of[c])
      hhalo(at++) = l;
  }
  hstart(ncells) = static_cast<int>(at);
  Kokkos::deep_copy(s.cell_start, hstart);
  Kokkos::deep_copy(s.cell_halo, hhalo);
}

BaryonModel::~BaryonModel() = default;
BaryonModel::BaryonModel(BaryonModel&&) noexcept = default;
BaryonModel& BaryonModel::operator=(BaryonModel&&) noexcept = default;
std::size_t BaryonModel::haloes() const { return _impl->given; }
std::size_t BaryonModel::localHaloes() const { return static_cast<std::size_t>(_impl->nh); }

namespace {

// Position in the tables' grid of ln(r / r200): t = (ln(r / r200) - ln_lo) / dln.
KOKKOS_INLINE_FUNCTION double gridCoordinate(double r, double r200) {
  return (Kokkos::Experimental::log(r / r200) - BcmHaloProfile::kLnLo) /
         ((BcmHaloProfile::kLnHi - BcmHaloProfile::kLnLo) / (kTab - 1));
}

} // namespace

double temperatureOfSpecificPressure(double p_over_rho) {
  const double m_p = 1.67262192e-24, k_b = 1.380649e-16; // [g], [erg/K]
  return kMeanMolecularWeight * m_p * 1e10 * p_over_rho / k_b;
}

BaryonifyStats BaryonModel::displace(Particles& parts) const {
  const Impl& s = *_impl;
  s.checkRange(parts, "displace");
  const double box = s.box;
  BaryonifyStats st;
  st.haloes = s.given;
  st.local_haloes = static_cast<std::size_t>(s.nh);
  const std::size_t n = parts.size();
  if (n == 0)
    return st;
  auto x = parts.x;
  const HaloLookup look = _impl->lookup();
  auto r200 = s.r200;
  auto table = s.table;
  const double L = box;
  Kokkos::View<double* [3]> disp(Kokkos::view_alloc(Kokkos::WithoutInitializing,
                                                    "caustic::baryonify::displacement"),
                                 n);
  Kokkos::parallel_for(
      "caustic::baryonify::displace", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(std::size_t i) {
        double d[3] = {0, 0, 0};
        look.forEachHalo(x(i, 0), x(i, 1), x(i, 2),
                         [&](int h, double dx, double dy, double dz, double r) {
                           if (r == 0)
                             return;
                           const double t = gridCoordinate(r, r200(h));
                           double dr;
                           if (t <= 0) {
                             dr = table(h, 0) * r /
                                  (r200(h) * Kokkos::Experimental::exp(BcmHaloProfile::kLnLo));
                           } else {
                             int j = static_cast<int>(t);
                             if (j > kTab - 2)
                               j = kTab - 2;
                             const double w = t - j;
                             dr = table(h, j) + w * (double(table(h, j + 1)) - table(h, j));
                           }
                           const double f = dr / r;
                           d[0] += f * dx;
                           d[1] += f * dy;
                           d[2] += f * dz;
                         });
        for (int c = 0; c < 3; ++c)
          disp(i, c) = d[c];
      });
  double sum2 = 0, dmax = 0;
  std::size_t moved = 0;
  Kokkos::parallel_reduce(
      "caustic::baryonify::apply", Kokkos::RangePolicy<>(0, n),
      KOKKOS_LAMBDA(std::size_t i, double& s2) {
        double a2 = 0;
        for (int c = 0; c < 3; ++c) {
          double v = x(i, c) + disp(i, c);
          v -= L * Kokkos::Experimental::floor(v / L);
          if (v >= L)
            v = 0.0; // -tiny wraps to L in floating point
          x(i, c) = v;
          a2 += disp(i, c) * disp(i, c);
        }
        s2 += a2;
      },
      sum2);
  Kokkos::parallel_reduce(
      "caustic::baryonify::max", Kokkos::RangePolicy<>(0, n),
      KOKKOS_LAMBDA(std::size_t i, double& m) {
        const double a2 = disp(i, 0) * disp(i, 0) + disp(i, 1) * disp(i, 1) + disp(i, 2) * disp(i, 2);
        if (a2 > m)
          m = a2;
      },
      Kokkos::Max<double>(dmax));
  Kokkos::parallel_reduce(
      "caustic::baryonify::moved", Kokkos::RangePolicy<>(0, n),
      KOKKOS_LAMBDA(std::size_t i, std::size_t& c) {
        if (disp(i, 0) != 0 || disp(i, 1) != 0 || disp(i, 2) != 0)
          ++c;
      },
      moved);
  st.displaced = moved;
  st.max_displacement = std::sqrt(dmax);
  st.rms_displacement = std::sqrt(sum2 / n);
  return st;
}

BaryonComponents BaryonModel::components(const Particles& parts, MPI_Comm comm,
                                         double t_igm) const {
  const Impl& s = *_impl;
  s.checkRange(parts, "components");
  const BcmBackground& bg = s.bg;
  double diffuse = 0.0;
  if (!(t_igm >= 0 && std::isfinite(t_igm)))
    throw std::invalid_argument("baryonification: T_igm = " + std::to_string(t_igm) +
                                " K: allowed 0 or above");
  const std::size_t n = parts.size();
  BaryonComponents out;
  out.gas_fraction.resize(n);
  out.star_fraction.resize(n);
  out.pressure.resize(n);
  out.gas_density.resize(n);
  auto x = parts.x;
  const HaloLookup look = _impl->lookup();
  auto r200 = s.r200;
  auto table = s.table;
  const double rho_m = bg.rhoMean(), fb = bg.omega_b / bg.omega_m;
  // The diffuse gas's pressure: n k T with n = rho / (mu m_p), in the tables' units (physical).
  const double a3 = bg.a * bg.a * bg.a;
  const double p_over_rho_igm = t_igm / temperatureOfSpecificPressure(1.0);
  Kokkos::View<double* [4]> res("caustic::baryonify::components", n);
  Kokkos::parallel_for(
      "caustic::baryonify::components", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(std::size_t i) {
        double rho = rho_m, gas = 0, cga = 0, pr = 0;
        look.forEachHalo(x(i, 0), x(i, 1), x(i, 2), [&](int h, double, double, double, double r) {
          double t = gridCoordinate(r > 0 ? r : 1e-300, r200(h));
          if (t < 0)
            t = 0; // inside the grid's first radius: the values there
          int j = static_cast<int>(t);
          if (j > kTab - 2)
            j = kTab - 2;
          const double w = t - j;
          auto at = [&](int k) { // ln-tables 1..4
            const double a = table(h, (k + 1) * kTab + j), b = table(h, (k + 1) * kTab + j + 1);
            return Kokkos::Experimental::exp(a + w * (b - a));
          };
          rho += at(0);
          gas += at(1);
          cga += at(2);
          pr += at(3);
        });
        // The haloes' gas and stars, their pressure and the total density; the diffuse gas
        // is added below, once its fraction is known.
        res(i, 0) = gas;
        res(i, 1) = cga;
        res(i, 2) = pr;
        res(i, 3) = rho;
      });
  // The diffuse gas (the background term rho_m) carries the fraction f_d that makes the baryons
  // add up to f_b over all particles: sum_i [(gas_i + star_i) + f_d rho_m] / rho_i = f_b N.
  // The sums are accumulated in fixed point (2^-24 per particle) so that they, and f_d, do not
  // depend on the number of ranks or the order of the reduction.
  constexpr double kFix = 16777216.0;
  std::int64_t sums[3] = {0, 0, 0};
  {
    std::int64_t halo_part = 0, diffuse_part = 0;
    Kokkos::parallel_reduce(
        "caustic::baryonify::baryon_budget", Kokkos::RangePolicy<>(0, n),
        KOKKOS_LAMBDA(std::size_t i, std::int64_t& a) {
          a += static_cast<std::int64_t>(
              Kokkos::Experimental::floor((res(i, 0) + res(i, 1)) / res(i, 3) * kFix + 0.5));
        },
        halo_part);
    Kokkos::parallel_reduce(
        "caustic::baryonify::baryon_budget", Kokkos::RangePolicy<>(0, n),
        KOKKOS_LAMBDA(std::size_t i, std::int64_t& a) {
          a += static_cast<std::int64_t>(Kokkos::Experimental::floor(rho_m / res(i, 3) * kFix + 0.5));
        },
        diffuse_part);
    sums[0] = halo_part;
    sums[1] = diffuse_part;
    sums[2] = static_cast<std::int64_t>(n);
  }
  std::int64_t all[3] = {0, 0, 0};
  MPI_Allreduce(sums, all, 3, MPI_INT64_T, MPI_SUM, comm);
  const double f_d = all[1] > 0 ? (fb * double(all[2]) - double(all[0]) / kFix) / (double(all[1]) / kFix)
                                : fb;
  if (!(f_d >= 0))
    throw std::runtime_error("baryonification: the haloes' baryons (" +
                             std::to_string(double(all[0]) / kFix / double(all[2])) +
                             " of the matter) exceed Omega_b / Omega_m = " + std::to_string(fb) +
                             "; the catalogue's haloes overlap too much for the model");
  diffuse = f_d;
  Kokkos::parallel_for(
      "caustic::baryonify::diffuse_gas", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(std::size_t i) {
        const double rho = res(i, 3), gas = res(i, 0) + f_d * rho_m;
        // The diffuse gas at T_igm, physical density = comoving / a^3.
        res(i, 0) = gas / rho;
        res(i, 1) = res(i, 1) / rho;
        res(i, 2) += p_over_rho_igm * f_d * rho_m / a3;
        res(i, 3) = gas;
      });
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), res);
  for (std::size_t i = 0; i < n; ++i) {
    out.gas_fraction[i] = h(i, 0);
    out.star_fraction[i] = h(i, 1);
    out.pressure[i] = h(i, 2);
    out.gas_density[i] = h(i, 3);
  }
  out.diffuse_gas_fraction = diffuse;
  return out;
}

BaryonifyStats baryonify(Particles& parts, const std::vector<BcmHalo>& haloes,
                         const BcmParameters& p, const BcmBackground& bg, double box) {
  double lo = 0, hi = box;
  if (parts.size() > 0)
    particleRange(parts, lo, hi);
  return BaryonModel(haloes, p, bg, box, lo, hi).displace(parts);
}

BaryonComponents baryonComponents(const Particles& parts, const std::vector<BcmHalo>& haloes,
                                  const BcmParameters& p, const BcmBackground& bg, double box,
                                  MPI_Comm comm, double t_igm) {
  double lo = 0, hi = box;
  if (parts.size() > 0)
    particleRange(parts, lo, hi);
  return BaryonModel(haloes, p, bg, box, lo, hi).components(parts, comm, t_igm);
}

} // namespace caustic
