#pragma once
// Mesh fields in HDF5: /Header (BoxSize, Time, Redshift, mesh size), /Parameters, and
// /Fields/<name> as an (N, N, N) float32 dataset indexed [x][y][z], written collectively by
// x-slab. The file is written under a temporary name and renamed when complete.
#include "io/params.hpp"
#include "pm/mesh.hpp"

#include <map>
#include <string>

namespace caustic {

// `attributes`: extra string attributes of /Fields (e.g. an emulator's metadata).
template <class T>
void writeField(const std::string& path, const Field<T>& field, const std::string& name,
                const std::string& units, double a, const Params& params,
                const std::map<std::string, std::string>& attributes = {});

} // namespace caustic
