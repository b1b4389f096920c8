#include "pm/stepping/stepping.hpp"

#include "pm/core/profiling.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/stepping/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace caustic {

std::vector<double> timeSteps(double a_start, double a_end, int steps, Spacing spacing,
                              const std::vector<double>& outputs) {
  if (!(a_start > 0 && a_end > a_start && steps >= 1))
    throw std::invalid_argument("timeSteps: need 0 < a_start < a_end and steps >= 1");
  // Stepping variable t = a or ln a; the outputs split [a_start, a_end] into segments.
  auto t = [spacing](double a) { return spacing == Spacing::Linear ? a : std::log(a); };
  auto inv = [spacing](double x) { return spacing == Spacing::Linear ? x : std::exp(x); };
  std::vector<double> knots = {a_start};
  std::vector<double> sorted(outputs);
  std::sort(sorted.begin(), sorted.end());
  for (double o : sorted) {
    if (o < a_start || o > a_end)
      throw std::invalid_argument("timeSteps: output a = " + std::to_string(o) +
                                  " outside the run");
    if (o > knots.back() * (1 + 1e-12) && o < a_end * (1 - 1e-12))
      knots.push_back(o);
  }
  knots.push_back(a_end);
  // Steps per segment proportional to its length in t (at least one; largest remainders).
  const std::size_t nseg = knots.size() - 1;
  const double total = t(a_end) - t(a_start);
  std::vector<int> per(nseg, 1);
  const int budget = std::max<int>(steps, static_cast<int>(nseg));
  std::vector<double> want(nseg);
  int used = 0;
  for (std::size_t i = 0; i < nseg; ++i) {
    want[i] = budget * (t(knots[i + 1]) - t(knots[i])) / total;
    per[i] = std::max(1, static_cast<int>(std::floor(want[i])));
    used += per[i];
  }
  while (used < budget) {
    std::size_t best = 0;
    double gap = -1e300;
    for (std::size_t i = 0; i < nseg; ++i)
      if (want[i] - per[i] > gap) {
        gap = want[i] - per[i];
        best = i;
      }
    ++per[best];
    ++used;
  }
  while (used > budget) {    // the minimum of one step per segment overshot: take back the most
    std::size_t best = nseg; // over-served segment that has more than one step
    for (std::size_t i = 0; i < nseg; ++i)
      if (per[i] > 1 && (best == nseg || per[i] - want[i] > per[best] - want[best]))
        best = i;
    if (best == nseg)
      break;
    --per[best];
    --used;
  }
  std::vector<double> a = {a_start};
  for (std::size_t i = 0; i < nseg; ++i) {
    const double t0 = t(knots[i]), t1 = t(knots[i + 1]);
    for (int j = 1; j < per[i]; ++j)
      a.push_back(inv(t0 + (t1 - t0) * j / per[i]));
    a.push_back(knots[i + 1]); // exact knot value
  }
  return a;
}

double midpoint(double ai, double af, Spacing spacing) {
  return spacing == Spacing::Linear ? 0.5 * (ai + af) : std::sqrt(ai * af);
}

void drift(Particles& parts, double factor, double box) {
  auto x = parts.x;
  auto p = parts.p;
  Kokkos::parallel_for(
      "caustic::drift", Kokkos::RangePolicy<>(0, parts.size()),
      KOKKOS_LAMBDA(const std::size_t i) { driftParticle(x, p, i, factor, box); });
  Kokkos::fence();
}

template <class T>
NBody<T>::NBody(std::shared_ptr<const SlabDecomposition> mesh, const Cosmology& cosmo,
                const GravityOptions& opt, double total_particles, unsigned fft_flags)
    : _mesh(mesh), _cosmo(cosmo), _factors(cosmo),
      _gravity(mesh, cosmo.params().Omega_m, opt, fft_flags), _total(total_particles),
      _migrator(mesh) {}

template <class T>
NBody<T>::NBody(std::shared_ptr<Workspace<T>> workspace, const Cosmology& cosmo,
                const GravityOptions& opt, double total_particles)
    : _mesh(workspace->decompPtr()), _cosmo(cosmo), _factors(cosmo),
      _gravity(workspace, cosmo.params().Omega_m, opt), _total(total_particles), _migrator(_mesh) {}

template <class T>
template <class R>
void NBody<T>::forceKick(BasicParticles<R>& parts, double a, double factor) {
  {
    ScopedPhase t(times(), "migrate");
    _migrated += _migrator(parts);
  }
  if (_force_hook)
    _force_hook(false, a);
  _gravity.force(parts.x, parts.size(), _total, parts.x, parts.size(), parts.p, a, factor, true);
  if (_force_hook)
    _force_hook(true, a);
}

template <class T> template <class R> void NBody<T>::start(BasicParticles<R>& parts, double a) {
  ScopedRegion region("caustic::NBody::start");
  ScopedPhase t(times(), "migrate");
  _migrated += _migrator(parts);
  _a = a;
  _ahead = 0.0;
  _next = 0.0;
}

template <class T>
template <class R>
void NBody<T>::restore(BasicParticles<R>& parts, const StepperState& s) {
  ScopedRegion region("caustic::NBody::restore");
  {
    ScopedPhase t(times(), "migrate");
    _migrated += _migrator(parts);
  }
  _a = s.a;
  _ahead = s.ahead;
  _next = s.next;
  _spacing = static_cast<Spacing>(s.spacing);
}

template <class T>
template <class R>
void NBody<T>::step(BasicParticles<R>& parts, double af, Spacing spacing, double a_next) {
  step(parts, Schedule::step(_factors, _a, af, spacing, synchronised(), a_next));
}

template <class T>
template <class R>
void NBody<T>::step(BasicParticles<R>& parts, const ScheduledStep& st) {
  ScopedRegion region("caustic::NBody::step");
  if (std::abs(st.ai - _a) > 1e-12 * _a)
    throw std::logic_error("NBody::step: the step starts at a = " + std::to_string(st.ai) +
                           ", the particles are at a = " + std::to_string(_a));
  if (st.open != synchronised())
    throw std::logic_error(std::string("NBody::step: a step ") + (st.open ? "with" : "without") +
                           " an opening kick, but p is " +
                           (synchronised() ? "synchronised" : "ahead of x"));
  if (!synchronised() && std::abs(st.af - _next) > 1e-12 * st.af)
    throw std::logic_error("NBody::step: the previous step prepared a step to a = " +
                           std::to_string(_next) + ", not to a = " + std::to_string(st.af));
  if (st.open)
    forceKick(parts, st.ai, st.open_factor);
  {
    // The drift plans the migration that forceKick() then carries out.
    ScopedPhase t(times(), "drift");
    _migrator.drift(parts, st.drift_factor, _mesh->box());
  }
  forceKick(parts, st.af, st.close_factor);
  _ahead = st.ahead;
  _next = st.ahead != 0.0 ? st.next : 0.0;
  _spacing = st.spacing;
  _a = st.af;
}

template <class T> template <class R> void NBody<T>::synchronise(BasicParticles<R>& parts) {
  if (synchronised())
    return;
  forceKick(parts, _a, -_ahead);
  _ahead = 0.0;
  _next = 0.0;
}

template <class T>
template <class R>
void NBody<T>::run(BasicParticles<R>& parts, const std::vector<double>& boundaries,
                   Spacing spacing) {
  const Schedule schedule(_factors, boundaries, spacing);
  for (const ScheduledStep& st : schedule.steps())
    step(parts, st);
}

template class NBody<float>;
template class NBody<double>;
#define CAUSTIC_NBODY_PARTICLES(T, R)                                                              \
  template void NBody<T>::start(BasicParticles<R>&, double);                                       \
  template void NBody<T>::step(BasicParticles<R>&, const ScheduledStep&);                          \
  template void NBody<T>::step(BasicParticles<R>&, double, Spacing, double);                       \
  template void NBody<T>::synchronise(BasicParticles<R>&);                                         \
  template void NBody<T>::run(BasicParticles<R>&, const std::vector<double>&, Spacing);            \
  template void NBody<T>::restore(BasicParticles<R>&, const StepperState&);
// Single-precision particles go with the single-precision mesh only (io/params.cpp).
CAUSTIC_NBODY_PARTICLES(float, double)
CAUSTIC_NBODY_PARTICLES(float, float)
CAUSTIC_NBODY_PARTICLES(double, double)
#undef CAUSTIC_NBODY_PARTICLES

} // namespace caustic
