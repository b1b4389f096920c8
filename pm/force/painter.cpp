#include "pm/force/painter.hpp"

#include "pm/core/profiling.hpp"

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

std::string windowName(Window w) {
  return w == Window::CIC ? "cic" : "tsc";
}

namespace {
// Planes on each side of the slab. An owned particle has u = x / H in [x0, x0 + nx] (the upper
// end when x / H rounds up to the slab edge); TSC with a half-cell shift then reaches plane
// x0 + nx + 2, and x0 - 1 without shift.
// The finite-difference gradient readout reaches two planes further.
constexpr int kGhost = 3;
constexpr int kGhostGradient = 5;

// x / H clamped to [0, n] (NaN to 0, so that a corrupt particle never addresses outside the
// buffers; the run loop reports it after the step). Compares instead of fmin/fmax, which
// Kokkos 3.4 forwards to libm calls that are not inlined.
KOKKOS_INLINE_FUNCTION double clampToBox(double u, int n) {
  return u > 0.0 ? (u < double(n) ? u : double(n)) : 0.0;
}

// Window of one particle: first buffer plane / y / z index and the weights per axis.
struct Stencil {
  int i0[3];
  double w[3][3];
};

KOKKOS_INLINE_FUNCTION Stencil stencil(Window win, const double x[3], double inv_cell, double shift,
                                       int n, int x0) {
  Stencil s;
  for (int c = 0; c < 3; ++c) {
    // Same expression as the owner computation in migrate(), clamped to the box.
    const double u = clampToBox(x[c] * inv_cell, n);
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
    : _decomp(std::move(decomp)), _win(win), _ghosts(_decomp, kGhost),
      _wide(_decomp, kGhostGradient) {
  _buf = _ghosts.makeBuffer<T>("caustic::Painter::ghosts");
}

namespace {
// Plane b of the window (buffer numbering, b = global plane - x0 + kGhost) lies in the field
// (interior) or in ghost g.
// The field offset of the first value of the wide stencil (the window and two points more on
// every side, for the 4-point differences) of a particle whose window starts at global point
// i0, when that stencil lies in this rank's planes and wraps in neither y nor z, as it does for
// nearly every particle: its values are then at constant offsets from there. -1 otherwise (the
// ghost planes and wrapped rows are addressed per plane: WideSpan and StencilPlanes).
KOKKOS_INLINE_FUNCTION long long wideStencilOffset(const int i0[3], int order, int n, int x0,
                                                   int nx) {
  const int lx = i0[0] - x0 - 2, y0 = i0[1] - 2, z0 = i0[2] - 2, span = order + 4;
  if (lx < 0 || lx + span > nx || y0 < 0 || y0 + span > n || z0 < 0 || z0 + span > n)
    return -1;
  return (static_cast<long long>(lx) * n + y0) * (2 * (n / 2 + 1)) + z0;
}
KOKKOS_INLINE_FUNCTION bool interior(int b, int nx) {
  return b >= kGhost && b < kGhost + nx;
}
KOKKOS_INLINE_FUNCTION int ghostIndex(int b, int nx) {
  return b < kGhost ? b : b - nx;
}
} // namespace

namespace {
// Addressing of the wide-ghost buffer (kGhostGradient planes each side) around a particle whose
// window starts at global plane i0x: entry j stands for plane i0x - 2 + j, row/column i0 - 2 + j.
// Used where the stencil leaves this rank's planes or wraps: offsets into the field (in[j]) or
// the ghost buffer, for the scatter (which adds through a view of either).
struct WideSpan {
  static constexpr int span = 3 + 4;
  std::size_t plane[span]; // offset of the plane (field or ghost buffer)
  bool in[span];
  int stride[span];
  std::size_t row[span], col[span];
  KOKKOS_INLINE_FUNCTION WideSpan(const int i0[3], int order, int n, int x0, int nx) {
    const std::size_t fplane = static_cast<std::size_t>(n) * (2 * (n / 2 + 1)),
                      gplane = std::size_t(n) * n;
    constexpr int W = kGhostGradient;
    for (int j = 0; j < order + 4; ++j) {
      const int b = i0[0] - x0 + W - 2 + j;
      in[j] = b >= W && b < W + nx;
      plane[j] = in[j] ? (b - W) * fplane : (b < W ? b : b - nx) * gplane;
      stride[j] = in[j] ? 2 * (n / 2 + 1) : n;
      row[j] = static_cast<std::size_t>(wrap(i0[1] - 2 + j, n));
      col[j] = static_cast<std::size_t>(wrap(i0[2] - 2 + j, n));
    }
  }
  KOKKOS_INLINE_FUNCTION std::size_t offset(int jx, int jy, int jz) const {
    return plane[jx] + row[jy] * stride[jx] + col[jz];
  }
};

// The same addressing for the gathers: each plane's pointer (field or ghost buffer) resolved
// once, so that no read branches on where its plane lies. S = ORDER + 4 points per axis.
template <class T, int S> struct StencilPlanes {
  WideSpan span;
  const T* plane[S];
  KOKKOS_INLINE_FUNCTION StencilPlanes(const int i0[3], const T* fbase, const T* gbase, int n,
                                       int x0, int nx)
      : span(i0, S - 4, n, x0, nx) {
    for (int j = 0; j < S; ++j)
      plane[j] = (span.in[j] ? fbase : gbase) + span.plane[j];
  }
  KOKKOS_FORCEINLINE_FUNCTION T operator()(int jx, int jy, int jz) const {
    return plane[jx][span.row[jy] * span.stride[jx] + span.col[jz]];
  }
};
} // namespace

namespace {
// The deposit with the window order a compile-time constant (unrolled loops).
// Particle weights: one mass for all, or scale * w(p, comp) per particle.
struct ConstantWeight {
  double mass;
  KOKKOS_INLINE_FUNCTION double operator()(std::size_t) const { return mass; }
};
struct ComponentWeight {
  Kokkos::View<double* [3]> w;
  int comp;
  double scale;
  KOKKOS_INLINE_FUNCTION double operator()(std::size_t p) const { return scale * w(p, comp); }
};

template <int ORDER, class T, class Pos, class Weight>
void depositKernel(Field<T>& rho, const Kokkos::View<T***>& ghosts, const Pos& X, std::size_t count,
                   Weight weight, double shift, int n, int x0, int nx, double inv_cell) {
  const Window win = ORDER == 2 ? Window::CIC : Window::TSC;
  auto field = rho.real();
  // Flat aliases: the deposit computes flat offsets, with plane and row resolved once.
  Kokkos::View<T*, Kokkos::MemoryUnmanaged> gflat(ghosts.data(), ghosts.size());
  auto sf = Kokkos::Experimental::create_scatter_view(field);
  auto sg = Kokkos::Experimental::create_scatter_view(gflat);
  const std::size_t fplane = static_cast<std::size_t>(n) * (2 * (n / 2 + 1)),
                    gplane = std::size_t(n) * n;
  const int fstride = 2 * (n / 2 + 1);
  Kokkos::parallel_for(
      "caustic::Painter::deposit", Kokkos::RangePolicy<>(0, count),
      KOKKOS_LAMBDA(const std::size_t p) {
        auto af = sf.access();
        auto ag = sg.access();
        const double x[3] = {X(p, 0), X(p, 1), X(p, 2)};
        const Stencil s = stencil(win, x, inv_cell, shift, n, x0);
        const double mass = weight(p);
        // Same sums in the same order whatever the addressing (both paths give the same bits).
        auto deposit = [&](auto add) {
          for (int a = 0; a < ORDER; ++a)
            for (int bb = 0; bb < ORDER; ++bb) {
              const double wab = mass * s.w[0][a] * s.w[1][bb];
              for (int c = 0; c < ORDER; ++c)
                add(a, bb, c, T(wab * s.w[2][c]));
            }
        };
        const int b0 = s.i0[0], y0 = s.i0[1], z0 = s.i0[2];
        if (interior(b0, nx) && interior(b0 + ORDER - 1, nx) && y0 >= 0 && y0 + ORDER <= n &&
            z0 >= 0 && z0 + ORDER <= n) {
          // The usual case: the window lies in this rank's planes and wraps in neither y nor z,
          // so every point is at a constant offset from one index.
          const std::size_t base = (b0 - kGhost) * fplane + std::size_t(y0) * fstride + z0;
          deposit(
              [&](int a, int bb, int c, T w) { af(base + a * fplane + bb * fstride + c) += w; });
          return;
        }
        // Near slab edges and the periodic faces: plane offsets with their row stride, wrapped
        // row and column offsets, each resolved once.
        bool in[ORDER];
        std::size_t base[ORDER], stride[ORDER], row[ORDER], col[ORDER];
        for (int j = 0; j < ORDER; ++j) {
          in[j] = interior(b0 + j, nx);
          base[j] = in[j] ? (b0 + j - kGhost) * fplane : ghostIndex(b0 + j, nx) * gplane;
          stride[j] = in[j] ? fstride : n;
          row[j] = static_cast<std::size_t>(wrap(y0 + j, n));
          col[j] = static_cast<std::size_t>(wrap(z0 + j, n));
        }
        deposit([&](int a, int bb, int c, T w) {
          const std::size_t i = base[a] + row[bb] * stride[a] + col[c];
          if (in[a])
            af(i) += w;
          else
            ag(i) += w;
        });
      });
  Kokkos::Experimental::contribute(field, sf);
  Kokkos::Experimental::contribute(gflat, sg);
}
} // namespace

template <class T>
template <class R>
void Painter<T>::paint(Field<T>& rho, const Kokkos::View<R* [3]>& X, std::size_t count, double mass,
                       double shift) const {
  ScopedRegion region("caustic::Painter::paint");
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  const Window win = _win;
  auto ghosts = _buf;
  rho.setZero();
  Kokkos::deep_copy(ghosts, T(0));
  if (count > 0) {
    if (win == Window::CIC)
      depositKernel<2>(rho, ghosts, X, count, ConstantWeight{mass}, shift, n, x0, nx, inv_cell);
    else
      depositKernel<3>(rho, ghosts, X, count, ConstantWeight{mass}, shift, n, x0, nx, inv_cell);
  }
  _ghosts.scatterAdd(ghosts, rho);
}

template <class T>
void Painter<T>::paintWeighted(Field<T>& rho, const Kokkos::View<double* [3]>& X, std::size_t count,
                               const Kokkos::View<double* [3]>& w, int comp, double scale,
                               double shift) const {
  ScopedRegion region("caustic::Painter::paintWeighted");
  if (comp < 0 || comp > 2)
    throw std::invalid_argument("Painter::paintWeighted: component " + std::to_string(comp) +
                                " is not 0, 1 or 2");
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  auto ghosts = _buf;
  rho.setZero();
  Kokkos::deep_copy(ghosts, T(0));
  const ComponentWeight weight{w, comp, scale};
  if (count > 0) {
    if (_win == Window::CIC)
      depositKernel<2>(rho, ghosts, X, count, weight, shift, n, x0, nx, inv_cell);
    else
      depositKernel<3>(rho, ghosts, X, count, weight, shift, n, x0, nx, inv_cell);
  }
  _ghosts.scatterAdd(ghosts, rho);
}

template <class T>
template <class R, class Out>
void Painter<T>::readout(const Field<T>& f, const Kokkos::View<R* [3]>& X, std::size_t count,
                         const Out& out, int comp, double scale, bool accumulate) const {
  ScopedRegion region("caustic::Painter::readout");
  auto ghosts = _buf;
  _ghosts.gather(f, ghosts);
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  auto field = f.real();
  Kokkos::parallel_for(
      "caustic::Painter::readout", Kokkos::RangePolicy<>(0, count),
      KOKKOS_LAMBDA(const std::size_t p) {
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

namespace {
// The gradient readout with the window order a compile-time constant (unrolled loops). (Over
// 80 lines on purpose: the hot kernel of the step; one body keeps the two addressing paths and
// the stencil sums visibly the same, which the bit-identity of the fast path relies on.)
template <int ORDER, class T, class Pos, class Out>
void gradientKernel(const Pos& X, std::size_t count, const Out& out, double scale, bool accumulate,
                    const T* fbase, const T* gbase, int n, int x0, int nx, double inv_cell) {
  const Window win = ORDER == 2 ? Window::CIC : Window::TSC;
  const double c1 = 8.0 / 12.0 * inv_cell, c2 = 1.0 / 12.0 * inv_cell;
  const std::size_t fplane = static_cast<std::size_t>(n) * (2 * (n / 2 + 1));
  const int fstride = 2 * (n / 2 + 1);
  constexpr int span = ORDER + 4;
  Kokkos::parallel_for(
      "caustic::Painter::readoutGradient", Kokkos::RangePolicy<>(0, count),
      KOKKOS_LAMBDA(const std::size_t p) {
        int i0[3];
        double w[3][3];
        for (int c = 0; c < 3; ++c) {
          const double u = clampToBox(X(p, c) * inv_cell, n);
          windowWeights(win, u, i0[c], w[c]);
        }
        // Arithmetic in the mesh precision T; the differences of each order summed apart, in
        // the same order whatever the addressing below (so both paths give the same bits).
        T d1[3] = {0, 0, 0}, d2[3] = {0, 0, 0};
        auto accumulate_at = [&](auto at) {
          for (int a = 0; a < ORDER; ++a) {
            const int jx = a + 2;
            for (int bb = 0; bb < ORDER; ++bb) {
              const int jy = bb + 2;
              const T wab = T(w[0][a] * w[1][bb]);
              for (int cc = 0; cc < ORDER; ++cc) {
                const int jz = cc + 2;
                const T wt = wab * T(w[2][cc]);
                d1[0] += wt * (at(jx + 1, jy, jz) - at(jx - 1, jy, jz));
                d2[0] += wt * (at(jx + 2, jy, jz) - at(jx - 2, jy, jz));
                d1[1] += wt * (at(jx, jy + 1, jz) - at(jx, jy - 1, jz));
                d2[1] += wt * (at(jx, jy + 2, jz) - at(jx, jy - 2, jz));
                d1[2] += wt * (at(jx, jy, jz + 1) - at(jx, jy, jz - 1));
                d2[2] += wt * (at(jx, jy, jz + 2) - at(jx, jy, jz - 2));
              }
            }
          }
        };
        // The stencil reaches 2 points beyond the window on each axis.
        if (const long long o = wideStencilOffset(i0, ORDER, n, x0, nx); o >= 0) {
          // The usual case: the span lies in this rank's planes and wraps in neither y nor z,
          // so every value is at a constant offset from one pointer.
          const T* base = fbase + o;
          accumulate_at(
              [&](int jx, int jy, int jz) -> T { return base[jx * fplane + jy * fstride + jz]; });
        } else {
          // Near slab edges and the periodic faces: StencilPlanes.
          const StencilPlanes<T, span> sp(i0, fbase, gbase, n, x0, nx);
          accumulate_at(sp);
        }
        double g[3];
        for (int c = 0; c < 3; ++c)
          g[c] = c1 * double(d1[c]) - c2 * double(d2[c]);
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
} // namespace

template <class T>
template <class R, class Out>
void Painter<T>::readoutGradient(const Field<T>& phi, const Kokkos::View<R* [3]>& X,
                                 std::size_t count, const Out& out, double scale,
                                 bool accumulate) const {
  ScopedRegion region("caustic::Painter::readoutGradient");
  _wide.gather(phi, wideBuffer());
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  if (_win == Window::CIC)
    gradientKernel<2>(X, count, out, scale, accumulate, phi.real().data(), _wideBuf.data(), n, x0,
                      nx, inv_cell);
  else
    gradientKernel<3>(X, count, out, scale, accumulate, phi.real().data(), _wideBuf.data(), n, x0,
                      nx, inv_cell);
}

template <class T> const Kokkos::View<T***>& Painter<T>::wideBuffer() const {
  if (_wideBuf.extent(0) != static_cast<std::size_t>(_wide.ghostPlanes()))
    _wideBuf = _wide.makeBuffer<T>("caustic::Painter::gradientGhosts");
  return _wideBuf;
}

namespace {
// Window weights, their derivatives (in 1/cell) and first indices of one particle.
struct WindowDerivs {
  int i0[3];
  double w[3][3], dw[3][3];
};
KOKKOS_INLINE_FUNCTION WindowDerivs windowDerivs(Window win, const Kokkos::View<double* [3]>& X,
                                                 std::size_t p, double inv_cell, int n) {
  WindowDerivs s;
  for (int c = 0; c < 3; ++c) {
    const double u = clampToBox(X(p, c) * inv_cell, n);
    windowWeightDerivatives(win, u, s.i0[c], s.w[c], s.dw[c]);
  }
  return s;
}

} // namespace

namespace {
// g <- sum_g dW/du(x - g) f(g) (u = x / H) of one particle, with the window order a compile-time
// constant; a window inside this rank's planes that wraps in neither y nor z is read at constant
// offsets from one pointer (the same values, summed in the same order, as the general
// addressing through the kGhost buffer).
template <int ORDER, class T>
KOKKOS_FORCEINLINE_FUNCTION void windowGradientAt(const WindowDerivs& s, const T* fbase,
                                                  const Kokkos::View<T***>& ghosts, int n, int x0,
                                                  int nx, double g[3]) {
  const std::size_t fstride = 2 * (n / 2 + 1), fplane = std::size_t(n) * fstride;
  g[0] = g[1] = g[2] = 0.0;
  auto accumulate = [&](auto at) {
    for (int a = 0; a < ORDER; ++a)
      for (int bb = 0; bb < ORDER; ++bb)
        for (int c = 0; c < ORDER; ++c) {
          const double fv = at(a, bb, c);
          g[0] += s.dw[0][a] * s.w[1][bb] * s.w[2][c] * fv;
          g[1] += s.w[0][a] * s.dw[1][bb] * s.w[2][c] * fv;
          g[2] += s.w[0][a] * s.w[1][bb] * s.dw[2][c] * fv;
        }
  };
  const int lx = s.i0[0] - x0;
  if (lx >= 0 && lx + ORDER <= nx && s.i0[1] >= 0 && s.i0[1] + ORDER <= n && s.i0[2] >= 0 &&
      s.i0[2] + ORDER <= n) {
    const T* base = fbase + std::size_t(lx) * fplane + std::size_t(s.i0[1]) * fstride + s.i0[2];
    accumulate([&](int a, int bb, int c) -> double {
      return double(base[a * fplane + bb * fstride + c]);
    });
  } else {
    accumulate([&](int a, int bb, int c) -> double {
      const int b = s.i0[0] - x0 + kGhost + a;
      const int y = wrap(s.i0[1] + bb, n), z = wrap(s.i0[2] + c, n);
      return interior(b, nx) ? double(fbase[Field<T>::realIndex(b - kGhost, y, z, n)])
                             : double(ghosts(ghostIndex(b, nx), y, z));
    });
  }
}

// The kernel of readoutWindowGradient.
template <int ORDER, class T>
void windowGradientKernel(const Kokkos::View<double* [3]>& X, std::size_t count,
                          const Kokkos::View<double* [3]>& xbar, double scale,
                          const Kokkos::View<double* [3]>& weights, int comp, bool weighted,
                          const T* fbase, const Kokkos::View<T***>& ghosts, Window win, int n,
                          int x0, int nx, double inv_cell) {
  Kokkos::parallel_for(
      "caustic::Painter::readoutWindowGradient", Kokkos::RangePolicy<>(0, count),
      KOKKOS_LAMBDA(const std::size_t p) {
        const WindowDerivs s = windowDerivs(win, X, p, inv_cell, n);
        double g[3];
        windowGradientAt<ORDER, T>(s, fbase, ghosts, n, x0, nx, g);
        const double k = scale * inv_cell * (weighted ? weights(p, comp) : 1.0);
        for (int d = 0; d < 3; ++d)
          xbar(p, d) += k * g[d];
      });
  Kokkos::fence();
}
} // namespace

template <class T>
void Painter<T>::readoutWindowGradient(const Field<T>& f, const Kokkos::View<double* [3]>& X,
                                       std::size_t count, const Kokkos::View<double* [3]>& xbar,
                                       double scale, const Kokkos::View<double* [3]>& weights,
                                       int comp) const {
  ScopedRegion region("caustic::Painter::readoutWindowGradient");
  auto ghosts = _buf;
  _ghosts.gather(f, ghosts);
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  const bool weighted = weights.extent(0) > 0;
  const T* fbase = f.real().data();
  if (order == 2)
    windowGradientKernel<2, T>(X, count, xbar, scale, weights, comp, weighted, fbase, ghosts, win,
                               n, x0, nx, inv_cell);
  else
    windowGradientKernel<3, T>(X, count, xbar, scale, weights, comp, weighted, fbase, ghosts, win,
                               n, x0, nx, inv_cell);
  Kokkos::fence();
}

namespace {
// The 4-point gradient readout in separable form, for the reverse pass. Force component e is
//   F_e(x) = sum over the lines of the stencil along axis e (the window's ORDER^2 rows of the
//            other two axes, each ORDER + 4 points long) of W_other * sum_j L_e[j] phi(line, j),
// L_e[j] = sum_k w_e[k] coef(j - 2 - k), coef(+-1) = -+c1, coef(+-2) = +-c2, the window and the
// differences of readoutGradient folded into one weight per point of the line. The stencil's
// (ORDER + 4)^3 box holds ORDER^3 (1 + 12 / ORDER) distinct points (56 for CIC), against the
// 12 ORDER^3 reads (96) of the difference form. The adjoint scatter adds to each point once
// (11% fewer instructions than scattering the differences); the gathers keep the difference form,
// which costs fewer instructions than summing the lines with their weights.
template <int ORDER>
KOKKOS_INLINE_FUNCTION void gradientLine(const double w[3], double c1, double c2,
                                         double L[ORDER + 4]) {
  for (int j = 0; j < ORDER + 4; ++j)
    L[j] = 0.0;
  for (int k = 0; k < ORDER; ++k) {
    const int g = k + 2;
    L[g - 2] -= c2 * w[k];
    L[g - 1] += c1 * w[k];
    L[g + 1] -= c1 * w[k];
    L[g + 2] += c2 * w[k];
  }
}

KOKKOS_INLINE_FUNCTION constexpr bool inWindow(int j, int order) {
  return j >= 2 && j < 2 + order;
}

// The kernel of readoutGradientAdjoint with the window order a compile-time constant: the
// transpose of the separable form, one addition per distinct point of the stencil.
template <int ORDER, class T, class SF, class SG>
void gradientAdjointKernel(const Kokkos::View<double* [3]>& X, std::size_t count,
                           const Kokkos::View<double* [3]>& Z, double scale, const SF& sf,
                           const SG& sg, Window win, int n, int x0, int nx, double inv_cell,
                           double c1, double c2, std::size_t fplane, std::size_t fstride) {
  constexpr int S = ORDER + 4;
  Kokkos::parallel_for(
      "caustic::Painter::readoutGradientAdjoint", Kokkos::RangePolicy<>(0, count),
      KOKKOS_LAMBDA(const std::size_t p) {
        auto af = sf.access();
        auto ag = sg.access();
        int i0[3];
        double w[3][3];
        for (int c = 0; c < 3; ++c)
          windowWeights(win, clampToBox(X(p, c) * inv_cell, n), i0[c], w[c]);
        // zl[e][j] = scale z_e L_e[j]: the weight of point j of a line along e, less W_other.
        double zl[3][S];
        for (int e = 0; e < 3; ++e) {
          gradientLine<ORDER>(w[e], c1, c2, zl[e]);
          const double ze = scale * Z(p, e);
          for (int j = 0; j < S; ++j)
            zl[e][j] *= ze;
        }
        // Every distinct point once: a point off the window on axis e lies on one line (along
        // e); a point of the window's own ORDER^3 block lies on one line of each axis.
        auto scatter = [&](auto add) {
          for (int jx = 0; jx < S; ++jx) {
            if (!inWindow(jx, ORDER)) {
              for (int b = 0; b < ORDER; ++b)
                for (int c = 0; c < ORDER; ++c)
                  add(jx, b + 2, c + 2, zl[0][jx] * w[1][b] * w[2][c]);
              continue;
            }
            const int a = jx - 2;
            for (int jy = 0; jy < S; ++jy) {
              if (!inWindow(jy, ORDER)) {
                for (int c = 0; c < ORDER; ++c)
                  add(jx, jy, c + 2, zl[1][jy] * w[0][a] * w[2][c]);
                continue;
              }
              const int b = jy - 2;
              for (int jz = 0; jz < S; ++jz) {
                if (!inWindow(jz, ORDER)) {
                  add(jx, jy, jz, zl[2][jz] * w[0][a] * w[1][b]);
                  continue;
                }
                const int c = jz - 2;
                add(jx, jy, jz,
                    zl[0][jx] * w[1][b] * w[2][c] + zl[1][jy] * w[0][a] * w[2][c] +
                        zl[2][jz] * w[0][a] * w[1][b]);
              }
            }
          }
        };
        if (const long long o = wideStencilOffset(i0, ORDER, n, x0, nx); o >= 0) {
          // The usual case (as in readoutGradient): the stencil lies in this rank's planes and
          // wraps in neither y nor z: every value at a constant offset from one index.
          const std::size_t o0 = static_cast<std::size_t>(o);
          scatter([&](int jx, int jy, int jz, double v) {
            af(o0 + jx * fplane + jy * fstride + jz) += T(v);
          });
        } else {
          const WideSpan ws(i0, ORDER, n, x0, nx);
          scatter([&](int jx, int jy, int jz, double v) {
            const std::size_t o = ws.offset(jx, jy, jz);
            if (ws.in[jx])
              af(o) += T(v);
            else
              ag(o) += T(v);
          });
        }
      });
}
} // namespace

template <class T>
void Painter<T>::readoutGradientAdjoint(Field<T>& phibar, const Kokkos::View<double* [3]>& X,
                                        std::size_t count, const Kokkos::View<double* [3]>& Z,
                                        double scale) const {
  ScopedRegion region("caustic::Painter::readoutGradientAdjoint");
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  auto ghosts = wideBuffer();
  phibar.setZero();
  Kokkos::deep_copy(ghosts, T(0));
  auto field = phibar.real();
  Kokkos::View<T*, Kokkos::MemoryUnmanaged> gflat(ghosts.data(), ghosts.size());
  auto sf = Kokkos::Experimental::create_scatter_view(field);
  auto sg = Kokkos::Experimental::create_scatter_view(gflat);
  // readoutGradient: F_c = -sum W [c1 (phi(+e_c) - phi(-e_c)) - c2 (phi(+2e_c) - phi(-2e_c))].
  const double c1 = 8.0 / 12.0 * inv_cell, c2 = 1.0 / 12.0 * inv_cell;
  const std::size_t fplane = static_cast<std::size_t>(n) * (2 * (n / 2 + 1));
  const std::size_t fstride = 2 * (n / 2 + 1);
  if (order == 2)
    gradientAdjointKernel<2, T>(X, count, Z, scale, sf, sg, win, n, x0, nx, inv_cell, c1, c2,
                                fplane, fstride);
  else
    gradientAdjointKernel<3, T>(X, count, Z, scale, sf, sg, win, n, x0, nx, inv_cell, c1, c2,
                                fplane, fstride);
  Kokkos::Experimental::contribute(field, sf);
  Kokkos::Experimental::contribute(gflat, sg);
  _wide.scatterAdd(ghosts, phibar);
}

template <class T>
void Painter<T>::readoutGradientJacobianT(const Field<T>& phi, const Kokkos::View<double* [3]>& X,
                                          std::size_t count, const Kokkos::View<double* [3]>& Z,
                                          const Kokkos::View<double* [3]>& xbar,
                                          double scale) const {
  // The fused pass with the force discarded (the reverse pass wants both; tests the Jacobian).
  const Kokkos::View<double* [3]> force(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::Painter::discardedForce"), count);
  readoutGradientWithJacobianT(phi, X, count, force, Z, xbar, scale);
}

namespace {
// The kernel of readoutGradientWithJacobianT with the window order a compile-time constant. The
// force with readoutGradient's arithmetic (sums of differences in T, each order apart: bit for
// bit its result), and x-bar from the same reads: per window point, the differences contracted
// with z first (h = z . grad phi, in double), then h times the window's gradient.
template <int ORDER, class T>
void gradientWithJacobianKernel(const Kokkos::View<double* [3]>& X, std::size_t count,
                                const Kokkos::View<double* [3]>& F,
                                const Kokkos::View<double* [3]>& Z,
                                const Kokkos::View<double* [3]>& xbar, double scale, const T* fbase,
                                const T* gbase, const T* wbase, const Kokkos::View<T***>& wghosts,
                                double wscale, Window win, int n, int x0, int nx, double inv_cell,
                                double c1, double c2, std::size_t fplane, std::size_t fstride) {
  Kokkos::parallel_for(
      "caustic::Painter::readoutGradientWithJacobianT", Kokkos::RangePolicy<>(0, count),
      KOKKOS_LAMBDA(const std::size_t p) {
        const WindowDerivs s = windowDerivs(win, X, p, inv_cell, n);
        const double z1[3] = {c1 * Z(p, 0), c1 * Z(p, 1), c1 * Z(p, 2)};
        const double z2[3] = {c2 * Z(p, 0), c2 * Z(p, 1), c2 * Z(p, 2)};
        T d1[3] = {0, 0, 0}, d2[3] = {0, 0, 0};
        double xb[3] = {0, 0, 0};
        auto accumulate = [&](auto at) {
          for (int a = 0; a < ORDER; ++a)
            for (int bb = 0; bb < ORDER; ++bb) {
              const T wab = T(s.w[0][a] * s.w[1][bb]);
              for (int c = 0; c < ORDER; ++c) {
                const T wt = wab * T(s.w[2][c]);
                const int j[3] = {a + 2, bb + 2, c + 2};
                double h = 0.0;
                for (int e = 0; e < 3; ++e) {
                  int p1[3] = {j[0], j[1], j[2]}, m1[3] = {j[0], j[1], j[2]};
                  int p2[3] = {j[0], j[1], j[2]}, m2[3] = {j[0], j[1], j[2]};
                  p1[e] += 1;
                  m1[e] -= 1;
                  p2[e] += 2;
                  m2[e] -= 2;
                  const T vp1 = at(p1[0], p1[1], p1[2]), vm1 = at(m1[0], m1[1], m1[2]);
                  const T vp2 = at(p2[0], p2[1], p2[2]), vm2 = at(m2[0], m2[1], m2[2]);
                  d1[e] += wt * (vp1 - vm1);
                  d2[e] += wt * (vp2 - vm2);
                  h += z1[e] * (double(vp1) - double(vm1)) - z2[e] * (double(vp2) - double(vm2));
                }
                xb[0] += h * (s.dw[0][a] * s.w[1][bb] * s.w[2][c]);
                xb[1] += h * (s.w[0][a] * s.dw[1][bb] * s.w[2][c]);
                xb[2] += h * (s.w[0][a] * s.w[1][bb] * s.dw[2][c]);
              }
            }
        };
        if (const long long o = wideStencilOffset(s.i0, ORDER, n, x0, nx); o >= 0) {
          const T* base = fbase + o;
          accumulate(
              [&](int jx, int jy, int jz) -> T { return base[jx * fplane + jy * fstride + jz]; });
        } else {
          accumulate(StencilPlanes<T, ORDER + 4>(s.i0, fbase, gbase, n, x0, nx));
        }
        for (int c = 0; c < 3; ++c)
          F(p, c) = -1.0 * (c1 * double(d1[c]) - c2 * double(d2[c]));
        for (int d = 0; d < 3; ++d)
          xbar(p, d) -= scale * inv_cell * xb[d];
        if (wbase) {
          // The window-gradient term (readoutWindowGradient's arithmetic, added after).
          double g[3];
          windowGradientAt<ORDER, T>(s, wbase, wghosts, n, x0, nx, g);
          const double k = wscale * inv_cell;
          for (int d = 0; d < 3; ++d)
            xbar(p, d) += k * g[d];
        }
      });
  Kokkos::fence();
}
} // namespace

template <class T>
void Painter<T>::readoutGradientWithJacobianT(const Field<T>& phi,
                                              const Kokkos::View<double* [3]>& X, std::size_t count,
                                              const Kokkos::View<double* [3]>& F,
                                              const Kokkos::View<double* [3]>& Z,
                                              const Kokkos::View<double* [3]>& xbar, double scale,
                                              const Field<T>* window_field,
                                              double window_scale) const {
  ScopedRegion region("caustic::Painter::readoutGradientWithJacobianT");
  auto ghosts = wideBuffer();
  _wide.gather(phi, ghosts);
  if (window_field)
    _ghosts.gather(*window_field, _buf);
  const T* wbase = window_field ? window_field->real().data() : nullptr;
  const int n = _decomp->n(), x0 = _decomp->xStart(), nx = _decomp->localNx();
  const double inv_cell = 1.0 / _decomp->cell();
  const int order = windowOrder(_win);
  const Window win = _win;
  const T* fbase = phi.real().data();
  const T* gbase = ghosts.data();
  const double c1 = 8.0 / 12.0 * inv_cell, c2 = 1.0 / 12.0 * inv_cell;
  const std::size_t fplane = static_cast<std::size_t>(n) * (2 * (n / 2 + 1));
  const std::size_t fstride = 2 * (n / 2 + 1);
  if (order == 2)
    gradientWithJacobianKernel<2, T>(X, count, F, Z, xbar, scale, fbase, gbase, wbase, _buf,
                                     window_scale, win, n, x0, nx, inv_cell, c1, c2, fplane,
                                     fstride);
  else
    gradientWithJacobianKernel<3, T>(X, count, F, Z, xbar, scale, fbase, gbase, wbase, _buf,
                                     window_scale, win, n, x0, nx, inv_cell, c1, c2, fplane,
                                     fstride);
  Kokkos::fence();
}

template <class T, class R>
void paint(Field<T>& rho, const BasicParticles<R>& parts, Window win, double mass, double shift) {
  Painter<T>(rho.decompPtr(), win).paint(rho, parts.x, parts.size(), mass, shift);
}

template <class T, class R>
void paintDensityContrast(Field<T>& delta, const Painter<T>& painter,
                          const BasicParticles<R>& parts, double total_particles, double shift) {
  const auto& d = delta.decomp();
  const int n = d.n();
  // Mass n^3 / N per particle: the painted field is rho / mean.
  painter.paint(delta, parts.x, parts.size(), double(n) * n * n / total_particles, shift);
  auto r = delta.real();
  d.forEachPoint(
      "caustic::paintDensityContrast", KOKKOS_LAMBDA(const MeshPoint& p) { r(p.index) -= T(1); });
}

template class Painter<float>;
template class Painter<double>;
// Mesh precision T, position precision R, output precision O: every combination.
#define CAUSTIC_PAINTER_READOUTS(T, R, O)                                                          \
  template void Painter<T>::readout(const Field<T>&, const Kokkos::View<R* [3]>&, std::size_t,     \
                                    const Kokkos::View<O* [3]>&, int, double, bool) const;         \
  template void Painter<T>::readoutGradient(const Field<T>&, const Kokkos::View<R* [3]>&,          \
                                            std::size_t, const Kokkos::View<O* [3]>&, double,      \
                                            bool) const;
#define CAUSTIC_PAINTER_POSITIONS(T, R)                                                            \
  template void Painter<T>::paint(Field<T>&, const Kokkos::View<R* [3]>&, std::size_t, double,     \
                                  double) const;                                                   \
  template void paint(Field<T>&, const BasicParticles<R>&, Window, double, double);                \
  template void paintDensityContrast(Field<T>&, const Painter<T>&, const BasicParticles<R>&,       \
                                     double, double);                                              \
  CAUSTIC_PAINTER_READOUTS(T, R, float)                                                            \
  CAUSTIC_PAINTER_READOUTS(T, R, double)
CAUSTIC_PAINTER_POSITIONS(float, float)
CAUSTIC_PAINTER_POSITIONS(float, double)
CAUSTIC_PAINTER_POSITIONS(double, float)
CAUSTIC_PAINTER_POSITIONS(double, double)
#undef CAUSTIC_PAINTER_POSITIONS
#undef CAUSTIC_PAINTER_READOUTS

} // namespace caustic
