#include "pm/stepping/schedule.hpp"

#include <stdexcept>
#include <string>

namespace caustic {

ScheduledStep Schedule::step(const FastPMFactors& f, double ai, double af, Spacing spacing,
                             bool open, double a_next) {
  ScheduledStep s;
  s.ai = ai;
  s.af = af;
  s.ah = midpoint(ai, af, spacing);
  s.spacing = spacing;
  s.open = open;
  s.open_factor = open ? f.kick(ai, s.ah, ai) : 0.0;
  s.drift_factor = f.drift(ai, af, s.ah);
  const double close = f.kick(s.ah, af, af);
  if (a_next > af) {
    s.ahead = f.kick(af, midpoint(af, a_next, spacing), af);
    s.close_factor = close + s.ahead;
    s.next = a_next;
  } else {
    s.close_factor = close;
  }
  return s;
}

Schedule::Schedule(const FastPMFactors& factors, const std::vector<double>& boundaries,
                   Spacing spacing, const std::vector<bool>& synchronised_after)
    : _boundaries(boundaries), _spacing(spacing) {
  if (boundaries.size() < 2)
    throw std::invalid_argument("Schedule: need at least two step boundaries, got " +
                                std::to_string(boundaries.size()));
  const int S = static_cast<int>(boundaries.size()) - 1;
  bool open = true;
  for (int s = 1; s <= S; ++s) {
    const bool sync = s == S || (static_cast<std::size_t>(s) < synchronised_after.size() &&
                                 synchronised_after[static_cast<std::size_t>(s)]);
    _steps.push_back(step(factors, boundaries[s - 1], boundaries[s], spacing, open,
                          sync ? 0.0 : boundaries[s + 1]));
    const ScheduledStep& st = _steps.back();
    if (st.open)
      _ops.push_back({Operation::Kind::Kick, st.ai, st.open_factor, s});
    _ops.push_back({Operation::Kind::Drift, st.af, st.drift_factor, s});
    _ops.push_back({Operation::Kind::Kick, st.af, st.close_factor, s});
    open = sync;
  }
}

} // namespace caustic
