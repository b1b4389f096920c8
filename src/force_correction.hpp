#pragma once
// The run's force correction ([gravity.correction]): a trained record or inline PGD, turned into
// what the engine applies: a potential correction at every force evaluation (neural_spline,
// hat_ka), or PGD at the outputs (an observer that displaces a copy of the particles and shows
// it to the output observers), or both: a PGD record fitted on top of a potential correction
// carries that correction as its base.
#include "io/force_correction_record.hpp"
#include "io/params.hpp"
#include "pm/force/pgd.hpp"
#include "pm/stepping/observer.hpp"

#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace caustic {

struct RunForceCorrection {
  ForceCorrectionRecord record;
  std::string source;   // the record's path, or "inline"
  std::string mismatch; // how the run leaves the record's domain ("" inside)
  std::optional<PgdSchedule> pgd;
  // The record applied at every force evaluation: the record itself (neural_spline, hat_ka), a
  // PGD record's base, or nullptr (PGD alone).
  const ForceCorrectionRecord* potential() const { return pgd ? record.base.get() : &record; }
  // A description for the log and the run summary.
  nlohmann::json summary() const;
};

// Reads and checks [gravity.correction]; throws ParamError when the record is unusable or the run
// is outside its domain without `force`. nullopt when the run has no correction.
std::optional<RunForceCorrection> loadRunForceCorrection(const Params& p);

// The potential correction of a neural_spline or hat_ka record (nullptr for PGD). Throws
// ParamError when it cannot be built (e.g. neural_spline in a build without LibTorch).
template <class T>
std::shared_ptr<const PotentialCorrection<T>>
makePotentialCorrection(const ForceCorrectionRecord& r);

// Applies PGD at outputs: on an Output event, a copy of the particles is displaced by PGD
// (parameters at that a) and migrated, and the wrapped observers see the copy; other events pass
// through unchanged.
template <class T> class PgdOutputs : public Observer {
public:
  PgdOutputs(std::shared_ptr<Workspace<T>> workspace, double Omega_m, const GravityOptions& opt,
             PgdSchedule schedule, std::vector<Observer*> inner);
  std::string name() const override { return "pgd"; }
  bool wants(Event e) const override;
  void observe(Event e, const SimulationState& state) override;
  double seconds() const { return _seconds; }

private:
  PgdDisplacement<T> _pgd;
  PgdSchedule _schedule;
  std::vector<Observer*> _inner;
  double _seconds = 0.0;
};

} // namespace caustic
