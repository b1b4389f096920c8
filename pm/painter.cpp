#include "pm/painter.hpp"

#include "pm/profiling.hpp"

#include <Kokkos_ScatterView.hpp>
#include <stdexcept>
#include <vector>

namespace caustic {

Window windowFromName(const std::string& name) {
  if (name == "cic")
    return Window::CIC;
  if (name == "tsc")
    return Window::TSC;
  throw std::invalid_argument("window \"" + name + "\" is not one of \"cic\", \"tsc\"");
}

std::string windowName(Window w) {
  return w == Window::CIC ? "cic" : "tsc";
}

namespace {
// Planes on each side of the slab. An owned particle has u = x / H in [x0, x0 + nx] (the upper
// end when x / H rounds up to the slab edge); TSC with a half-cell shift then reaches plane
// x0 + nx + 2, and x0 - 1 without shift.
constexpr int kGhost = 3;
} // namespace

template <class T>
void paint(Field<T>& rho, const Particles& parts, Window win, double mass, double shift) {
  ScopedRegion region("caustic::paint");
  const auto& d = rho.decomp();
  const int n = d.n(), nx = d.localNx(), x0 = d.xStart();
  const double inv_cell = 1.0 / d.cell();
  const int nb = nx + 2 * kGhost;
  // Local buffer of planes x0 - kGhost .. x0 + nx + kGhost - 1 (unpadded, y and z periodic).
  Kokkos::View<T***> buf("caustic::paint::buffer", nb, n, n);
  {
    auto sv = Kokkos::Experimental::create_scatter_view(buf);
    auto X = parts.x;
    const int order = windowOrder(win);
    Kokkos::parallel_for(
        "caustic::paint::deposit", Kokkos::RangePolicy<>(0, parts.size()),
        KOKKOS_LAMBDA(const std::size_t p) {
          auto acc = sv.access();
          int i0[3];
          double w[3][3];
          for (int c = 0; c < 3; ++c) {
            // Same expression as the owner computation in migrate(), clamped to the box.
            const double u = km::fmin(km::fmax(X(p, c) * inv_cell, 0.0), double(n));
            windowWeights(win, u + shift, i0[c], w[c]);
          }
          for (int a = 0; a < order; ++a) {
            const int bx = i0[0] + a - x0 + kGhost;
            for (int b = 0; b < order; ++b) {
              int y = (i0[1] + b) % n;
              if (y < 0)
                y += n;
              for (int c = 0; c < order; ++c) {
                int z = (i0[2] + c) % n;
                if (z < 0)
                  z += n;
                acc(bx, y, z) += T(mass * w[0][a] * w[1][b] * w[2][c]);
              }
            }
          }
        });
    Kokkos::Experimental::contribute(buf, sv);
  }
  // Interior planes go straight into the field.
  rho.setZero();
  auto r = rho.real();
  if (nx > 0)
    Kokkos::parallel_for(
        "caustic::paint::interior", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {nx, n, n}),
        KOKKOS_LAMBDA(const int lx, const int y, const int z) {
          r(Field<T>::realIndex(lx, y, z, n)) = buf(lx + kGhost, y, z);
        });
  Kokkos::fence();

  // Ghost planes are summed onto their owners (possibly several ranks away, or this rank).
  const auto& comm = d.comm();
  const int size = comm.size();
  auto hbuf = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), buf);
  std::vector<std::vector<int>> planes_to(size);
  for (int b = 0; b < nb; ++b) {
    if (b >= kGhost && b < kGhost + nx)
      continue;
    const long gx = static_cast<long>(x0) - kGhost + b;
    planes_to[d.ownerOfPlane(gx)].push_back(b);
  }
  const std::size_t plane = static_cast<std::size_t>(n) * n;
  std::vector<int> sc(size), sd(size), rc(size), rd(size);
  std::vector<int> sidx, ridx;
  std::vector<T> sdata;
  for (int rk = 0; rk < size; ++rk) {
    sd[rk] = static_cast<int>(sidx.size());
    sc[rk] = static_cast<int>(planes_to[rk].size());
    for (int b : planes_to[rk]) {
      long gx = (static_cast<long>(x0) - kGhost + b) % n;
      if (gx < 0)
        gx += n;
      sidx.push_back(static_cast<int>(gx));
      const T* src = &hbuf(b, 0, 0);
      sdata.insert(sdata.end(), src, src + plane);
    }
  }
  mpiCheck(MPI_Alltoall(sc.data(), 1, MPI_INT, rc.data(), 1, MPI_INT, comm.get()), "paint");
  int nrecv = 0;
  for (int rk = 0; rk < size; ++rk) {
    rd[rk] = nrecv;
    nrecv += rc[rk];
  }
  ridx.resize(nrecv);
  mpiCheck(MPI_Alltoallv(sidx.data(), sc.data(), sd.data(), MPI_INT, ridx.data(), rc.data(),
                         rd.data(), MPI_INT, comm.get()),
           "paint");
  std::vector<int> scp(size), sdp(size), rcp(size), rdp(size);
  for (int rk = 0; rk < size; ++rk) {
    scp[rk] = static_cast<int>(sc[rk] * plane);
    sdp[rk] = static_cast<int>(sd[rk] * plane);
    rcp[rk] = static_cast<int>(rc[rk] * plane);
    rdp[rk] = static_cast<int>(rd[rk] * plane);
  }
  std::vector<T> rdata(static_cast<std::size_t>(nrecv) * plane);
  mpiCheck(MPI_Alltoallv(sdata.data(), scp.data(), sdp.data(), mpiType<T>(), rdata.data(),
                         rcp.data(), rdp.data(), mpiType<T>(), comm.get()),
           "paint");
  if (nrecv == 0)
    return;
  Kokkos::View<int*> planes("caustic::paint::ghostPlanes", nrecv);
  Kokkos::View<T**> ghosts("caustic::paint::ghosts", nrecv, plane);
  {
    auto hp = Kokkos::create_mirror_view(planes);
    auto hg = Kokkos::create_mirror_view(ghosts);
    for (int g = 0; g < nrecv; ++g) {
      if (ridx[g] < x0 || ridx[g] >= x0 + nx)
        throw std::logic_error("paint: received ghost plane " + std::to_string(ridx[g]) +
                               " not owned by this rank");
      hp(g) = ridx[g] - x0;
      for (std::size_t j = 0; j < plane; ++j)
        hg(g, j) = rdata[g * plane + j];
    }
    Kokkos::deep_copy(planes, hp);
    Kokkos::deep_copy(ghosts, hg);
  }
  // Several ghost planes may land on the same local plane: loop over planes serially in the
  // kernel so that the sum is race-free and in a fixed order.
  Kokkos::parallel_for(
      "caustic::paint::addGhosts", Kokkos::MDRangePolicy<Kokkos::Rank<2>>({0, 0}, {n, n}),
      KOKKOS_LAMBDA(const int y, const int z) {
        for (int g = 0; g < nrecv; ++g)
          r(Field<T>::realIndex(planes(g), y, z, n)) +=
              ghosts(g, static_cast<std::size_t>(y) * n + z);
      });
  Kokkos::fence();
}

template void paint<float>(Field<float>&, const Particles&, Window, double, double);
template void paint<double>(Field<double>&, const Particles&, Window, double, double);

} // namespace caustic
