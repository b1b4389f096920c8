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
#include "pm/core/timers.hpp"
#include "pm/cosmology/cosmology.hpp"
#include "pm/force/gravity.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/particles/particles.hpp"

#include <functional>
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

// x <- x + f p (periodic). (Kicks are fused with the force readout: Gravity::force.)
void drift(Particles& parts, double factor, double box);

// Everything of the integrator besides the particles: with p half a step ahead between fused
// steps, a checkpoint must record how far (FastPM kick factor) and the step it was prepared for.
struct StepperState {
  double a = 0.0;     // x at a
  double ahead = 0.0; // kick factor applied to p beyond a (0: synchronised)
  double next = 0.0;  // end of the step p was prepared for (when ahead != 0)
  int spacing = 0;    // Spacing of that step
};

struct ScheduledStep;

// The PM solver state between steps. The force is read out straight into the momenta (the kick
// is fused with the readout: no force array is stored). Between two steps the closing half-kick
// of one and the opening half-kick of the next are applied together, so p runs half a step
// ahead of x (synchronised() is false) until a step is asked to end synchronised, e.g. at an
// output; the step after such a boundary computes the force at its start again. Which steps
// do what comes from a Schedule (schedule.hpp).
template <class T> class NBody {
public:
  NBody(std::shared_ptr<const SlabDecomposition> mesh, const Cosmology& cosmo,
        const GravityOptions& opt, double total_particles, unsigned fft_flags = FFTW_ESTIMATE);
  // With the meshes and FFT plans of a workspace shared with the run's observers.
  NBody(std::shared_ptr<Workspace<T>> workspace, const Cosmology& cosmo, const GravityOptions& opt,
        double total_particles);

  // The particle set is BasicParticles<R>, R = double or float (simulation.particle_precision),
  // in every member template below.
  // Particles synchronised at a (x and p at a); migrates them to their slabs. Collective.
  template <class R> void start(BasicParticles<R>& parts, double a);
  // One KDK step of a schedule (schedule.hpp), from a() = step.ai. Throws std::logic_error if
  // the step does not continue from the integrator's state (its start, whether p is
  // synchronised, the end the previous step prepared for). Collective.
  template <class R> void step(BasicParticles<R>& parts, const ScheduledStep& step);
  // The same for a step built here: from a() to af (midpoint by `spacing`); with a_next > af,
  // the step after this one will end at a_next and p is left half a step ahead; otherwise p ends
  // synchronised at af. Collective.
  template <class R>
  void step(BasicParticles<R>& parts, double af, Spacing spacing, double a_next = 0.0);
  // Takes p back to a() if it is ahead (one force computation). Collective.
  template <class R> void synchronise(BasicParticles<R>& parts);
  // All steps through `boundaries` (boundaries[0] == a()), ending synchronised. Collective.
  template <class R>
  void run(BasicParticles<R>& parts, const std::vector<double>& boundaries, Spacing spacing);

  // The integrator state, and its restoration from a checkpoint (migrates the particles to
  // their slabs; no force computation, so a resumed run repeats the uninterrupted one).
  StepperState state() const { return {_a, _ahead, _next, static_cast<int>(_spacing)}; }
  template <class R> void restore(BasicParticles<R>& parts, const StepperState& s);

  double a() const { return _a; }
  bool synchronised() const { return _ahead == 0.0; }
  // Called before (after = false) and after (true) every force computation with its scale
  // factor; the particles are on their slabs. The run loop turns it into observer events.
  void setForceHook(std::function<void(bool after, double a)> hook) {
    _force_hook = std::move(hook);
  }
  Gravity<T>& gravity() { return _gravity; }
  const FastPMFactors& factors() const { return _factors; }
  PhaseTimes& times() { return _gravity.times(); }
  std::size_t migrated() const { return _migrated; }

private:
  // Migrates, then p += factor F(a).
  template <class R> void forceKick(BasicParticles<R>& parts, double a, double factor);

  std::shared_ptr<const SlabDecomposition> _mesh;
  const Cosmology& _cosmo;
  FastPMFactors _factors;
  Gravity<T> _gravity;
  double _total;
  Migrator _migrator;
  double _a = 0.0;
  double _ahead = 0.0; // kick factor applied beyond a() (0: synchronised)
  double _next = 0.0;  // end of the next step promised by the last step
  Spacing _spacing = Spacing::Linear;
  std::size_t _migrated = 0;
  std::function<void(bool, double)> _force_hook;
};

extern template class NBody<float>;
extern template class NBody<double>;

} // namespace caustic
