#pragma once
// Mesh fields in HDF5: /Header (BoxSize, Time, Redshift, mesh size), /Parameters, and
// /Fields/<name> as an (N, N, N) float32 dataset indexed [x][y][z], written collectively by
// x-slab. The file is written under a temporary name and renamed when complete.
#include "io/params.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <map>
#include <string>
#include <vector>

namespace caustic {

// `attributes`: extra string attributes of /Fields (e.g. an emulator's metadata).
template <class T>
void writeField(const std::string& path, const Field<T>& field, const std::string& name,
                const std::string& units, double a, const Params& params,
                const std::map<std::string, std::string>& attributes = {});

// Several fields of one decomposition in one file: /Fields/<names[c]>.
template <class T>
void writeFields(const std::string& path, const std::vector<const Field<T>*>& fields,
                 const std::vector<std::string>& names, const std::string& units, double a,
                 const Params& params, const std::map<std::string, std::string>& attributes = {});

// A map projected along z from a field of `decomp` (e.g. the Compton-y map): this rank's rows
// local_rows[(x - x0) N + y] for its x-planes; written as /Maps/<name> (N, N) float64 [x][y] with
// /Header (BoxSize, Time, Redshift, MeshSize) and /Parameters. Collective.
void writeProjectedMap(const std::string& path, const SlabDecomposition& decomp,
                       const std::vector<double>& local_rows, const std::string& name,
                       const std::string& units, double a, const Params& params,
                       const std::map<std::string, std::string>& attributes = {});

// Per-particle values in the snapshot layout: /Header, /Parameters, /PartType1/ParticleIDs and
// /PartType1/<names[c]> (float64, one value per particle), with `attributes` on /PartType1.
// Rows of all ranks are concatenated in rank order. Collective over `comm`.
void writeParticleValues(const std::string& path, const Comm& comm, const Particles& parts,
                         const std::vector<std::vector<double>>& values,
                         const std::vector<std::string>& names, double a, const Params& params,
                         const std::map<std::string, std::string>& attributes = {});

// A whole cubic field read on this rank alone (training data): /Header attributes and the
// float32 values of `dataset` (e.g. "Fields/density"), index (x n + y) n + z.
struct FieldData {
  int n = 0;
  double box = 0.0, cell = 0.0, a = 0.0, omega_m = 0.0; // [Mpc/h], [Mpc/h]
  // Fields painted from a FoF catalogue (validation/halo_fields.py): the groups' linking length
  // b (LinkingLengthParameter) and smallest group (MinParticles); 0 where the header has none.
  double fof_b = 0.0;
  int fof_min_particles = 0;
  std::string parameters; // the writing run's parameters (/Parameters "toml"); "" if none
  std::vector<float> values;
};
// Throws std::runtime_error naming the file and dataset if it is missing, not a cube, or
// unreadable (truncated or corrupted).
FieldData readFieldData(const std::string& path, const std::string& dataset);
// The same header without the values (nothing but the attributes and the size is read).
FieldData readFieldHeader(const std::string& path, const std::string& dataset);
// This rank's x-planes of a cubic field into `f`, whose decomposition must have the file's size:
// each rank reads its own slab only (no rank holds the whole cube). Returns the header (values
// empty). Collective: a size mismatch, an unreadable slab or a NaN/Inf on any rank throws
// CollectiveError (a std::runtime_error) on every rank.
FieldData readFieldSlab(const std::string& path, const std::string& dataset, Field<double>& f);

} // namespace caustic
