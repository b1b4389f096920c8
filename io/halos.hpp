#pragma once
// Halo catalogues in the Gadget-4 group layout and halo mass functions.
//
//   /Header   BoxSize [Mpc/h], Time, Redshift, Ngroups_ThisFile, Ngroups_Total, Nids_ThisFile,
//             Nids_Total, NumFiles, LinkingLength [Mpc/h], LinkingLengthParameter b, MinGroupSize,
//             ParticleMass [1e10 Msun/h], Omega0, OmegaLambda, HubbleParam, Nsubgroups_ThisFile,
//             Nsubgroups_Total, Nsubhalos_ThisFile, Nsubhalos_Total (0: no subhaloes), the unit
//             system (UnitLength_in_cm, UnitMass_in_g, UnitVelocity_in_cm_per_s)
//   /Group    GroupLen, GroupMass [1e10 Msun/h], GroupPos [Mpc/h], GroupVel [km/s, v_pec/sqrt(a)],
//             GroupVelDisp [km/s, 1D peculiar], GroupRadius [Mpc/h, rms], GroupMinID (the label),
//             GroupOffset (into /IDs/ID when member IDs are written)
//   /IDs/ID   member IDs, group by group, ascending within a group (optional)
//   /Subhalo  empty (FoF finds no subhaloes)
//   /Parameters  the run parameters (in-situ catalogues only)
//
// yt 4.1.4 (yt/frontends/gadget_fof) recognises the file by its groups Group, Header and
// Subhalo (and no FOF) and needs the Header's BoxSize, Redshift, Omega0, OmegaLambda,
// HubbleParam, NumFiles, Ngroups_ThisFile, Nsubgroups_ThisFile and Nids_ThisFile; its units
// (Mpc/h comoving, 1e10 Msun/h, km/s sqrt(a)) are its defaults, which are Caustic's. The Header
// must not have a Code attribute: yt's Gadget snapshot reader accepts any file with one that is
// not "SWIFT", and the file would match two readers. yt reads the data from
// "<name up to its first dot>.0.hdf5" (Gadget's group files are NAME.0.hdf5, NAME.1.hdf5, ...),
// so catalogues are named that way: halos_a1p0000.0.hdf5 (haloCatalogueName).
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
  // Cosmology for the Header (Omega0, OmegaLambda, HubbleParam); not written when hubble = 0.
  double omega_m = 0.0, omega_lambda = 0.0, hubble = 0.0;
};

// Collective over `comm`; rank 0 writes (the catalogue is the same on every rank).
// The catalogue's file name in the Gadget group-file form yt reads: <stem>.0.hdf5 with every
// '.' of the stem written as 'p' (halos_a1.0000 -> halos_a1p0000.0.hdf5).
std::string haloCatalogueName(const std::string& stem);

void writeHaloCatalogue(const std::string& path, MPI_Comm comm, const HaloCatalogue& cat,
                        const HaloMeta& meta, const Params* params);

// A catalogue read back (every rank reads all of it; catalogues hold about 1e-3 of the
// particles): the header's box, a and particle mass, and per group its length, mass [1e10 Msun/h]
// and position [Mpc/h], and when the file has them (written with member_ids) the members' IDs
// and (in-situ catalogues) the run's parameters.
// Throws std::runtime_error naming the file and what is missing or wrong.
struct HaloTable {
  double box = 0.0, a = 0.0, particle_mass = 0.0;
  double linking_b = 0.0;      // LinkingLengthParameter (0 when absent)
  std::uint64_t min_group = 0; // MinGroupSize (0 when absent)
  std::string parameters;      // the run's TOML (/Parameters toml; "" when absent)
  std::vector<std::uint32_t> count;
  std::vector<double> mass, pos; // pos: 3 per group
  // Members of group g: members[member_offset[g] ...], count[g] of them; empty without /IDs.
  std::vector<std::uint64_t> member_offset, members;
  std::size_t size() const { return count.size(); }
};
HaloTable readHaloCatalogue(const std::string& path, MPI_Comm comm);

// dn/dlnM [(h/Mpc)^3] in bins of 0.2 dex from the smallest group mass, with Poisson errors, as a
// text table: M_center [Msun/h], M_mean [Msun/h], dn/dlnM, error, groups. Rank 0 only.
void writeMassFunction(const std::string& path, const HaloCatalogue& cat, const HaloMeta& meta);

} // namespace caustic
