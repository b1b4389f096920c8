#include "pm/particles/particles.hpp"

#include <algorithm>
#include <cstring>

namespace caustic {

namespace {
bool reserved(const std::string& name) {
  for (const char* r : {"Coordinates", "Velocities", "ParticleIDs", "Momenta", "RankCounts"})
    if (name == r)
      return true;
  return false;
}
} // namespace

template <class R> void BasicParticles<R>::reserve(std::size_t cap) {
  if (cap <= capacity())
    return;
  Kokkos::resize(x, cap);
  Kokkos::resize(p, cap);
  Kokkos::resize(id, cap);
  for (auto& a : _attributes)
    a.reserve(cap);
}

template <class R>
ParticleAttribute& BasicParticles<R>::addAttribute(const std::string& name, AttributeType type,
                                                   int components, const std::string& units) {
  if (reserved(name))
    throw std::invalid_argument("Particles::addAttribute: \"" + name +
                                "\" is reserved (a dataset of snapshots or checkpoints)");
  auto at = std::lower_bound(
      _attributes.begin(), _attributes.end(), name,
      [](const ParticleAttribute& a, const std::string& n) { return a.name() < n; });
  if (at != _attributes.end() && at->name() == name)
    throw std::invalid_argument("Particles::addAttribute: attribute \"" + name + "\" exists");
  return *_attributes.insert(at, ParticleAttribute(name, type, components, capacity(), units));
}

template <class R>
const ParticleAttribute* BasicParticles<R>::findAttribute(const std::string& name) const {
  for (const auto& a : _attributes)
    if (a.name() == name)
      return &a;
  return nullptr;
}

template <class R> void BasicParticles<R>::removeAttribute(const std::string& name) {
  _attributes.erase(std::remove_if(_attributes.begin(), _attributes.end(),
                                   [&](const ParticleAttribute& a) { return a.name() == name; }),
                    _attributes.end());
}

template <class R>
BasicParticles<R> BasicParticles<R>::withSameAttributes(std::size_t n, std::size_t cap) const {
  BasicParticles out(n, cap);
  for (const auto& a : _attributes)
    out._attributes.push_back(a.emptyCopy(out.capacity()));
  return out;
}

template <class R> BasicParticles<R> copyParticles(const BasicParticles<R>& p) {
  return convertParticles<R>(p);
}

template <class R, class S> BasicParticles<R> convertParticles(const BasicParticles<S>& p) {
  BasicParticles<R> out(p.size(), p.capacity());
  auto x = p.x, v = p.p, ox = out.x, ov = out.p;
  Kokkos::parallel_for(
      "caustic::convertParticles", Kokkos::RangePolicy<>(0, p.capacity()),
      KOKKOS_LAMBDA(const std::size_t i) {
        for (int c = 0; c < 3; ++c) {
          ox(i, c) = static_cast<R>(x(i, c));
          ov(i, c) = static_cast<R>(v(i, c));
        }
      });
  Kokkos::fence();
  Kokkos::deep_copy(out.id, p.id);
  for (const auto& a : p.attributes()) {
    ParticleAttribute& b = out.addAttribute(a.name(), a.type(), a.components(), a.units());
    // Attribute storage is host memory (as the distributor's).
    std::memcpy(b.bytes(), a.bytes(), a.capacity() * a.rowBytes());
  }
  return out;
}

template <class R, class S> BasicParticles<R> convertWithoutAttributes(const BasicParticles<S>& p) {
  const std::size_t n = p.size();
  BasicParticles<R> out(n, n + n / 20 + 16);
  auto x = p.x, v = p.p, ox = out.x, ov = out.p;
  auto id = p.id, oid = out.id;
  Kokkos::parallel_for(
      "caustic::convertWithoutAttributes", Kokkos::RangePolicy<>(0, n),
      KOKKOS_LAMBDA(const std::size_t i) {
        for (int c = 0; c < 3; ++c) {
          ox(i, c) = static_cast<R>(x(i, c));
          ov(i, c) = static_cast<R>(v(i, c));
        }
        oid(i) = id(i);
      });
  Kokkos::fence();
  return out;
}

template <class R> BasicParticles<R> copyWithoutAttributes(const BasicParticles<R>& p) {
  return convertWithoutAttributes<R>(p);
}

template struct BasicParticles<double>;
template struct BasicParticles<float>;
template Particles copyParticles(const Particles&);
template SingleParticles copyParticles(const SingleParticles&);
template Particles copyWithoutAttributes(const Particles&);
template SingleParticles copyWithoutAttributes(const SingleParticles&);
template Particles convertParticles<double, float>(const SingleParticles&);
template SingleParticles convertParticles<float, double>(const Particles&);
template Particles convertParticles<double, double>(const Particles&);
template SingleParticles convertParticles<float, float>(const SingleParticles&);
template Particles convertWithoutAttributes<double, float>(const SingleParticles&);
template Particles convertWithoutAttributes<double, double>(const Particles&);
template SingleParticles convertWithoutAttributes<float, float>(const SingleParticles&);

} // namespace caustic
