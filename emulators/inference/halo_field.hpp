#pragma once
// The continuous output of a halo surrogate and its vector-Jacobian product, for field-level
// inference from halos: the expected halo mass per voxel
//
//   E(x) = p(x) M(x) exp(sigma^2 / 2),
//
// p the presence probability and M the mass output of the model applied to the density contrast
// delta (the record's single input channel "density", on the model's mesh), sigma the record's
// log_mass_scatter (the mean of the lognormal the sampler draws from; its truncation at min_mass
// neglected). The VJP dE/ddelta^T w goes through applyDistributedVjp, so it equals the
// single-rank one. Chaining it to the particles is the paint's adjoint (pm/force/painter).
#include "emulators/inference/distributed_inference.hpp"

namespace caustic {

// out <- presence x mass x exp(scatter^2 / 2), pointwise.
void expectedHaloMass(const Field<float>& presence, const Field<float>& mass, double scatter,
                      Field<float>& out);

class HaloMassField {
public:
  // Throws std::invalid_argument unless the model's record has a "halo" section and one input
  // channel named "density".
  HaloMassField(const Model& model, InferenceOptions opt);
  // out <- E(delta). Collective.
  void value(const Field<float>& delta, Field<float>& out) const;
  // grad <- sum_y w(y) dE(y) / d delta(x). Collective.
  void vjp(const Field<float>& delta, const Field<float>& w, Field<float>& grad) const;

private:
  // The model's output channels at delta. Collective.
  std::vector<Field<float>> outputs(const Field<float>& delta) const;

  const Model& _model;
  InferenceOptions _opt;
  int _presence = 0, _mass = 1;
};

} // namespace caustic
