#include "pm/painter.hpp"

#include "pm/profiling.hpp"

#include <Kokkos_ScatterView.hpp>
#include <stdexcept>

namespace caustic {

Window windowFromName(const std::string& name) {
  if (name == "cic")
    return Window::CIC;
  if (name == "tsc")
    return Window::TSC;
  throw std::invalid_argument("window \"" + name + "\" is not one of \"cic\", \"tsc\"");
}

std::string windowName(Window w) { return w == Window::CIC ? "cic" : "tsc"; }

namespace {
// Planes on each side of the slab. An owned particle has u = x / H in [x0, x0 + nx] (the upper
// end when x / H rounds up to the slab edge); TSC with a half-cell shift then reaches plane
// x0 + nx + 2, and x0 - 1 without shift.
// The finite-difference gradient readout reaches two planes further.
constexpr int kGhost = 3;
constexpr int kGhostGradient = 5;

// Window of one particle: first buffer plane / y / z index and the weights per axis.
struct Stencil {
  int i0[3];
  double w[3][3];
};

KOKKOS_INLINE_FUNCTION Stencil stencil(Window win, const double x[3], double inv_cell, double shift, int n,
                                       int x0) {
  Stencil s;
  for (int c = 0; c < 3; ++c) {
    // Same expression as the owner computation in migrate(), clamped to the box.
    const double u = km::fmin(km::fmax(x[c] * inv_cell, 0.0), double(n));
    windowWeights(win, u + shift, s.i0[c], s.w[c]);
  }
  s.i0[0] += kGhost - x0;
  return s;
}

KOKKOS_INLINE_FUNCTION int wrap(int i, int n) {
  i %= n;
  return i < 0 ? i + n : i;
}
} // namespace

template <class T>
Painter<T>::Painter(std::shared_ptr<const SlabDecomposition> decomp, Window win)
    : _decomp(std::move(decomp)), _win(win), _ghosts(_decomp, kGhost), _wide(_decomp, kGhostGradient) {
  _buf = _ghosts.makeBuffer<T>("caustic::Painter::ghosts");
}

namespace {
// Plane b of the window (buffer numbering, b = global plane - x0 + kGhost) lies in the field
// (interior) or in ghost g.
KOKKOS_INLINE_FUNCTION bool interior(int b, int nx) { return b >= kGhost && b < kGhost + nx; }
KOKKOS_INLINE_FUNCTION int ghostIndex(int b, int nx) { return b < kGhost ? b : b - nx; }
} // namespace

template <class T>
void Painter<T>::paint(Field<T>& rho, const Kokkos::View<double* [3]>& X, std::size_t count, double mass,
                       double shift) const {
  ScopedRegion region("caustic::Painter::paint");
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  auto ghosts = _buf;
  rho.setZero();
  Kokkos::deep_copy(ghosts, T(0));
  if (count > 0) {
    auto field = rho.real();
    auto sf = Kokkos::Experimental::create_scatter_view(field);
    auto sg = Kokkos::Experimental::create_scatter_view(ghosts);
    Kokkos::parallel_for(
        "caustic::Painter::deposit", Kokkos::RangePolicy<>(0, count), KOKKOS_LAMBDA(const std::size_t p) {
          auto af = sf.access();
          auto ag = sg.access();
          const double x[3] = {X(p, 0), X(p, 1), X(p, 2)};
          const Stencil s = stencil(win, x, inv_cell, shift, n, x0);
          for (int a = 0; a < order; ++a) {
            const int b = s.i0[0] + a;
            const bool in = interior(b, nx);
            for (int bb = 0; bb < order; ++bb) {
              const int y = wrap(s.i0[1] + bb, n);
              for (int c = 0; c < order; ++c) {
                const int z = wrap(s.i0[2] + c, n);
                const T w = T(mass * s.w[0][a] * s.w[1][bb] * s.w[2][c]);
                if (in)
                  af(Field<T>::realIndex(b - kGhost, y, z, n)) += w;
                else
                  ag(ghostIndex(b, nx), y, z) += w;
              }
            }
          }
        });
    Kokkos::Experimental::contribute(field, sf);
    Kokkos::Experimental::contribute(ghosts, sg);
  }
  _ghosts.scatterAdd(ghosts, rho);
}

template <class T>
template <class Out>
void Painter<T>::readout(const Field<T>& f, const Kokkos::View<double* [3]>& X, std::size_t count, const Out& out,
                         int comp, double scale, bool accumulate) const {
  ScopedRegion region("caustic::Painter::readout");
  auto ghosts = _buf;
  _ghosts.gather(f, ghosts);
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  auto field = f.real();
  Kokkos::parallel_for(
      "caustic::Painter::readout", Kokkos::RangePolicy<>(0, count), KOKKOS_LAMBDA(const std::size_t p) {
        const double x[3] = {X(p, 0), X(p, 1), X(p, 2)};
        const Stencil s = stencil(win, x, inv_cell, 0.0, n, x0);
        double v = 0.0;
        for (int a = 0; a < order; ++a) {
          const int b = s.i0[0] + a;
          const bool in = interior(b, nx);
          for (int bb = 0; bb < order; ++bb) {
            const int y = wrap(s.i0[1] + bb, n);
            for (int c = 0; c < order; ++c) {
              const int z = wrap(s.i0[2] + c, n);
              const double fv = in ? double(field(Field<T>::realIndex(b - kGhost, y, z, n)))
                                   : double(ghosts(ghostIndex(b, nx), y, z));
              v += s.w[0][a] * s.w[1][bb] * s.w[2][c] * fv;
            }
          }
        }
        using V = typename Out::non_const_value_type;
        if (accumulate)
          out(p, comp) += V(scale * v);
        else
          out(p, comp) = V(scale * v);
      });
  Kokkos::fence();
}

template <class T>
template <class Out>
void Painter<T>::readoutGradient(const Field<T>& phi, const Kokkos::View<double* [3]>& X, std::size_t count,
                                 const Out& out, double scale, bool accumulate) const {
  ScopedRegion region("caustic::Painter::readoutGradient");
  if (_wideBuf.extent(0) != static_cast<std::size_t>(_wide.ghostPlanes()))
    _wideBuf = _wide.makeBuffer<T>("caustic::Painter::gradientGhosts");
  auto ghosts = _wideBuf;
  _wide.gather(phi, ghosts);
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  const double c1 = 8.0 / 12.0 * inv_cell, c2 = 1.0 / 12.0 * inv_cell;
  auto field = phi.real();
  constexpr int W = kGhostGradient;
  Kokkos::parallel_for(
      "caustic::Painter::readoutGradient", Kokkos::RangePolicy<>(0, count), KOKKOS_LAMBDA(const std::size_t p) {
        // Window in buffer numbering of the wide ghosts: plane b = global - x0 + W.
        int i0[3];
        double w[3][3];
        for (int c = 0; c < 3; ++c) {
          const double u = km::fmin(km::fmax(X(p, c) * inv_cell, 0.0), double(n));
          windowWeights(win, u, i0[c], w[c]);
        }
        const int b0 = i0[0] - x0 + W;
        auto at = [&](int b, int y, int z) -> double {
          y = wrap(y, n);
          z = wrap(z, n);
          if (b >= W && b < W + nx)
            return double(field(Field<T>::realIndex(b - W, y, z, n)));
          return double(ghosts(b < W ? b : b - nx, y, z));
        };
        double g[3] = {0.0, 0.0, 0.0};
        for (int a = 0; a < order; ++a) {
          const int b = b0 + a;
          for (int bb = 0; bb < order; ++bb) {
            const int y = i0[1] + bb;
            for (int cc = 0; cc < order; ++cc) {
              const int z = i0[2] + cc;
              const double wt = w[0][a] * w[1][bb] * w[2][cc];
              g[0] += wt * (c1 * (at(b + 1, y, z) - at(b - 1, y, z)) - c2 * (at(b + 2, y, z) - at(b - 2, y, z)));
              g[1] += wt * (c1 * (at(b, y + 1, z) - at(b, y - 1, z)) - c2 * (at(b, y + 2, z) - at(b, y - 2, z)));
              g[2] += wt * (c1 * (at(b, y, z + 1) - at(b, y, z - 1)) - c2 * (at(b, y, z + 2) - at(b, y, z - 2)));
            }
          }
        }
        using V = typename Out::non_const_value_type;
        for (int c = 0; c < 3; ++c) {
          if (accumulate)
            out(p, c) += V(-scale * g[c]);
          else
            out(p, c) = V(-scale * g[c]);
        }
      });
  Kokkos::fence();
}

template <class T>
void paint(Field<T>& rho, const Particles& parts, Window win, double mass, double shift) {
  Painter<T>(rho.decompPtr(), win).paint(rho, parts.x, parts.size(), mass, shift);
}

template class Painter<float>;
template class Painter<double>;
template void Painter<float>::readout(const Field<float>&, const Kokkos::View<double* [3]>&, std::size_t,
                                      const Kokkos::View<float* [3]>&, int, double, bool) const;
template void Painter<double>::readout(const Field<double>&, const Kokkos::View<double* [3]>&, std::size_t,
                                       const Kokkos::View<double* [3]>&, int, double, bool) const;
template void Painter<float>::readout(const Field<float>&, const Kokkos::View<double* [3]>&, std::size_t,
                                      const Kokkos::View<double* [3]>&, int, double, bool) const;
template void Painter<float>::readoutGradient(const Field<float>&, const Kokkos::View<double* [3]>&, std::size_t,
                                              const Kokkos::View<double* [3]>&, double, bool) const;
template void Painter<float>::readoutGradient(const Field<float>&, const Kokkos::View<double* [3]>&, std::size_t,
                                              const Kokkos::View<float* [3]>&, double, bool) const;
template void Painter<double>::readoutGradient(const Field<double>&, const Kokkos::View<double* [3]>&,
                                               std::size_t, const Kokkos::View<double* [3]>&, double, bool) const;
template void paint<float>(Field<float>&, const Particles&, Window, double, double);
template void paint<double>(Field<double>&, const Particles&, Window, double, double);

} // namespace caustic
