#pragma once
// The painter: mass assignment (paint) and interpolation (readout) with one window, CIC or TSC,
// so that paint and readout always match (momentum conservation) and the window swaps without
// touching gravity.
//
// A particle at x contributes mass m W(x - x_i) to mesh points x_i = i H (H the cell size); the
// painted field is a mass per cell. Readout returns sum_i W(x - x_i) f(x_i). Particles must be
// on the rank owning their x-plane (migrate.hpp); contributions to and values from planes of
// other ranks go through ghost planes (ghost_planes.hpp).
#include "pm/mesh/ghost_planes.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <string>

namespace caustic {

enum class Window { CIC = 2, TSC = 3 };

// Order p of the window: its Fourier transform is prod_i sinc(k_i H / 2)^p.
inline int windowOrder(Window w) {
  return static_cast<int>(w);
}
Window windowFromName(const std::string& name); // "cic" | "tsc", throws std::invalid_argument
std::string windowName(Window w);

// Weights of the (up to) 3 mesh points touched along one axis by a particle at u (in cells):
// first index i0 and weights w[0..order-1] for points i0, i0 + 1, ...
KOKKOS_INLINE_FUNCTION void windowWeights(Window win, double u, int& i0, double w[3]) {
  if (win == Window::CIC) {
    const double f = km::floor(u);
    const double d = u - f;
    i0 = static_cast<int>(f);
    w[0] = 1.0 - d;
    w[1] = d;
    w[2] = 0.0;
  } else {
    const double r = km::floor(u + 0.5);
    const double d = u - r;
    i0 = static_cast<int>(r) - 1;
    w[0] = 0.5 * (0.5 - d) * (0.5 - d);
    w[1] = 0.75 - d * d;
    w[2] = 0.5 * (0.5 + d) * (0.5 + d);
  }
}

// Derivatives dw/du of the weights of windowWeights (same i0), in 1/cell.
KOKKOS_INLINE_FUNCTION void windowWeightDerivatives(Window win, double u, int& i0, double w[3],
                                                    double dw[3]) {
  windowWeights(win, u, i0, w);
  if (win == Window::CIC) {
    dw[0] = -1.0;
    dw[1] = 1.0;
    dw[2] = 0.0;
  } else {
    const double d = u - km::floor(u + 0.5);
    dw[0] = d - 0.5;
    dw[1] = -2.0 * d;
    dw[2] = 0.5 + d;
  }
}

template <class T> class Painter {
public:
  Painter(std::shared_ptr<const SlabDecomposition> decomp, Window win);

  Window window() const { return _win; }
  const SlabDecomposition& decomp() const { return *_decomp; }

  // rho <- mass assigned from the first `count` positions x (+ shift cells on every axis; 0.5
  // for the interlaced copy). Overwrites rho (real space). Collective.
  // (R, here and in readout and readoutGradient: double or float positions.)
  template <class R>
  void paint(Field<T>& rho, const Kokkos::View<R* [3]>& x, std::size_t count, double mass,
             double shift = 0.0) const;
  // rho <- sum over particles of scale * w(i, comp) assigned with the window (e.g. momentum
  // density from p). Overwrites rho (real space). Collective.
  void paintWeighted(Field<T>& rho, const Kokkos::View<double* [3]>& x, std::size_t count,
                     const Kokkos::View<double* [3]>& w, int comp, double scale,
                     double shift = 0.0) const;
  // out(i, comp) <- scale * f interpolated at x(i) for the first `count` positions (or
  // out(i, comp) += ... if `accumulate`). f in real space. Collective.
  template <class R, class Out>
  void readout(const Field<T>& f, const Kokkos::View<R* [3]>& x, std::size_t count, const Out& out,
               int comp, double scale, bool accumulate) const;
  // out(i, :) <- scale * (-grad phi) at x(i) for all three axes in one pass (+= if
  // `accumulate`), with the 4-point finite-difference gradient
  //   d_x phi(g) = [8 (phi(g+1) - phi(g-1)) - (phi(g+2) - phi(g-2))] / (12 H)
  // on the mesh, interpolated with the window. Fourier-equivalent to the kernel
  // i (8 sin kH - sin 2kH) / (6H) followed by three readouts, with one inverse FFT instead of
  // three and no second mesh. phi in real space. Collective.
  template <class R, class Out>
  void readoutGradient(const Field<T>& phi, const Kokkos::View<R* [3]>& x, std::size_t count,
                       const Out& out, double scale, bool accumulate) const;

  // Adjoints (pm/adjoint.hpp). Positions are held fixed where not differentiated.
  // xbar(i, :) += scale * w_i * sum_g grad W(x_i - g) f(g): the derivative of the paint (and of
  // the readout) with respect to the positions, contracted with the field f (the cotangent of the
  // painted field, or the field read out); w_i = 1, or weights(i, comp) when `weights` is given.
  void readoutWindowGradient(const Field<T>& f, const Kokkos::View<double* [3]>& x,
                             std::size_t count, const Kokkos::View<double* [3]>& xbar, double scale,
                             const Kokkos::View<double* [3]>& weights = {}, int comp = 0) const;
  // phibar <- scale * (adjoint of readoutGradient at fixed x) applied to z: the mesh field whose
  // inner product with phi equals scale * sum_i z(i, :) . (-grad phi)(x_i). Overwrites phibar.
  // Collective.
  void readoutGradientAdjoint(Field<T>& phibar, const Kokkos::View<double* [3]>& x,
                              std::size_t count, const Kokkos::View<double* [3]>& z,
                              double scale) const;
  // xbar(i, d) += scale * sum_c z(i, c) dF_c/dx_d (x_i), F = readoutGradient of phi (scale 1) at
  // fixed phi. Collective.
  void readoutGradientJacobianT(const Field<T>& phi, const Kokkos::View<double* [3]>& x,
                                std::size_t count, const Kokkos::View<double* [3]>& z,
                                const Kokkos::View<double* [3]>& xbar, double scale) const;
  // Both in one pass over the stencil (it is read, and its ghosts gathered, once): f(i, :) <-
  // readoutGradient of phi (scale 1), bit for bit, and xbar as readoutGradientJacobianT (this
  // pass with f discarded). With `window_field`, xbar then also gets readoutWindowGradient of it
  // with `window_scale` in the same pass, bit for bit what that call after this one adds (the
  // reverse kick's two position terms in one read of the particles). Collective.
  void readoutGradientWithJacobianT(const Field<T>& phi, const Kokkos::View<double* [3]>& x,
                                    std::size_t count, const Kokkos::View<double* [3]>& f,
                                    const Kokkos::View<double* [3]>& z,
                                    const Kokkos::View<double* [3]>& xbar, double scale,
                                    const Field<T>* window_field = nullptr,
                                    double window_scale = 0.0) const;

private:
  const Kokkos::View<T***>& wideBuffer() const;

  std::shared_ptr<const SlabDecomposition> _decomp;
  Window _win;
  GhostPlanes _ghosts, _wide;
  Kokkos::View<T***> _buf; // the ghost planes, reused between calls: no allocation in the step
  mutable Kokkos::View<T***> _wideBuf; // wider ghosts of the gradient readout, made on first use
};

// Convenience: paints every particle of `parts` with mass `mass`.
template <class T, class R>
void paint(Field<T>& rho, const BasicParticles<R>& parts, Window win, double mass,
           double shift = 0.0);

// delta = rho / mean - 1 of the particles (equal masses, `total_particles` over all ranks),
// painted with `painter` at x + shift cells. Overwrites delta (real space). Collective.
template <class T, class R>
void paintDensityContrast(Field<T>& delta, const Painter<T>& painter,
                          const BasicParticles<R>& parts, double total_particles,
                          double shift = 0.0);

extern template class Painter<float>;
extern template class Painter<double>;

} // namespace caustic
