#pragma once
// Adapters between the particles of a run and the fields a model takes.
//
// Eulerian channels, painted on the PM mesh (CIC):
//   density                    delta = rho / mean - 1
//   momentum_x|y|z             (1 + delta) p: mass-weighted momentum per mean density
//                              [H0 Mpc/h = 100 km/s]
//   fof_count                  the run's own FoF groups (at least min_particles members) as
//                              member particles per cell, each group at the mesh point nearest
//                              its centre of mass (validation/halo_fields.py's fof_count)
// Lagrangian channels, on the N_p^3 particle lattice (the particle with ID (i N_p + j) N_p + k
// sits at lattice site (i, j, k)):
//   displacement_x|y|z         x - q, nearest periodic image [Mpc/h]
//   momentum_x|y|z             p [H0 Mpc/h]
// Lagrangian fields are slab-decomposed like any mesh field; the particles are sent by ID to
// the rank owning their lattice plane, and model outputs are sent back the same way.
#include "pm/analysis/fof.hpp"
#include "pm/force/painter.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/distributor.hpp"
#include "pm/particles/particles.hpp"

#include <memory>
#include <string>
#include <vector>

namespace caustic {

enum class FieldSpace { Eulerian, Lagrangian };

// The channels each space offers (in the order above).
const std::vector<std::string>& channelNames(FieldSpace space);
// "eulerian" | "lagrangian"; throws std::invalid_argument otherwise.
FieldSpace fieldSpaceFromName(const std::string& name);
std::string fieldSpaceName(FieldSpace space);
// Throws std::invalid_argument naming `where`, the channel and the allowed ones.
void checkChannels(FieldSpace space, const std::vector<std::string>& channels,
                   const std::string& where);

// The FoF settings of the fof_count channel: the run's mean particle separation [Mpc/h] and
// its [halos] linking length and smallest group.
struct FofChannel {
  double mean_separation = 0.0;
  FofOptions options;
};

// out <- Eulerian channel `channel` of the particles (N_total over all ranks), which lie on
// their owning slabs of the painter's mesh. fof_count needs `fof`; the others ignore it.
// Collective.
void paintEulerian(const std::string& channel, Field<float>& out, const Painter<float>& painter,
                   const Particles& parts, double total_particles, const FofChannel* fof = nullptr);

// out <- the member particles of the catalogue's groups per cell, each group at the mesh point
// nearest its centre (i = round(x / H) mod n). Not collective: every rank holds the whole
// catalogue (FoF's layout) and fills its own planes.
void paintGroupMembers(Field<float>& out, const HaloCatalogue& groups);

// Per-particle values of a Lagrangian channel, in particle order: the displacement needs the
// lattice (n_p per side, box [Mpc/h], offset [Mpc/h]).
std::vector<double> lagrangianValues(const std::string& channel, const Particles& parts, int n_p,
                                     double box, double offset);

// Moves per-particle values to the Lagrangian lattice and back. Collective construction and
// transfers over the lattice's communicator. Throws if the particles do not cover every lattice
// site exactly once (e.g. a subset of the particles).
class LagrangianExchange {
public:
  LagrangianExchange(std::shared_ptr<const SlabDecomposition> lattice, const Particles& parts);

  const std::shared_ptr<const SlabDecomposition>& lattice() const { return _lattice; }
  // fields[c] <- values[c][i] at the lattice site of particle i. Collective.
  void toLattice(const std::vector<std::vector<double>>& values,
                 const std::vector<Field<float>*>& fields) const;
  // values[c][i] <- fields[c] at the lattice site of particle i. Collective.
  std::vector<std::vector<double>>
  fromLattice(const std::vector<const Field<float>*>& fields) const;

private:
  std::shared_ptr<const SlabDecomposition> _lattice;
  std::size_t _count = 0;
  // Particles -> lattice owners (all of them, own rank included); reverse() brings values back.
  // Mutable: transfers reuse its buffers.
  mutable Distributor _plan;
  std::vector<std::size_t> _recvSite; // received slot -> flat real index in the local lattice slab
};

} // namespace caustic
