#pragma once
// HDF5 snapshots in the Gadget-4 / SWIFT layout, written collectively with parallel HDF5.
//
//   /Header      attributes BoxSize [Mpc/h], Time (a), Redshift, NumPart_ThisFile,
//                NumPart_Total (uint64[6]), NumPart_Total_HighWord, MassTable [1e10 Msun/h],
//                NumFilesPerSnapshot, Omega0, OmegaLambda, OmegaBaryon, HubbleParam, unit system
//   /Parameters  every run parameter as an attribute "section.key", plus the TOML text
//   /PartType1   Coordinates [Mpc/h] (N,3), Velocities [km/s, v_pec / sqrt(a)] (N,3),
//                ParticleIDs (uint64, Lagrangian lattice index), and one dataset per particle
//                attribute, named after it (particle_attributes.hpp; none without attributes)
// Each dataset carries a "units" attribute. The file is written under a temporary name and
// renamed when complete.
#include "io/params.hpp"
#include "pm/core/comm.hpp"
#include "pm/particles/particles.hpp"

#include <cstdint>
#include <string>

namespace caustic {

struct SnapshotInfo {
  double a = 1.0;
  double particle_mass = 0.0; // [1e10 Msun/h]
  std::uint64_t total_particles = 0;
};

// Collective over `comm`. Throws std::runtime_error naming the path on any HDF5 failure.
void writeSnapshot(const std::string& path, const Comm& comm, const Particles& parts,
                   const SnapshotInfo& info, const Params& params);

struct SnapshotHeader {
  double box = 0.0, a = 1.0, particle_mass = 0.0, omega_m = 0.0;
  std::uint64_t total_particles = 0;
};

// Reads a Gadget-4 layout snapshot (PartType1) collectively: rank r gets an even share of the
// rows; momenta are recovered from the Gadget velocities (p = a^1.5 v / 100). Throws
// std::runtime_error naming the path and what is wrong (missing file, group, dataset, or
// inconsistent sizes).
Particles readSnapshot(const std::string& path, const Comm& comm, SnapshotHeader& header);

// Every run parameter as an attribute "section.key" of `group`, plus the TOML text and its hash.
void writeParameters(std::int64_t group, const Params& params, const std::string& ctx);

// Mean comoving mass per particle [1e10 Msun/h]: Omega_m rho_crit L^3 / N.
double particleMass(const Params& params);
// Offset of the particle lattice from the origin [Mpc/h] on every axis (q = (i, j, k) L / N_p +
// offset): simulation.lattice_offset, by default half a PM cell so that particles do not start on
// the mesh points.
double latticeOffset(const Params& params);

} // namespace caustic
