#pragma once
// HDF5 snapshots in the Gadget-4 / SWIFT layout, written collectively with parallel HDF5.
//
//   /Header      attributes BoxSize [Mpc/h], Time (a), Redshift, NumPart_ThisFile,
//                NumPart_Total (uint64[6]), NumPart_Total_HighWord, MassTable [1e10 Msun/h],
//                NumFilesPerSnapshot, Omega0, OmegaLambda, OmegaBaryon, HubbleParam, Time_GYR
//                (cosmic time [Gyr]), unit system (UnitLength_in_cm, UnitMass_in_g,
//                UnitVelocity_in_cm_per_s), Code = "Caustic"
//   /Parameters  every run parameter as an attribute "section.key", plus the TOML text
//   /Units       the unit system in cgs as OWLS/EAGLE write it: UnitLength_in_cm, UnitMass_in_g,
//                UnitVelocity_in_cm_per_s, UnitTime_in_s, UnitDensity_in_cgs, UnitEnergy_in_cgs,
//                UnitPressure_in_cgs (factors of h and a implicit, as in Gadget)
//   /Constants   the constants behind the unit system and Time_GYR (CM_PER_MPC, SOLAR_MASS,
//                SEC_PER_YEAR, SEC_PER_MEGAYEAR, HUBBLE)
//   /PartType1   Coordinates [Mpc/h] (N,3), Velocities [km/s, v_pec / sqrt(a)] (N,3),
//                ParticleIDs (uint64, Lagrangian lattice index), and one dataset per particle
//                attribute, named after it (particle_attributes.hpp; none without attributes)
// Each dataset carries a "units" attribute. The file is written under a temporary name and
// renamed when complete.
//
// Readers: yt 4.1.4 reads the unit system only through /Units (its OWLS reader, chosen by the
// groups Constants, Header, Parameters and Units; it also takes the time from Time_GYR); its
// plain Gadget HDF5 reader ignores every unit attribute and assumes kpc/h. h5py and Caustic's own
// readers use /Header and /PartType1 only.
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
// (Particles of either precision; the file's precision is output.snapshot_precision.)
template <class R>
void writeSnapshot(const std::string& path, const Comm& comm, const BasicParticles<R>& parts,
                   const SnapshotInfo& info, const Params& params);

// Caustic's unit system, in cgs: lengths Mpc/h (comoving), masses 1e10 Msun/h, velocities km/s
// (Gadget's sqrt(a) convention for the stored velocities). The solar mass is the one of the
// critical density in particleMass (27.75366e10 h^2 Msun/Mpc^3 = 3 H0^2 / 8 pi G).
constexpr double kUnitLengthInCm = 3.085678e24;
constexpr double kSolarMassInG = 1.98841e33;
constexpr double kUnitMassInG = 1e10 * kSolarMassInG;
constexpr double kUnitVelocityInCmPerS = 1e5;

// UnitLength_in_cm, UnitMass_in_g and UnitVelocity_in_cm_per_s as attributes of `obj` (an HDF5
// group: the /Header of snapshots and halo catalogues).
void writeUnitAttributes(std::int64_t obj, const std::string& ctx);

// Cosmic time at scale factor `a` [Gyr] (flat w0waCDM without radiation, as Cosmology::E).
double cosmicTimeGyr(const CosmologyParams& c, double a);

struct SnapshotHeader {
  double box = 0.0, a = 1.0, particle_mass = 0.0, omega_m = 0.0;
  double omega_lambda = 0.0, hubble = 0.0; // OmegaLambda, HubbleParam; 0 when absent
  double omega_b = 0.0;                     // OmegaBaryon; 0 when absent
  std::uint64_t total_particles = 0;
  std::string parameters; // the run's effective TOML (/Parameters/toml); "" when absent
};

// Reads a Gadget-4 layout snapshot (PartType1) collectively (the header too: OmegaBaryon and
// the /Parameters TOML text when the file has them): rank r gets an even share of the
// rows; momenta are recovered from the Gadget velocities (p = a^1.5 v / 100). Throws
// std::runtime_error naming the path and what is wrong (missing file, group, dataset, or
// inconsistent sizes).
Particles readSnapshot(const std::string& path, const Comm& comm, SnapshotHeader& header);

// Every run parameter as an attribute "section.key" of `group`, plus the TOML text and its hash.
void writeParameters(std::int64_t group, const Params& params, const std::string& ctx);

// The /Parameters toml attribute of an open HDF5 file (writeParameters), "" when absent.
std::string readParametersToml(std::int64_t file, const std::string& ctx);

// The particle lattice of a snapshot written by caustic run: its side N (N^3 particles) and its
// simulation.lattice_offset [Mpc/h] from the /Parameters toml text. Throws std::runtime_error
// naming `path` when the particles are not N^3 or the header has no parameters.
struct SnapshotLattice {
  int n = 0;
  double offset = 0.0;
};
SnapshotLattice snapshotLattice(const SnapshotHeader& header, const std::string& path);

// Mean comoving mass per particle [1e10 Msun/h]: Omega_m rho_crit L^3 / N.
double particleMass(const Params& params);
// Offset of the particle lattice from the origin [Mpc/h] on every axis (q = (i, j, k) L / N_p +
// offset): simulation.lattice_offset, by default half a PM cell so that particles do not start on
// the mesh points.
double latticeOffset(const Params& params);

} // namespace caustic
