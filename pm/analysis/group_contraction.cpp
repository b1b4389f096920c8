#include "pm/analysis/group_contraction.hpp"

#include "pm/core/kmath.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace caustic {

namespace {
// The cell of coordinate x on a cell list of nc cells of side h per axis (clamped).
KOKKOS_INLINE_FUNCTION int cellOf(double x, double h, int nc) {
  const int c = static_cast<int>(km::floor(x / h));
  return c < 0 ? 0 : (c >= nc ? nc - 1 : c);
}
} // namespace

template <class R>
std::size_t contractGroups(BasicParticles<R>& parts, const HaloCatalogue& groups, double box,
                           const GroupContraction& opt) {
  if (!(opt.lambda > 0 && opt.lambda <= 1))
    throw std::invalid_argument("contractGroups: lambda = " + std::to_string(opt.lambda) +
                                ": allowed: (0, 1]");
  if (!(box > 0) || !(opt.radius > 0 && opt.radius <= box / 4))
    throw std::invalid_argument("contractGroups: radius = " + std::to_string(opt.radius) +
                                " Mpc/h: allowed: (0, box / 4] with box = " + std::to_string(box));
  // The centres of the groups contracted about, in catalogue order, binned on a cell list of
  // cells no smaller than R (at least 4 per side since R <= L / 4: the 27 neighbours of a cell
  // are distinct), and no more cells than about 8 per centre (larger cells are as correct, so a
  // small R in a large box does not allocate a huge, empty list).
  std::vector<double> centre;
  for (std::size_t g = 0; g < groups.size(); ++g)
    if (groups.count[g] <= opt.max_members)
      for (int d = 0; d < 3; ++d)
        centre.push_back(groups.pos[3 * g + d]);
  const std::size_t nsel = centre.size() / 3;
  if (nsel == 0 || parts.size() == 0)
    return nsel;
  const int fit = static_cast<int>(std::floor(box / opt.radius));
  const int sparse = static_cast<int>(std::ceil(std::cbrt(8.0 * static_cast<double>(nsel))));
  const int nc = std::max(4, std::min(fit, sparse));
  const double h = box / nc;
  const std::size_t ncell = static_cast<std::size_t>(nc) * nc * nc;
  std::vector<std::size_t> cell(nsel), start(ncell + 1, 0);
  for (std::size_t g = 0; g < nsel; ++g) {
    cell[g] = (static_cast<std::size_t>(cellOf(centre[3 * g], h, nc)) * nc +
               cellOf(centre[3 * g + 1], h, nc)) *
                  nc +
              cellOf(centre[3 * g + 2], h, nc);
    ++start[cell[g] + 1];
  }
  for (std::size_t c = 0; c < ncell; ++c)
    start[c + 1] += start[c];
  std::vector<std::size_t> fill(start.begin(), start.end() - 1);
  Kokkos::View<double* [3]> centres("caustic::contractGroups::centres", nsel);
  Kokkos::View<std::size_t*> cellStart("caustic::contractGroups::cellStart", ncell + 1);
  // The centre's index among those selected: catalogue order, for the tie rule.
  Kokkos::View<std::uint32_t*> order("caustic::contractGroups::order", nsel);
  {
    auto hc = Kokkos::create_mirror_view(centres);
    auto hs = Kokkos::create_mirror_view(cellStart);
    auto ho = Kokkos::create_mirror_view(order);
    for (std::size_t g = 0; g < nsel; ++g) { // ascending g: each cell keeps catalogue order
      const std::size_t slot = fill[cell[g]]++;
      for (int d = 0; d < 3; ++d)
        hc(slot, d) = centre[3 * g + d];
      ho(slot) = static_cast<std::uint32_t>(g);
    }
    for (std::size_t c = 0; c <= ncell; ++c)
      hs(c) = start[c];
    Kokkos::deep_copy(centres, hc);
    Kokkos::deep_copy(cellStart, hs);
    Kokkos::deep_copy(order, ho);
  }
  auto x = parts.x;
  const double L = box, Rc = opt.radius, lam = opt.lambda;
  Kokkos::parallel_for(
      "caustic::contractGroups", Kokkos::RangePolicy<>(0, parts.size()),
      KOKKOS_LAMBDA(std::size_t i) {
        const double xi[3] = {x(i, 0), x(i, 1), x(i, 2)};
        const int ci[3] = {cellOf(xi[0], h, nc), cellOf(xi[1], h, nc), cellOf(xi[2], h, nc)};
        double best = 0, move[3] = {0, 0, 0};
        std::uint32_t bestOrder = 0;
        for (int a = -1; a <= 1; ++a)
          for (int b = -1; b <= 1; ++b)
            for (int e = -1; e <= 1; ++e) {
              const std::size_t c =
                  (static_cast<std::size_t>((ci[0] + a + nc) % nc) * nc + (ci[1] + b + nc) % nc) *
                      nc +
                  (ci[2] + e + nc) % nc;
              for (std::size_t s = cellStart(c); s < cellStart(c + 1); ++s) {
                double dx[3], r2 = 0;
                for (int d = 0; d < 3; ++d) {
                  dx[d] = xi[d] - centres(s, d);
                  dx[d] -= L * km::floor(dx[d] / L + 0.5);
                  r2 += dx[d] * dx[d];
                }
                const double r = km::sqrt(r2);
                if (!(r < Rc))
                  continue;
                const double q = r / Rc, f = lam + (1 - lam) * q * q - 1;
                const double m[3] = {dx[0] * f, dx[1] * f, dx[2] * f};
                const double n1 = km::fabs(m[0]) + km::fabs(m[1]) + km::fabs(m[2]);
                if (n1 > best || (n1 == best && n1 > 0 && order(s) < bestOrder)) {
                  best = n1;
                  bestOrder = order(s);
                  for (int d = 0; d < 3; ++d)
                    move[d] = m[d];
                }
              }
            }
        if (best > 0)
          for (int d = 0; d < 3; ++d)
            x(i, d) = storedCoordinate<R>(periodicWrap(xi[d] + move[d], L), L);
      });
  Kokkos::fence();
  return nsel;
}

template std::size_t contractGroups(Particles&, const HaloCatalogue&, double,
                                    const GroupContraction&);
template std::size_t contractGroups(SingleParticles&, const HaloCatalogue&, double,
                                    const GroupContraction&);

} // namespace caustic
