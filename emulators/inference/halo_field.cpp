#include "emulators/inference/halo_field.hpp"

#include <cmath>
#include <stdexcept>

namespace caustic {

void expectedHaloMass(const Field<float>& presence, const Field<float>& mass, double scatter,
                      Field<float>& out) {
  const auto e = out.real(), p = presence.real(), m = mass.real();
  const float boost = static_cast<float>(std::exp(0.5 * scatter * scatter));
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

void HaloMassField::value(const Field<float>& delta, Field<float>& out) const {
  const int cout = static_cast<int>(_model.metadata().outputs.size());
  std::vector<Field<float>> y;
  std::vector<Field<float>*> yp;
  for (int c = 0; c < cout; ++c)
    y.emplace_back(delta.decompPtr(), "caustic::HaloMassField::output");
  for (auto& f : y)
    yp.push_back(&f);
  applyDistributed(_model, {&delta}, yp, _opt);
  expectedHaloMass(y[_presence], y[_mass], _model.metadata().halo->log_mass_scatter, out);
}

void HaloMassField::vjp(const Field<float>& delta, const Field<float>& w,
                        Field<float>& grad) const {
  const int cout = static_cast<int>(_model.metadata().outputs.size());
  std::vector<Field<float>> y, wy;
  std::vector<Field<float>*> yp;
  std::vector<const Field<float>*> wp;
  for (int c = 0; c < cout; ++c) {
    y.emplace_back(delta.decompPtr(), "caustic::HaloMassField::output");
    wy.emplace_back(delta.decompPtr(), "caustic::HaloMassField::weight");
    wy.back().setZero();
  }
  for (auto& f : y)
    yp.push_back(&f);
  for (const auto& f : wy)
    wp.push_back(&f);
  applyDistributed(_model, {&delta}, yp, _opt);
  // dE = boost (M dp + p dM): the weights of the two outputs.
  const float boost =
      static_cast<float>(std::exp(0.5 * std::pow(_model.metadata().halo->log_mass_scatter, 2)));
  const auto p = y[_presence].real(), m = y[_mass].real(), wr = w.real();
  const auto wp_ = wy[_presence].real(), wm = wy[_mass].real();
  delta.decomp().forEachPoint("caustic::HaloMassField::weights", KOKKOS_LAMBDA(const MeshPoint& q) {
    wp_(q.index) = wr(q.index) * m(q.index) * boost;
    wm(q.index) = wr(q.index) * p(q.index) * boost;
  });
  applyDistributedVjp(_model, {&delta}, wp, {&grad}, _opt);
}

} // namespace caustic
