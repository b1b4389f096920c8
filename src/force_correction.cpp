#include "force_correction.hpp"

#include "pm/force/radial_correction.hpp"
#include "pm/particles/migrate.hpp"
#include "emulator_runtime.hpp"

#include <chrono>
#include <stdexcept>
#include <type_traits>

namespace caustic {

nlohmann::json RunForceCorrection::summary() const {
  nlohmann::json j = {{"correction", record.correction}, {"source", source}};
  if (!mismatch.empty())
    j["outside_domain"] = mismatch; // applied with force = true
  if (pgd) {
    j["pgd"] = record.toJson()["pgd"];
    if (record.base)
      j["base"] = {{"correction", record.base->correction},
                   {"parameters", record.base->theta.size()},
                   {"architecture", record.base->architecture}};
  } else {
    j["parameters"] = record.theta.size();
    j["architecture"] = record.architecture;
  }
  if (!record.training.empty())
    j["training"] = record.training;
  return j;
}

std::optional<RunForceCorrection> loadRunForceCorrection(const Params& p) {
  const auto& fc = p.gravity.correction;
  if (!fc.enabled)
    return std::nullopt;
  RunForceCorrection rc;
  if (fc.model.empty()) { // inline PGD: valid for any configuration the user gives it to
    rc.source = "inline";
    rc.record.correction = "pgd";
    rc.record.pgd_a = fc.a;
    for (std::size_t i = 0; i < fc.a.size(); ++i)
      rc.record.pgd_theta.push_back({fc.alpha[i], fc.k_l[i], fc.k_s[i]});
    rc.record.setDomain(p);
  } else {
    rc.source = fc.model;
    rc.record = ForceCorrectionRecord::read(fc.model);
    rc.mismatch = rc.record.domainMismatch(p);
    if (!rc.mismatch.empty() && !fc.force) {
      std::string lines;
      std::size_t b = 0;
      while (b <= rc.mismatch.size()) {
        auto e = rc.mismatch.find('\n', b);
        if (e == std::string::npos)
          e = rc.mismatch.size();
        lines += "\n  - " + rc.mismatch.substr(b, e - b);
        b = e + 1;
      }
      throw ParamError("gravity.correction.model = \"" + fc.model +
                       "\": this run is outside the domain the correction was trained for:" +
                       lines + "\nset gravity.correction.force = true to apply it anyway");
    }
  }
  if (rc.record.correction == "pgd") {
    PgdSchedule s{rc.record.pgd_a, rc.record.pgd_theta};
    try {
      s.validate();
    } catch (const std::invalid_argument& e) {
      throw ParamError("gravity.correction: " + std::string(e.what()));
    }
    rc.pgd = s;
  }
  // Built once here so that a broken record fails before anything is written.
  if (const ForceCorrectionRecord* r = rc.potential())
    (void)makePotentialCorrection<double>(*r);
  return rc;
}

template <class T>
std::shared_ptr<const PotentialCorrection<T>>
makePotentialCorrection(const ForceCorrectionRecord& r) {
  try {
    if (r.correction == "hat_ka") {
      const auto& a = r.architecture;
      return std::make_shared<const HatKCorrection<T>>(
          a.at("x_nodes").get<std::vector<double>>(), a.at("a_nodes").get<std::vector<double>>(),
          r.theta);
    }
    if (r.correction == "neural_spline") {
      const auto& rt = emulatorRuntime("gravity.correction (a neural_spline correction)");
      if constexpr (std::is_same_v<T, float>)
        return rt.neuralSplineFloat(r);
      else
        return rt.neuralSplineDouble(r);
    }
  } catch (const nlohmann::json::exception& e) {
    throw ParamError("gravity.correction: malformed architecture (" + std::string(e.what()) + ")");
  } catch (const std::invalid_argument& e) {
    throw ParamError("gravity.correction: " + std::string(e.what()));
  }
  return nullptr;
}

template std::shared_ptr<const PotentialCorrection<float>>
makePotentialCorrection<float>(const ForceCorrectionRecord&);
template std::shared_ptr<const PotentialCorrection<double>>
makePotentialCorrection<double>(const ForceCorrectionRecord&);

template <class T>
PgdOutputs<T>::PgdOutputs(std::shared_ptr<Workspace<T>> workspace, double Omega_m,
                          const GravityOptions& opt, PgdSchedule schedule,
                          std::vector<Observer*> inner)
    : _pgd(std::move(workspace), Omega_m, opt), _schedule(std::move(schedule)),
      _inner(std::move(inner)) {}

template <class T> bool PgdOutputs<T>::wants(Event e) const {
  for (const Observer* o : _inner)
    if (o->wants(e))
      return true;
  return false;
}

template <class T> void PgdOutputs<T>::observe(Event e, const SimulationState& state) {
  if (e != Event::Output) {
    for (Observer* o : _inner)
      if (o->wants(e))
        o->observe(e, state);
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  // PGD displaces double-precision particles (a converted copy in a single-precision run).
  Particles moved =
      state.particles.visit([](const auto& p) { return convertParticles<double>(p); });
  _pgd.displace(moved, state.total_particles, state.a, _schedule.at(state.a));
  Migrator(state.mesh)(moved);
  _seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  SimulationState shown = state;
  shown.particles = moved;
  for (Observer* o : _inner)
    if (o->wants(e))
      o->observe(e, shown);
}

template class PgdOutputs<float>;
template class PgdOutputs<double>;

} // namespace caustic
