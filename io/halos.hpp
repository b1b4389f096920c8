#pragma once
// Halo catalogues in the Gadget-4 group layout and halo mass functions.
//
//   /Header   BoxSize [Mpc/h], Time, Redshift, Ngroups_ThisFile, Ngroups_Total, Nids_ThisFile,
//             Nids_Total, NumFiles, LinkingLength [Mpc/h], LinkingLengthParameter b, MinGroupSize
//   /Group    GroupLen, GroupMass [1e10 Msun/h], GroupPos [Mpc/h], GroupVel [km/s, v_pec/sqrt(a)],
//             GroupVelDisp [km/s, 1D peculiar], GroupRadius [Mpc/h, rms], GroupMinID (the label),
//             GroupOffset (into /IDs/ID when member IDs are written)
//   /IDs/ID   member IDs, group by group, ascending within a group (optional)
#include "io/params.hpp"
#include "pm/analysis/fof.hpp"

#include <string>

namespace caustic {

struct HaloMeta {
  double a = 1.0;
  double box = 0.0;
  double particle_mass = 0.0; // [1e10 Msun/h]
  double b = 0.2;
  int min_particles = 20;
};

// Collective over `comm`; rank 0 writes (the catalogue is the same on every rank).
void writeHaloCatalogue(const std::string& path, MPI_Comm comm, const HaloCatalogue& cat,
                        const HaloMeta& meta, const Params* params);

// dn/dlnM [(h/Mpc)^3] in bins of 0.2 dex from the smallest group mass, with Poisson errors, as a
// text table: M_center [Msun/h], M_mean [Msun/h], dn/dlnM, error, groups. Rank 0 only.
void writeMassFunction(const std::string& path, const HaloCatalogue& cat, const HaloMeta& meta);

} // namespace caustic
