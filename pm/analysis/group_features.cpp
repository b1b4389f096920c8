#include "pm/analysis/group_features.hpp"

#include "pm/core/comm.hpp"
#include "pm/core/kmath.hpp"
#include "pm/core/profiling.hpp"
#include "pm/force/painter.hpp"

#include <Kokkos_Core.hpp>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace caustic {

std::vector<std::string> groupFeatureNames(const std::vector<double>& radii) {
  std::vector<std::string> names = {"ln_members", "ln_radius", "ln_sigma_v"};
  for (double r : radii) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "ln_density_R%g", r);
    names.emplace_back(buf);
  }
  return names;
}

std::vector<std::string> groupVectorNames() {
  return {"momentum", "displacement"};
}

namespace {

double nearestImage(double d, double L) {
  return d - L * std::round(d / L);
}

} // namespace

std::vector<double> groupFeatures(const HaloCatalogue& groups, const Particles& parts,
                                  const std::shared_ptr<const SlabDecomposition>& mesh,
                                  double total_particles, const std::vector<double>& radii,
                                  std::vector<double>* vectors) {
  ScopedRegion region("caustic::groupFeatures");
  for (double r : radii)
    if (!(r > 0) || !std::isfinite(r))
      throw std::invalid_argument("group features: smoothing radius " + std::to_string(r) +
                                  " Mpc/h; expected a positive finite number");
  const std::size_t ng = groups.size(), nf = 3 + radii.size();
  std::vector<double> f(ng * nf, 0.0);
  for (std::size_t g = 0; g < ng; ++g) {
    f[g * nf + 0] = std::log(static_cast<double>(groups.count[g]));
    f[g * nf + 1] = std::log(std::max(groups.radius[g], 1e-6));
    f[g * nf + 2] = std::log(std::max(groups.sigma_v[g], 1e-9));
  }
  if (vectors) {
    if (groups.lattice_pos.size() != 3 * ng)
      throw std::invalid_argument("group vectors: the groups carry no mean lattice positions "
                                  "(FoF with FofOptions::lattice_grid, the particle lattice's N)");
    auto& v = *vectors;
    v.assign(ng * kGroupVectors * 3, 0.0);
    const double L = mesh->box();
    for (std::size_t g = 0; g < ng; ++g)
      for (int c = 0; c < 3; ++c) {
        v[g * kGroupVectors * 3 + c] = groups.vel[3 * g + c];
        v[g * kGroupVectors * 3 + 3 + c] =
            nearestImage(groups.pos[3 * g + c] - groups.lattice_pos[3 * g + c], L);
      }
  }
  if (radii.empty())
    return f;

  // The group centres this rank owns (by the x-plane of the mesh, as migration assigns).
  const int me = mesh->comm().rank();
  std::vector<std::size_t> mine;
  for (std::size_t g = 0; g < ng; ++g)
    if (mesh->ownerOfPosition(groups.pos[3 * g]) == me)
      mine.push_back(g);
  Kokkos::View<double* [3]> c("caustic::groupFeatures::centres", mine.size());
  {
    auto h = Kokkos::create_mirror_view(c);
    for (std::size_t i = 0; i < mine.size(); ++i)
      for (int d = 0; d < 3; ++d)
        h(i, d) = groups.pos[3 * mine[i] + d];
    Kokkos::deep_copy(c, h);
  }

  // 1 + delta on the mesh (mass per cell over the mean), in Fourier space. Single precision: the
  // features are logarithms of smoothed densities, and float halves the FFTs' time and memory.
  const Painter<float> painter(mesh, Window::CIC);
  const FFT<float> fft(mesh);
  Field<float> rho(mesh, "caustic::groupFeatures::rho"), smooth(mesh, "caustic::groupFeatures::s");
  const double n = mesh->n(), L = mesh->box();
  painter.paint(rho, parts.x, parts.size(), n * n * n / total_particles);
  fft.forward(rho);
  Kokkos::View<double* [3]> v("caustic::groupFeatures::values", mine.size()); // column 0
  std::vector<double> col(ng);
  for (std::size_t j = 0; j < radii.size(); ++j) {
    const double kf = 2 * M_PI / L, r2 = radii[j] * radii[j];
    const auto src = rho.complex(), dst = smooth.complex();
    mesh->forEachMode(
        "caustic::groupFeatures::gaussian", KOKKOS_LAMBDA(const MeshMode& m) {
          const double k2 = kf * kf * m.m2();
          dst(m.index) = src(m.index) * static_cast<float>(km::exp(-0.5 * k2 * r2));
        });
    fft.backward(smooth);
    painter.readout(smooth, c, mine.size(), v, 0, 1.0, false);
    auto h = Kokkos::create_mirror_view(v);
    Kokkos::deep_copy(h, v);
    std::fill(col.begin(), col.end(), 0.0);
    for (std::size_t i = 0; i < mine.size(); ++i)
      col[mine[i]] = std::log(std::max(h(i, 0), 1e-3));
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, col.data(), static_cast<int>(ng), MPI_DOUBLE, MPI_SUM,
                           mesh->comm().get()),
             "groupFeatures");
    for (std::size_t g = 0; g < ng; ++g)
      f[g * nf + 3 + j] = col[g];
  }
  return f;
}

} // namespace caustic
