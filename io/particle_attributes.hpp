#pragma once
// Particle attributes (pm/particles/particle_attribute.hpp) in HDF5 files: one dataset
// <group>/<name> per attribute, (N) for one component or (N, components), in the attribute's
// own type (little-endian float64, float32, int32, int64, uint64), with its "units". Snapshots
// put them in /PartType1, checkpoints in /Particles/Attributes.
#include "io/hdf5_util.hpp"
#include "pm/particles/particles.hpp"

#include <cstdint>
#include <string>

namespace caustic {

// Bytes per particle of all the attributes of `parts` (for file size estimates).
template <class R> std::uint64_t attributeBytesPerParticle(const BasicParticles<R>& parts);

// Writes every attribute of `parts` into `group`: this rank's parts.size() rows start at row
// `offset` of `n_total`. Collective (every rank has the same attributes).
template <class R>
void writeParticleAttributes(hid_t group, const BasicParticles<R>& parts, std::uint64_t n_total,
                             std::uint64_t offset, const std::string& ctx);

// Adds every dataset of `group` to `parts` as an attribute and reads its rows
// [start, start + parts.size()) of `n_total`. Throws std::runtime_error naming the dataset if
// its type or shape is not one of an attribute, or it is already an attribute. Collective.
template <class R>
void readParticleAttributes(hid_t group, BasicParticles<R>& parts, std::uint64_t start,
                            std::uint64_t n_total, const std::string& ctx);

} // namespace caustic
