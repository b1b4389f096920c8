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

void Particles::reserve(std::size_t cap) {
  if (cap <= capacity())
    return;
  Kokkos::resize(x, cap);
  Kokkos::resize(p, cap);
  Kokkos::resize(id, cap);
  for (auto& a : _attributes)
    a.reserve(cap);
}

ParticleAttribute& Particles::addAttribute(const std::string& name, AttributeType type,
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

const ParticleAttribute* Particles::findAttribute(const std::string& name) const {
  for (const auto& a : _attributes)
    if (a.name() == name)
      return &a;
  return nullptr;
}

void Particles::removeAttribute(const std::string& name) {
  _attributes.erase(std::remove_if(_attributes.begin(), _attributes.end(),
                                   [&](const ParticleAttribute& a) { return a.name() == name; }),
                    _attributes.end());
}

Particles Particles::withSameAttributes(std::size_t n, std::size_t cap) const {
  Particles out(n, cap);
  for (const auto& a : _attributes)
    out._attributes.push_back(a.emptyCopy(out.capacity()));
  return out;
}

Particles copyParticles(const Particles& p) {
  Particles out = p.withSameAttributes(p.size(), p.capacity());
  Kokkos::deep_copy(out.x, p.x);
  Kokkos::deep_copy(out.p, p.p);
  Kokkos::deep_copy(out.id, p.id);
  for (const auto& a : p.attributes()) {
    const ParticleAttribute* b = out.findAttribute(a.name());
    // Attribute storage is host memory (as the distributor's).
    std::memcpy(b->bytes(), a.bytes(), a.capacity() * a.rowBytes());
  }
  return out;
}

Particles copyWithoutAttributes(const Particles& p) {
  const std::size_t n = p.size();
  Particles out(n, n + n / 20 + 16);
  const auto live = std::make_pair(std::size_t(0), n);
  Kokkos::deep_copy(Kokkos::subview(out.x, live, Kokkos::ALL), Kokkos::subview(p.x, live, Kokkos::ALL));
  Kokkos::deep_copy(Kokkos::subview(out.p, live, Kokkos::ALL), Kokkos::subview(p.p, live, Kokkos::ALL));
  Kokkos::deep_copy(Kokkos::subview(out.id, live), Kokkos::subview(p.id, live));
  return out;
}

} // namespace caustic
