#pragma once
// The outputs of the baryon correction model for one particle set (pm/baryons), shared by
// `caustic baryonify` and the in-situ [baryons] outputs of `caustic run`: in one directory,
//   snapshot_bcm.hdf5       the baryonified particles with GasFraction, StarFraction,
//                           Temperature [K] and ElectronPressure [keV/cm^3] columns
//   power_dmo.txt, power_bcm.txt, suppression.txt (k, S = P_bcm / P_dmo, both P, modes),
//   suppression.svg
//   baryon_fields.hdf5      gas density / mean baryon density, gas temperature (gas-mass
//                           weighted), electron pressure [keV/cm^3] and matter density on the
//                           baryons.field_mesh
//   compton_y.hdf5          Compton-y projected along z through the box
// FoF masses are taken as M200m and converted to M200c (m200cFromFof), concentrations from
// Duffy et al. 2008.
#include "io/params.hpp"
#include "pm/core/comm.hpp"
#include "pm/particles/particles.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace caustic {

struct BaryonInput {
  std::string source; // what the particles are (for logs and table headers)
  double a = 1.0, box = 0.0;
  double particle_mass = 0.0; // [1e10 Msun/h]
  std::uint64_t total_particles = 0;
  int np = 0; // particles per side
  // The FoF catalogue: members, mass [1e10 Msun/h] and position [Mpc/h] (3 per group) per group.
  std::vector<std::uint64_t> count;
  std::vector<double> mass, pos;
};

// The files written, in `dir` (which must exist).
const std::vector<std::string>& baryonOutputNames();

// Baryonifies `parts` (this rank's particles, anywhere; they are migrated, displaced and given the
// columns) and writes the outputs. `timer(phase, seconds)` and `log(text)` (rank 0) report
// progress; `cb(kind, path)` names every file written (rank 0). Returns the figures of the
// summary (haloes, displacements, baryon budget, meshes). Collective over `comm`.
nlohmann::json writeBaryonOutputs(const Comm& comm, Particles& parts, const BaryonInput& in,
                                  const Params& params, const std::string& dir,
                                  const std::function<void(const std::string&, double)>& timer,
                                  const std::function<void(const std::string&)>& log,
                                  const std::function<void(const std::string&, const std::string&)>& cb);

} // namespace caustic
