#include "pm/grad/power_model.hpp"

namespace caustic {

PowerModel PowerModel::eisensteinHu() {
  return PowerModel();
}

PowerModel PowerModel::table(LinearPower table, const CosmologyParams& ref, bool normalize) {
  PowerModel m;
  m._table = std::move(table);
  m._ref = ref;
  m._normalize = normalize;
  return m;
}

LinearPower PowerModel::at(const CosmologyParams& c) const {
  if (!_table)
    return LinearPower::eisensteinHu(c);
  return _table->tilted(c.n_s - _ref.n_s, 0.05 / _ref.h, _normalize, c.sigma8);
}

bool PowerModel::dependsOn(CosmoParam p) const {
  if (!_table)
    return true;
  return p == CosmoParam::n_s || (_normalize && p == CosmoParam::sigma8);
}

} // namespace caustic
