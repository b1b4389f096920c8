#pragma once
// Potential corrections that depend on |k| and a only, K(|k|, a; theta), evaluated through a
// table over the integer |m|^2 = mx^2 + my^2 + mz^2 of the mesh (|k| = k_F sqrt(m2)): every
// mode reads its factor from the table, and the parameter VJP first sums the mode products
// <phibar, phi> into the same table, then pulls them back through the table's own Jacobian.
// The table has 3 (N/2)^2 + 1 entries (49153 for a 256^3 mesh) and is rebuilt only when a or the
// mesh changes, so a network evaluated per table (emulators/force) costs nothing per mode.
//
// K is real and even in k, so K^H = K. Every new table is checked: finite and within bounds()
// (std::runtime_error naming the correction, the value, |k| and a otherwise), so a correction
// that has left its range stops the run instead of corrupting it.
#include "pm/force/force_correction.hpp"

#include <utility>
#include <vector>

namespace caustic {

// The modes' |k| on a table of m2 = 0 .. 3 (N/2)^2: x(m2) = |k| / k_Nyquist = sqrt(m2) / (N/2).
std::vector<double> radialTableX(int n);

template <class T> class RadialCorrection : public PotentialCorrection<T> {
public:
  // K at every entry of the table: x = |k| / k_Nyquist (radialTableX(n)); box [Mpc/h] for
  // corrections in physical k (|k| = x pi n / box).
  virtual void table(double a, int n, double box, std::vector<double>& K) const = 0;
  // grad += sum_j gK[j] dK[j]/dtheta (same table layout). Local (no communication).
  virtual void tableVJP(double a, int n, double box, const std::vector<double>& gK,
                        std::vector<double>& grad) const = 0;
  // The range K must stay in.
  virtual std::pair<double, double> bounds() const { return {0.0, 10.0}; }

  void apply(Field<T>& phi_k, double a) const override;
  void vjpPotential(Field<T>& phibar_k, double a) const override { apply(phibar_k, a); }
  void vjpParameters(const Field<T>& phibar_k, const Field<T>& phi_k, double a,
                     std::vector<double>& grad) const override;

  // The checked table at (a, mesh) as a device View (cached).
  Kokkos::View<double*> deviceTable(double a, const SlabDecomposition& d) const;

private:
  mutable double _a = -1.0, _box = -1.0;
  mutable int _n = -1;
  mutable Kokkos::View<double*> _table;
};

// The tensor-product hat correction (no LibTorch): K(k, a) = 1 + sum_ij theta_ij h_i(x) g_j(a),
// x = |k| / k_Nyquist. h_i: hats on the nodes x_1 < ... < x_m (> 0) with an implicit node x_0 =
// 0 where every h_i vanishes, so K(k -> 0) = 1 (large scales keep linear growth); h_m = 1 above
// x_m. g_j: hats on the scale-factor nodes (clamped: g_0 = 1 below a_0, g_last = 1 above).
// theta is laid out i-major: theta[i * a_nodes + j].
template <class T> class HatKCorrection : public RadialCorrection<T> {
public:
  HatKCorrection(std::vector<double> x_nodes, std::vector<double> a_nodes,
                 std::vector<double> theta);
  std::string name() const override { return "hat_ka"; }
  std::vector<double> parameters() const override { return _theta; }
  void table(double a, int n, double box, std::vector<double>& K) const override;
  void tableVJP(double a, int n, double box, const std::vector<double>& gK,
                std::vector<double>& grad) const override;
  const std::vector<double>& xNodes() const { return _x; }
  const std::vector<double>& aNodes() const { return _a; }

private:
  // Nonzero (index, weight) pairs of the bases at x and at a.
  int kHats(double x, int idx[2], double w[2]) const;
  int aHats(double a, int idx[2], double w[2]) const;
  std::vector<double> _x, _a, _theta;
};

extern template class RadialCorrection<float>;
extern template class RadialCorrection<double>;
extern template class HatKCorrection<float>;
extern template class HatKCorrection<double>;

} // namespace caustic
