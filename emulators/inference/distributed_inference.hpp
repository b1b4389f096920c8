#pragma once
// Fully convolutional 3D models applied to slab-distributed fields, exactly as on one rank.
//
// Each rank gathers `radius` ghost planes of every input channel from its neighbours (several
// ranks away when a slab is thinner than the radius, periodic), pads y and z periodically by
// `radius` (not at all for a model that pads periodically itself: Model::periodicPadding, the
// native U-Net), evaluates the model on x-tiles of at most `tile_planes` planes (+ 2 radius), and
// keeps the central part. With the model's receptive-field radius <= `radius`, the result does
// not depend on the decomposition or the tiling: it equals the model applied to the periodic
// field on one rank. Models with a stride S > 1 (U-Nets: 2^depth) see the padding rounded up to
// a multiple of S and tiles that start on global multiples of S, so their pooling grids are the
// same as on the whole field; the mesh side must be a multiple of S.
#include "emulators/runtime/model.hpp"
#include "pm/mesh/ghost_planes.hpp"
#include "pm/mesh/mesh.hpp"

#include <vector>

namespace caustic {

struct InferenceOptions {
  int radius = 0;       // ghost planes per side; at least the model's receptive-field radius
  int tile_planes = 32; // x-planes evaluated at once (memory bound)
};

// outputs[c] <- channel c of model(inputs) (real space), for every rank's planes. Collective.
void applyDistributed(const Model& model, const std::vector<const Field<float>*>& inputs,
                      const std::vector<Field<float>*>& outputs, const InferenceOptions& opt);

// The vector-Jacobian product of applyDistributed: gradients[c](x) <- sum over output channels o
// and cells y of weights[o](y) d model(inputs)[o](y) / d inputs[c](x), through the model's
// transforms and normalisation (autograd per tile; the contributions to ghost planes are added to
// their owners, those to the y/z padding wrapped periodically). Equal to the VJP of the
// single-rank application. Collective.
void applyDistributedVjp(const Model& model, const std::vector<const Field<float>*>& inputs,
                         const std::vector<const Field<float>*>& weights,
                         const std::vector<Field<float>*>& gradients,
                         const InferenceOptions& opt);

} // namespace caustic
