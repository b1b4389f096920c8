#pragma once
// Particles as structure-of-arrays Kokkos Views, with spare capacity so that migration does not
// reallocate in the time step.
//
// BasicParticles<R> stores x and p as R: `Particles` (double) is the particle set of every
// computation; `SingleParticles` (float, 32 instead of 56 bytes per particle) is what a run with
// simulation.particle_precision = "single" steps, paints, migrates, writes and analyses. The
// arithmetic of drifts and kicks is done in double and rounded when stored.
//
// x: comoving position [Mpc/h] in [0, L); p: FastPM momentum p = a^2 dx/dt [H0 Mpc/h = 100 km/s];
// id: Lagrangian lattice index (i N + j) N + k of the particle's initial lattice site.
// Entries [0, size()) are particles; [size(), capacity()) is spare room.
//
// Named attributes (particle_attribute.hpp) add columns: species, mass per particle, halo ID,
// model outputs. Migration (Migrator, also toLattice and growth) carries them, checkpoints save
// and restore them, snapshots write them as /PartType1/<name>. Copies of a Particles share the
// arrays, but an attribute added to one copy is not in the others.
#include "pm/core/kmath.hpp"
#include "pm/core/memory.hpp"
#include "pm/particles/particle_attribute.hpp"

#include <cmath>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace caustic {

template <class R> struct BasicParticles {
  using value_type = R;
  using Vectors = Kokkos::View<R* [3]>;
  Vectors x;
  Vectors p;
  Kokkos::View<std::uint64_t*> id;

  BasicParticles() = default;
  // Huge pages for the arrays: paint and readout read them alongside scattered mesh accesses.
  explicit BasicParticles(std::size_t n, std::size_t capacity = 0)
      : x(zeroedHugePageView<decltype(x)>("caustic::Particles::x", capacity > n ? capacity : n)),
        p(zeroedHugePageView<decltype(p)>("caustic::Particles::p", capacity > n ? capacity : n)),
        id(zeroedHugePageView<decltype(id)>("caustic::Particles::id", capacity > n ? capacity : n)),
        _count(n) {}
  std::size_t size() const { return _count; }
  std::size_t capacity() const { return id.extent(0); }
  void setSize(std::size_t n) {
    if (n > capacity())
      throw std::logic_error("Particles::setSize: " + std::to_string(n) + " exceeds the capacity " +
                             std::to_string(capacity()));
    _count = n;
  }
  // Grows the capacity to at least `cap`, keeping the particles and their attributes.
  void reserve(std::size_t cap);

  // A new zero-filled attribute with capacity() rows. Throws std::invalid_argument naming it if
  // the name is taken, reserved (Coordinates, Velocities, ParticleIDs, Momenta, RankCounts: the
  // datasets of snapshots and checkpoints) or not a word (ParticleAttribute).
  ParticleAttribute& addAttribute(const std::string& name, AttributeType type, int components = 1,
                                  const std::string& units = "");
  template <class T>
  AttributeView<T> addAttribute(const std::string& name, int components = 1,
                                const std::string& units = "") {
    return addAttribute(name, AttributeTypeOf<T>::value, components, units).template view<T>();
  }
  // The values of attribute `name`; throws std::invalid_argument if there is none of type T.
  // (Growth replaces the arrays: look them up again after a migration.)
  template <class T> AttributeView<T> attribute(const std::string& name) const {
    const ParticleAttribute* a = findAttribute(name);
    if (!a)
      throw std::invalid_argument("Particles::attribute: no attribute \"" + name + "\"");
    return a->view<T>();
  }
  const ParticleAttribute* findAttribute(const std::string& name) const; // or nullptr
  bool hasAttribute(const std::string& name) const { return findAttribute(name) != nullptr; }
  void removeAttribute(const std::string& name);
  // Sorted by name.
  const std::vector<ParticleAttribute>& attributes() const { return _attributes; }
  // n particles with room for `capacity`, zero-filled, with attributes like these.
  BasicParticles withSameAttributes(std::size_t n, std::size_t capacity = 0) const;

private:
  std::size_t _count = 0;
  std::vector<ParticleAttribute> _attributes;
};

using Particles = BasicParticles<double>;
using SingleParticles = BasicParticles<float>;
extern template struct BasicParticles<double>;
extern template struct BasicParticles<float>;

// A deep copy of the particles (size, capacity and attributes).
template <class R> BasicParticles<R> copyParticles(const BasicParticles<R>& p);
// Positions, momenta and IDs of the live particles without their attributes, with room for a
// migration (capacity size + 5% + 16): a scratch copy that an output may displace or migrate.
template <class R> BasicParticles<R> copyWithoutAttributes(const BasicParticles<R>& p);
// The same with x and p converted to R.
template <class R, class S> BasicParticles<R> convertWithoutAttributes(const BasicParticles<S>& p);
// The particles (size, capacity and attributes) with x and p converted to R.
template <class R, class S> BasicParticles<R> convertParticles(const BasicParticles<S>& p);

// A run's particles on this rank, in the run's precision (simulation.particle_precision): one of
// the two is set. Code that handles both precisions visits them; code made for double takes
// asDouble().
struct ParticlesRef {
  const Particles* dbl = nullptr;
  const SingleParticles* single = nullptr;
  ParticlesRef() = default;
  ParticlesRef(const Particles& p) : dbl(&p) {}
  ParticlesRef(const SingleParticles& p) : single(&p) {}
  // f(particles) in their own precision; both calls must return the same type.
  template <class F> decltype(auto) visit(F&& f) const {
    if (single)
      return f(*single);
    return f(*dbl);
  }
  // The particles in double precision: the run's own, or a converted copy (size, capacity,
  // attributes) that `copy` holds.
  const Particles& asDouble(std::unique_ptr<Particles>& copy) const {
    if (dbl)
      return *dbl;
    copy = std::make_unique<Particles>(convertParticles<double>(*single));
    return *copy;
  }
};

// Wraps a coordinate into [0, L) (also when x + L rounds to L).
KOKKOS_INLINE_FUNCTION double periodicWrap(double x, double L) {
  if (x >= 0 && x < L) // the usual case (the formula below returns x unchanged for it)
    return x;
  x = x - L * km::floor(x / L);
  if (x >= L)
    x -= L;
  if (x < 0)
    x = 0;
  return x;
}

// A coordinate in [0, L) stored as R: the value rounded to R, 0 if it rounded up to L.
template <class R> KOKKOS_INLINE_FUNCTION R storedCoordinate(double x, double L) {
  const R r = static_cast<R>(x);
  return r < static_cast<R>(L) ? r : R(0);
}

// The drift of particle i: x <- x + factor p, wrapped into the box [0, L) (L in Mpc/h), computed
// in double.
template <class R>
KOKKOS_INLINE_FUNCTION void driftParticle(const Kokkos::View<R* [3]>& x,
                                          const Kokkos::View<R* [3]>& p, std::size_t i,
                                          double factor, double L) {
  for (int c = 0; c < 3; ++c)
    x(i, c) = storedCoordinate<R>(periodicWrap(double(x(i, c)) + factor * double(p(i, c)), L), L);
}

} // namespace caustic
