#pragma once
// Losses of the final state of the differentiable model, with their cotangents.
#include "pm/core/comm.hpp"
#include "pm/force/painter.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <memory>

namespace caustic {

// Loss: sum |x - x_target|^2 (periodic, nearest image) + weight_p sum |p - p_target|^2 over all
// particles; state and target in lattice order (as DiffPM). cot <- dL/d(x, p). Collective.
double particleLoss(const Particles& state, const Particles& target, double box, double weight_p,
                    Particles& cot, const Comm& comm);

// Loss: chi^2 = sum_cells mask (delta - observed)^2 / sigma^2, delta the CIC/TSC-painted density
// contrast of the final particles on `mesh`; sigma [same units as delta] per cell; mask 0/1 (or
// weights; no mask: all 1).
class FieldChi2Loss {
public:
  FieldChi2Loss(std::shared_ptr<const SlabDecomposition> mesh,
                std::shared_ptr<const SlabDecomposition> lattice, Window window,
                const Field<double>& observed, const Field<double>& sigma,
                const Field<double>* mask = nullptr);
  // Value; cot <- dL/d(x, p) in lattice order (p part zero). Collective.
  double operator()(const Particles& state, Particles& cot) const;
  // delta of the state on the mesh (for plots and tests). Collective.
  void density(const Particles& state, Field<double>& delta) const;

private:
  std::shared_ptr<const SlabDecomposition> _mesh, _lattice;
  Painter<double> _painter;
  const Field<double>& _obs;
  const Field<double>& _sigma;
  const Field<double>* _mask;
};

} // namespace caustic
