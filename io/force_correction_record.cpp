#include "io/force_correction_record.hpp"

#include "io/atomic_file.hpp"
#include "io/format.hpp"
#include "io/text_file.hpp"

#include <cmath>

namespace caustic {

namespace {
std::vector<double> runBoundaries(const Params& p) {
  const auto& s = p.simulation;
  return timeSteps(s.a_start, s.a_end, s.steps, stepSpacing(s), p.output.a);
}
} // namespace

nlohmann::json ForceCorrectionRecord::toJson() const {
  nlohmann::json j;
  j["kind"] = "force_correction";
  j["version"] = "1.0";
  j["correction"] = correction;
  if (!architecture.is_null())
    j["architecture"] = architecture;
  if (correction == "pgd") {
    nlohmann::json p;
    p["a"] = pgd_a;
    std::vector<double> al, kl, ks;
    for (const auto& t : pgd_theta) {
      al.push_back(t[0]);
      kl.push_back(t[1]);
      ks.push_back(t[2]);
    }
    p["alpha"] = al;
    p["k_l"] = kl;
    p["k_s"] = ks;
    j["pgd"] = p;
    if (base)
      j["base"] = base->toJson();
  } else {
    j["theta"] = theta;
  }
  j["domain"] = {{"cell_size", cell_size},
                 {"particles_per_cell", particles_per_cell},
                 {"steps", steps},
                 {"a_start", a_start},
                 {"a_end", a_end},
                 {"boundaries", boundaries},
                 {"window", window},
                 {"kernel", kernel},
                 {"deconvolve", deconvolve},
                 {"lpt_order", lpt_order},
                 {"Omega_m", omega_m},
                 {"sigma8", sigma8}};
  j["training"] = training;
  return j;
}

ForceCorrectionRecord ForceCorrectionRecord::fromJson(const nlohmann::json& j,
                                                      const std::string& where) {
  ForceCorrectionRecord r;
  try {
    if (j.value("kind", "") != "force_correction")
      throw ParamError(where + ": \"kind\" is not \"force_correction\"");
    r.correction = j.at("correction").get<std::string>();
    if (r.correction != "neural_spline" && r.correction != "hat_ka" && r.correction != "pgd")
      throw ParamError(where + ": correction = \"" + r.correction +
                       "\"; allowed: neural_spline, hat_ka, pgd");
    if (j.contains("architecture"))
      r.architecture = j.at("architecture");
    if (r.correction == "pgd") {
      const auto& p = j.at("pgd");
      r.pgd_a = p.at("a").get<std::vector<double>>();
      const auto al = p.at("alpha").get<std::vector<double>>(),
                 kl = p.at("k_l").get<std::vector<double>>(),
                 ks = p.at("k_s").get<std::vector<double>>();
      if (al.size() != r.pgd_a.size() || kl.size() != r.pgd_a.size() ||
          ks.size() != r.pgd_a.size() || r.pgd_a.empty())
        throw ParamError(where + ": pgd.a, alpha, k_l and k_s must have the same length (>= 1)");
      for (std::size_t i = 0; i < al.size(); ++i)
        r.pgd_theta.push_back({al[i], kl[i], ks[i]});
      if (j.contains("base")) {
        auto b = fromJson(j.at("base"), where + " (its base)");
        if (b.correction == "pgd")
          throw ParamError(where + ": base.correction = \"pgd\"; a base is the potential "
                                   "correction PGD was fitted on top of: neural_spline or hat_ka");
        r.base = std::make_shared<const ForceCorrectionRecord>(std::move(b));
      }
    } else {
      if (j.contains("base"))
        throw ParamError(where + ": \"base\" is only allowed in a pgd record (correction = \"" +
                         r.correction + "\")");
      r.theta = j.at("theta").get<std::vector<double>>();
      for (double t : r.theta)
        if (!std::isfinite(t))
          throw ParamError(where + ": a parameter in \"theta\" is not finite");
      if (!j.contains("architecture"))
        throw ParamError(where + ": \"architecture\" missing for correction " + r.correction);
    }
    const auto& d = j.at("domain");
    r.cell_size = d.at("cell_size").get<double>();
    r.particles_per_cell = d.at("particles_per_cell").get<double>();
    r.steps = d.at("steps").get<int>();
    r.a_start = d.at("a_start").get<double>();
    r.a_end = d.at("a_end").get<double>();
    r.boundaries = d.value("boundaries", std::vector<double>{});
    r.window = d.value("window", r.window);
    r.kernel = d.value("kernel", r.kernel);
    r.deconvolve = d.value("deconvolve", r.deconvolve);
    r.lpt_order = d.value("lpt_order", r.lpt_order);
    r.omega_m = d.at("Omega_m").get<std::array<double, 2>>();
    r.sigma8 = d.at("sigma8").get<std::array<double, 2>>();
    if (j.contains("training"))
      r.training = j.at("training");
  } catch (const nlohmann::json::exception& e) {
    throw ParamError(where + ": malformed force correction record (" + e.what() + ")");
  }
  if (!(r.cell_size > 0) || !(r.particles_per_cell > 0) || r.steps < 1)
    throw ParamError(where + ": domain.cell_size, particles_per_cell and steps must be positive");
  return r;
}

ForceCorrectionRecord ForceCorrectionRecord::read(const std::string& path) {
  const std::string text = readTextFile(path, "force correction record");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw ParamError(path + ": not JSON (" + e.what() + ")");
  }
  return fromJson(j, path);
}

void ForceCorrectionRecord::write(const std::string& path) const {
  writeTextFile(path, toJson().dump(2) + "\n");
}

void ForceCorrectionRecord::setDomain(const Params& p) {
  const auto& s = p.simulation;
  cell_size = s.box / s.mesh;
  particles_per_cell = std::pow(double(s.particles) / s.mesh, 3);
  steps = s.steps;
  a_start = s.a_start;
  a_end = s.a_end;
  boundaries = runBoundaries(p);
  window = p.gravity.window;
  kernel = p.gravity.kernel;
  deconvolve = p.gravity.deconvolve;
  lpt_order = s.lpt_order;
}

std::string ForceCorrectionRecord::domainMismatch(const Params& p) const {
  const auto& s = p.simulation;
  std::string out;
  auto add = [&out](const std::string& line) { out += (out.empty() ? "" : "\n") + line; };
  const double cell = s.box / s.mesh, ppc = std::pow(double(s.particles) / s.mesh, 3);
  if (std::abs(cell / cell_size - 1) > 0.02)
    add(format("PM cell %.4g Mpc/h, trained for %.4g (2%% tolerance)", cell, cell_size));
  if (std::abs(ppc / particles_per_cell - 1) > 0.01)
    add(format("%.4g particles per PM cell, trained for %.4g", ppc, particles_per_cell));
  if (s.steps != steps)
    add(format("%d steps, trained for %d", s.steps, steps));
  if (std::abs(s.a_start - a_start) > 1e-6 * a_start || std::abs(s.a_end - a_end) > 1e-6)
    add(format("a = %.4g -> %.4g, trained for %.4g -> %.4g", s.a_start, s.a_end, a_start, a_end));
  if (!boundaries.empty() && s.steps == steps) {
    const auto b = runBoundaries(p);
    bool same = b.size() == boundaries.size();
    for (std::size_t i = 0; same && i < b.size(); ++i)
      same = std::abs(b[i] - boundaries[i]) < 1e-9;
    if (!same)
      add("step boundaries differ from the trained ones (an output.a off the trained steps "
          "moves them)");
  }
  if (p.gravity.window != window || p.gravity.kernel != kernel ||
      p.gravity.deconvolve != deconvolve)
    add("gravity " + p.gravity.window + "/" + p.gravity.kernel +
        (p.gravity.deconvolve ? "/deconvolved" : "") + ", trained with " + window + "/" + kernel +
        (deconvolve ? "/deconvolved" : ""));
  if (s.lpt_order != lpt_order)
    add(format("lpt_order %d, trained with %d", s.lpt_order, lpt_order));
  const double om = p.cosmology.Omega_m, s8 = p.cosmology.sigma8;
  if (om < omega_m[0] || om > omega_m[1])
    add(format("Omega_m = %.4g outside the trained range [%.4g, %.4g]", om, omega_m[0],
               omega_m[1]));
  if (s8 < sigma8[0] || s8 > sigma8[1])
    add(format("sigma8 = %.4g outside the trained range [%.4g, %.4g]", s8, sigma8[0], sigma8[1]));
  return out;
}

} // namespace caustic
