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
constexpr int kGhost = 3;

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
    : _decomp(std::move(decomp)), _win(win), _ghosts(_decomp, kGhost) {
  _buf = _ghosts.makeBuffer<T>("caustic::Painter::buffer");
}

template <class T>
void Painter<T>::paint(Field<T>& rho, const Kokkos::View<double* [3]>& X, double mass, double shift) const {
  ScopedRegion region("caustic::Painter::paint");
  const int n = _decomp->n(), x0 = _decomp->xStart();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  auto buf = _buf;
  Kokkos::deep_copy(buf, T(0));
  if (X.extent(0) > 0) {
    auto sv = Kokkos::Experimental::create_scatter_view(buf);
    Kokkos::parallel_for(
        "caustic::Painter::deposit", Kokkos::RangePolicy<>(0, X.extent(0)), KOKKOS_LAMBDA(const std::size_t p) {
          auto acc = sv.access();
          const double x[3] = {X(p, 0), X(p, 1), X(p, 2)};
          const Stencil s = stencil(win, x, inv_cell, shift, n, x0);
          for (int a = 0; a < order; ++a)
            for (int b = 0; b < order; ++b) {
              const int y = wrap(s.i0[1] + b, n);
              for (int c = 0; c < order; ++c)
                acc(s.i0[0] + a, y, wrap(s.i0[2] + c, n)) += T(mass * s.w[0][a] * s.w[1][b] * s.w[2][c]);
            }
        });
    Kokkos::Experimental::contribute(buf, sv);
  }
  _ghosts.scatterAdd(buf, rho);
}

template <class T>
void Painter<T>::readout(const Field<T>& f, const Kokkos::View<double* [3]>& X, const Kokkos::View<double* [3]>& out,
                         int comp) const {
  ScopedRegion region("caustic::Painter::readout");
  _ghosts.gather(f, _buf);
  const int n = _decomp->n(), x0 = _decomp->xStart();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  auto buf = _buf;
  Kokkos::parallel_for(
      "caustic::Painter::readout", Kokkos::RangePolicy<>(0, X.extent(0)), KOKKOS_LAMBDA(const std::size_t p) {
        const double x[3] = {X(p, 0), X(p, 1), X(p, 2)};
        const Stencil s = stencil(win, x, inv_cell, 0.0, n, x0);
        double v = 0.0;
        for (int a = 0; a < order; ++a)
          for (int b = 0; b < order; ++b) {
            const int y = wrap(s.i0[1] + b, n);
            for (int c = 0; c < order; ++c)
              v += s.w[0][a] * s.w[1][b] * s.w[2][c] * double(buf(s.i0[0] + a, y, wrap(s.i0[2] + c, n)));
          }
        out(p, comp) = v;
      });
  Kokkos::fence();
}

template <class T>
void paint(Field<T>& rho, const Particles& parts, Window win, double mass, double shift) {
  Painter<T>(rho.decompPtr(), win).paint(rho, parts.x, mass, shift);
}

template class Painter<float>;
template class Painter<double>;
template void paint<float>(Field<float>&, const Particles&, Window, double, double);
template void paint<double>(Field<double>&, const Particles&, Window, double, double);

} // namespace caustic
