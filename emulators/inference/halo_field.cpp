#include "emulators/inference/halo_field.hpp"

#include <cmath>
#include <stdexcept>

namespace caustic {

namespace {
// exp(sigma^2 / 2): the mean of a lognormal draw over its median.
float lognormalBoost(double scatter) {
  return static_cast<float>(std::exp(0.5 * scatter * scatter));
}
} // namespace

void expectedHaloMass(const Field<float>& presence, const Field<float>& mass, double scatter,
                      Field<float>& out) {
  const auto e = out.real(), p = presence.real(), m = mass.real();
  const float boost = lognormalBoost(scatter);
  out.decomp().forEachPoint("caustic::expectedHaloMass", KOKKOS_LAMBDA(const MeshPoint& q) {
    e(q.index) = p(q.index) * m(q.index) * boost;
  });
}

HaloMassField::HaloMassField(const Model& model, InferenceOptions opt)
    : _model(model), _opt(opt) {
  const auto& meta = model.metadata();
  if (!meta.halo)
    throw std::invalid_argument("HaloMassField: the model (" + meta.kind +
                                ") is not a halo surrogate (no \"halo\" record)");
  if (meta.inputs.size() != 1 || meta.inputs[0].name != "density")
    throw std::invalid_argument("HaloMassField: the halo surrogate must take one input channel, "
                                "\"density\"");
  _presence = meta.outputIndex(meta.halo->presence);
  _mass = meta.outputIndex(meta.halo->mass);
}

std::vector<Field<float>> HaloMassField::outputs(const Field<float>& delta) const {
  std::vector<Field<float>> y;
  std::vector<Field<float>*> yp;
  for (std::size_t c = 0; c < _model.metadata().outputs.size(); ++c)
    y.emplace_back(delta.decompPtr(), "caustic::HaloMassField::output");
  for (auto& f : y)
    yp.push_back(&f);
  applyDistributed(_model, {&delta}, yp, _opt);
  return y;
}

void HaloMassField::value(const Field<float>& delta, Field<float>& out) const {
  const auto y = outputs(delta);
  expectedHaloMass(y[_presence], y[_mass], _model.metadata().halo->log_mass_scatter, out);
}

void HaloMassField::vjp(const Field<float>& delta, const Field<float>& w,
                        Field<float>& grad) const {
  const auto y = outputs(delta);
  // dE = boost (M dp + p dM): the weights of the two outputs (zero for any other output).
  std::vector<Field<float>> wy;
  std::vector<const Field<float>*> wp;
  for (std::size_t c = 0; c < y.size(); ++c) {
    wy.emplace_back(delta.decompPtr(), "caustic::HaloMassField::weight");
    wy.back().setZero();
  }
  for (const auto& f : wy)
    wp.push_back(&f);
  const float boost = lognormalBoost(_model.metadata().halo->log_mass_scatter);
  const auto p = y[_presence].real(), m = y[_mass].real(), wr = w.real();
  const auto wpres = wy[_presence].real(), wmass = wy[_mass].real();
  delta.decomp().forEachPoint("caustic::HaloMassField::weights", KOKKOS_LAMBDA(const MeshPoint& q) {
    wpres(q.index) = wr(q.index) * m(q.index) * boost;
    wmass(q.index) = wr(q.index) * p(q.index) * boost;
  });
  applyDistributedVjp(_model, {&delta}, wp, {&grad}, _opt);
}

} // namespace caustic
