#pragma once
// The linear power spectrum as a function of the cosmological parameters, for the gradients
// of the LPT model (parameters.hpp says what each spectrum depends on).
#include "pm/cosmology/linear_power.hpp"
#include "pm/grad/parameters.hpp"

#include <optional>

namespace caustic {

class PowerModel {
public:
  // Eisenstein & Hu (1998), normalised to sigma8: depends on every CosmoParam.
  static PowerModel eisensteinHu();
  // A table (LinearPower::fromTable, untilted) computed at the parameters `ref`:
  // P(k; c) = P_table(k) (k / k_p)^(c.n_s - ref.n_s), k_p = 0.05 / ref.h h/Mpc (0.05 / Mpc),
  // renormalised to c.sigma8 if `normalize`. Depends on n_s, and on sigma8 if normalised.
  static PowerModel table(LinearPower table, const CosmologyParams& ref, bool normalize);

  LinearPower at(const CosmologyParams& c) const;
  bool dependsOn(CosmoParam p) const;
  bool tabulated() const { return _table.has_value(); }

private:
  std::optional<LinearPower> _table;
  CosmologyParams _ref;
  bool _normalize = true;
};

} // namespace caustic
