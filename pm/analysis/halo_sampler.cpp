#include "pm/analysis/halo_sampler.hpp"

#include "pm/ic/white_noise.hpp"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace caustic {

HaloCatalogue sampleHalos(const Field<float>& presence, const Field<float>& mass,
                          const std::array<const Field<float>*, 3>& momentum,
                          const HaloSamplerOptions& opt) {
  if (!(opt.min_mass > 0) || !(opt.particle_mass > 0) || !(opt.log_mass_scatter >= 0) ||
      !std::isfinite(opt.log_mass_scatter))
    throw std::invalid_argument(
        "sampleHalos: min_mass = " + std::to_string(opt.min_mass) +
        ", particle_mass = " + std::to_string(opt.particle_mass) +
        ", log_mass_scatter = " + std::to_string(opt.log_mass_scatter) +
        ": the masses must be > 0 and the scatter finite and >= 0");
  const SlabDecomposition& d = presence.decomp();
  const bool with_momentum = momentum[0] && momentum[1] && momentum[2];
  const int n = d.n();
  const double h = d.cell(), box = d.box();
  const std::size_t npts = static_cast<std::size_t>(d.localNx()) * n * n;
  const auto p = presence.real(), m = mass.real();
  const std::uint64_t seed = opt.seed;
  const std::uint32_t stream = opt.output << 8;
  // A model that returned nonsense is refused before anything is drawn or written.
  double bad = 0;
  d.reducePoints("caustic::sampleHalos::check", KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
    const float pv = p(q.index), mv = m(q.index);
    acc += (pv >= 0.0f && pv <= 1.0f && mv > 0.0f && mv < 3e38f) ? 0.0 : 1.0;
  }, bad);
  double bad_all = 0;
  mpiCheck(MPI_Allreduce(&bad, &bad_all, 1, MPI_DOUBLE, MPI_SUM, d.comm().get()), "sampleHalos");
  if (bad_all > 0)
    throw std::runtime_error("sampleHalos: " + std::to_string(static_cast<long>(bad_all)) +
                             " voxels hold a presence outside [0, 1] or a mass that is not a "
                             "finite positive number; no catalogue written");

  // 1. Which voxels hold a halo: a Bernoulli draw each (stream 0), or those above the presence
  // threshold that leaves round(sum p) voxels.
  Kokkos::View<int*> flag("caustic::sampleHalos::flag", npts > 0 ? npts : 1);
  if (opt.top) {
    const Comm& comm = d.comm();
    auto global = [&](double local) {
      double g = 0;
      mpiCheck(MPI_Allreduce(&local, &g, 1, MPI_DOUBLE, MPI_SUM, comm.get()), "sampleHalos");
      return g;
    };
    double sum = 0;
    d.reducePoints("caustic::sampleHalos::sum", KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
      acc += static_cast<double>(p(q.index));
    }, sum);
    const double target = std::round(global(sum));
    // count(p > t) falls with t: the smallest t (to 2^-50) with count <= target.
    double lo = -1.0, hi = 1.0;
    for (int it = 0; it < 52; ++it) {
      const double t = 0.5 * (lo + hi);
      double count = 0;
      d.reducePoints("caustic::sampleHalos::count", KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
        acc += static_cast<double>(p(q.index)) > t ? 1.0 : 0.0;
      }, count);
      (global(count) <= target ? hi : lo) = t;
    }
    const double t = hi;
    d.forEachPoint("caustic::sampleHalos::top", KOKKOS_LAMBDA(const MeshPoint& q) {
      flag(q.compact) = static_cast<double>(p(q.index)) > t ? 1 : 0;
    });
  } else {
    d.forEachPoint("caustic::sampleHalos::presence", KOKKOS_LAMBDA(const MeshPoint& q) {
      double u0, u1;
      philoxUniforms(seed, static_cast<std::uint32_t>(q.x), static_cast<std::uint32_t>(q.y),
                     static_cast<std::uint32_t>(q.z), stream, u0, u1);
      flag(q.compact) = u0 < static_cast<double>(p(q.index)) ? 1 : 0;
    });
  }
  // 2. Their slots in this rank's list (in voxel order).
  Kokkos::View<std::size_t*> slot("caustic::sampleHalos::slot", npts > 0 ? npts : 1);
  std::size_t count = 0;
  Kokkos::parallel_scan(
      "caustic::sampleHalos::slots", Kokkos::RangePolicy<>(0, npts),
      KOKKOS_LAMBDA(const std::size_t i, std::size_t& acc, const bool final) {
        if (final)
          slot(i) = acc;
        acc += static_cast<std::size_t>(flag(i));
      },
      count);
  // 3. Position (stream 1, 2), mass (streams 3 + 2t, 4 + 2t: Box-Muller pairs, t-th try).
  constexpr int kRow = 8; // label, count, x, y, z, px, py, pz
  Kokkos::View<double*> rows("caustic::sampleHalos::rows", count > 0 ? kRow * count : 1);
  Kokkos::View<float*> px, py, pz;
  if (with_momentum) {
    px = momentum[0]->real();
    py = momentum[1]->real();
    pz = momentum[2]->real();
  }
  const double sigma = opt.log_mass_scatter, ln_min = std::log(opt.min_mass),
               mp = opt.particle_mass;
  d.forEachPoint("caustic::sampleHalos::halos", KOKKOS_LAMBDA(const MeshPoint& q) {
    if (!flag(q.compact))
      return;
    const auto cx = static_cast<std::uint32_t>(q.x), cy = static_cast<std::uint32_t>(q.y),
               cz = static_cast<std::uint32_t>(q.z);
    double u[4];
    philoxUniforms(seed, cx, cy, cz, stream | 1u, u[0], u[1]);
    philoxUniforms(seed, cx, cy, cz, stream | 2u, u[2], u[3]);
    const int idx[3] = {q.x, q.y, q.z};
    double* r = &rows(kRow * slot(q.compact));
    r[0] = static_cast<double>((static_cast<std::uint64_t>(q.x) * n + q.y) * n + q.z);
    for (int a = 0; a < 3; ++a) {
      double x = (idx[a] + u[a] - 0.5) * h;
      x = x < 0 ? x + box : (x >= box ? x - box : x);
      r[2 + a] = x < box ? x : 0.0;
    }
    const double mu = km::log(static_cast<double>(m(q.index)));
    double lnm = ln_min;
    for (int t = 0; t < 64; ++t) {
      double v1, v2;
      philoxUniforms(seed, cx, cy, cz, stream | static_cast<std::uint32_t>(3 + t), v1, v2);
      const double g = km::sqrt(-2.0 * km::log(v1)) * km::cos(2.0 * M_PI * v2);
      const double trial = mu + sigma * g;
      if (trial >= ln_min) {
        lnm = trial;
        break;
      }
    }
    const double c = km::floor(km::exp(lnm) / mp + 0.5);
    r[1] = c < 1.0 ? 1.0 : c;
    r[5] = with_momentum ? static_cast<double>(px(q.index)) : 0.0;
    r[6] = with_momentum ? static_cast<double>(py(q.index)) : 0.0;
    r[7] = with_momentum ? static_cast<double>(pz(q.index)) : 0.0;
  });
  auto host = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), rows);

  // 4. Every rank's halos in rank order: x-slabs in order, so the list is sorted by label.
  const std::vector<double> all = allGathered(
      std::vector<double>(host.data(), host.data() + kRow * count), d.comm(), "sampleHalos");
  HaloCatalogue cat;
  const std::size_t ng = all.size() / kRow;
  for (std::size_t g = 0; g < ng; ++g) {
    const double* r = &all[kRow * g];
    cat.label.push_back(static_cast<std::uint64_t>(r[0]));
    cat.count.push_back(static_cast<std::uint64_t>(r[1]));
    for (int a = 0; a < 3; ++a) {
      cat.pos.push_back(r[2 + a]);
      cat.vel.push_back(r[5 + a]);
    }
    cat.sigma_v.push_back(0.0);
    cat.radius.push_back(0.0);
  }
  return cat;
}

} // namespace caustic
