#pragma once
// A potential correction linear in its parameters: K(k) = 1 + sum_i theta_i B_i(|k|), B_i
// piecewise-linear hats on the nodes k_i [h/Mpc] (B_0 = 1 below k_0, B_last = 1 above the last
// node). Real and even in k, so K^H = K.
#include "pm/force/force_correction.hpp"

#include <vector>

namespace caustic {

// Piecewise-linear hats on m increasing nodes, clamped at both ends (the first is 1 below the
// first node, the last 1 above the last): the (up to) two nonzero (index, weight) pairs at v.
KOKKOS_INLINE_FUNCTION int clampedHats(const double* nodes, int m, double v, int idx[2],
                                       double w[2]) {
  if (v <= nodes[0]) {
    idx[0] = 0;
    w[0] = 1.0;
    return 1;
  }
  if (v >= nodes[m - 1]) {
    idx[0] = m - 1;
    w[0] = 1.0;
    return 1;
  }
  int i = 0;
  while (i + 1 < m - 1 && v >= nodes[i + 1])
    ++i;
  const double t = (v - nodes[i]) / (nodes[i + 1] - nodes[i]);
  idx[0] = i;
  w[0] = 1.0 - t;
  idx[1] = i + 1;
  w[1] = t;
  return 2;
}

class HatFilter : public PotentialCorrection<double> {
public:
  // Throws std::invalid_argument unless there is one theta per node (at least one) and the
  // nodes are >= 0 and increasing.
  HatFilter(std::vector<double> nodes, std::vector<double> theta);
  std::string name() const override { return "hat_filter"; }
  std::vector<double> parameters() const override { return _theta; }
  void apply(Field<double>& phi_k, double a) const override;
  void vjpPotential(Field<double>& phibar_k, double a) const override { apply(phibar_k, a); }
  void vjpParameters(const Field<double>& phibar_k, const Field<double>& phi_k, double a,
                     std::vector<double>& grad) const override;
  const std::vector<double>& nodes() const { return _nodes; }

private:
  std::vector<double> _nodes, _theta;
  Kokkos::View<double*> _dnodes, _dtheta;
};

} // namespace caustic
