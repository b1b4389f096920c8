#pragma once
// FastPM kick-drift-kick stepping (Feng et al. 2016).
//
// With p = a^2 dx/dt [H0 Mpc/h], dx/da = p / (a^3 E) and dp/da = F / (a^2 E). FastPM replaces
// the integrals of these over a step by factors that make the Zel'dovich (linear) growth exact
// for any step size. With G_p(a) = a^2 E(a) dD1/dlna (so that p = G_p psi in linear theory) and
// G_f(a) = a^2 E dG_p/da = 3/2 Omega_m D1(a):
//   drift  x += p(a_c) [D1(a_f) - D1(a_i)] / G_p(a_c)
//   kick   p += F(a_c) [G_p(a_f) - G_p(a_i)] / G_f(a_c)
// A step a_i -> a_f: kick a_i -> a_h with F(a_i), drift a_i -> a_f with p(a_h), force at a_f,
// kick a_h -> a_f with F(a_f); a_h is the midpoint in the stepping variable (a or ln a).
#include "pm/cosmology.hpp"
#include "pm/gravity.hpp"
#include "pm/migrate.hpp"
#include "pm/particles.hpp"
#include "pm/timers.hpp"

#include <vector>

namespace caustic {

enum class Spacing { Linear, Log };

// Step boundaries from a_start to a_end such that every output scale factor is a boundary: the
// outputs split the run into segments, and the `steps` steps are shared among them in
// proportion to their length in a (or ln a), equal steps within a segment, at least one per
// segment (so a run with more outputs than steps takes one step per segment).
std::vector<double> timeSteps(double a_start, double a_end, int steps, Spacing spacing,
                              const std::vector<double>& outputs = {});
double midpoint(double ai, double af, Spacing spacing);

class FastPMFactors {
public:
  explicit FastPMFactors(const Cosmology& c) : _c(c) {}
  double Gp(double a) const { return a * a * _c.E(a) * _c.D1(a) * _c.f1(a); }
  double Gf(double a) const { return 1.5 * _c.params().Omega_m * _c.D1(a); }
  double drift(double ai, double af, double ac) const { return (_c.D1(af) - _c.D1(ai)) / Gp(ac); }
  double kick(double ai, double af, double ac) const { return (Gp(af) - Gp(ai)) / Gf(ac); }

private:
  const Cosmology& _c;
};

// x <- x + f p (periodic); p <- p + f acc. Kokkos kernels.
void drift(Particles& parts, double factor, double box);
template <class A> void kick(Particles& parts, const Kokkos::View<A* [3]>& acc, double factor);

// The PM solver state between steps: particles synchronised at `a()` with their force.
template <class T> class NBody {
public:
  NBody(std::shared_ptr<const SlabDecomposition> mesh, const Cosmology& cosmo, const GravityOptions& opt,
        double total_particles, unsigned fft_flags = FFTW_ESTIMATE);

  // Migrates the particles to their slabs and computes the force at a. Collective.
  void start(Particles& parts, double a);
  // One KDK step from a() to af (midpoint by `spacing`). Collective.
  void step(Particles& parts, double af, Spacing spacing);

  double a() const { return _a; }
  Gravity<T>& gravity() { return _gravity; }
  // Force at a() on the particles, in the mesh precision T [H0^2 Mpc/h].
  const Kokkos::View<T* [3]>& acceleration() const { return _acc; }
  PhaseTimes& times() { return _gravity.times(); }
  std::size_t migrated() const { return _migrated; }

private:
  void computeForce(Particles& parts, double a);

  std::shared_ptr<const SlabDecomposition> _mesh;
  const Cosmology& _cosmo;
  FastPMFactors _factors;
  Gravity<T> _gravity;
  double _total;
  Migrator _migrator;
  double _a = 0.0;
  Kokkos::View<T* [3]> _acc; // capacity follows the particles'
  std::size_t _migrated = 0;
};

extern template class NBody<float>;
extern template class NBody<double>;

} // namespace caustic
