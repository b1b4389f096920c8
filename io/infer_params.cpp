#include "io/infer_params.hpp"

#include "io/format.hpp"
#include "io/text_file.hpp"
#include "io/toml_section.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

namespace caustic {

using namespace tomlsec;

double InferParams::cellVariance() const {
  if (variance > 0.0)
    return variance;
  const double cell = run.simulation.box / run.simulation.mesh;
  return 1.0 / (number_density * cell * cell * cell);
}

std::string InferParams::hash() const {
  return fnv1aHex(toml);
}

InferParams loadInferParams(const std::string& path, const std::vector<std::string>& overrides,
                            int nranks) {
  const std::string text = readTextFile(path, "parameter file");
  const auto base = std::filesystem::path(path).parent_path().string();
  return parseInferParams(text, overrides, nranks, base.empty() ? "." : base, path);
}

InferParams parseInferParams(const std::string& text, const std::vector<std::string>& overrides,
                             int nranks, const std::string& base_dir, const std::string& source) {
  toml::table root = parseTomlText(text, source);
  for (const auto& ov : overrides)
    applyOverride(root, ov);
  InferParams p;
  {
    std::ostringstream all;
    all << root;
    p.toml = all.str();
  }
  toml::node* node = root.get("inference");
  if (!node)
    throw ParamError("[inference]: missing section; `caustic infer` needs the data (or "
                     "[inference.mock]) and its noise");
  if (!node->is_table())
    throw ParamError("[inference]: expected a table (section), found a " + typeName(*node));
  toml::table inference = *node->as_table();
  root.erase("inference");
  {
    // The forward model is a run's: the same validation, the same meaning of every key.
    std::ostringstream rest;
    rest << root;
    p.run = parseParams(rest.str(), {}, nranks, base_dir, source);
  }
  const auto& sim = p.run.simulation;
  toml::table holder;
  holder.insert("inference", inference);
  Section s(&holder, "inference");

  p.mock = s.find("mock") != nullptr; // (marks the key as known)
  if (p.mock) {
    Section m(&inference, "mock", true, "inference.");
    auto& t = p.truth;
    const auto seed = m.integer("seed", static_cast<std::int64_t>(sim.seed),
                                "an integer >= 0 (the truth's white noise)");
    if (seed < 0)
      throw ParamError(m.key("seed") + " = " + std::to_string(seed) +
                       ": not allowed; expected an integer >= 0");
    t.seed = static_cast<std::uint64_t>(seed);
    const auto ns = m.integer("noise_seed", 1, "an integer >= 0 (the data's noise)");
    if (ns < 0)
      throw ParamError(m.key("noise_seed") + " = " + std::to_string(ns) +
                       ": not allowed; expected an integer >= 0");
    t.noise_seed = static_cast<std::uint64_t>(ns);
    t.Omega_m = m.number("Omega_m", p.run.cosmology.Omega_m, "a number in (0.05, 0.95)");
    requireRange(t.Omega_m > 0.05 && t.Omega_m < 0.95, m.key("Omega_m"), t.Omega_m, "(0.05, 0.95)");
    t.sigma8 = m.number("sigma8", p.run.cosmology.sigma8, "a number in (0.1, 3)");
    requireRange(t.sigma8 > 0.1 && t.sigma8 < 3, m.key("sigma8"), t.sigma8, "(0.1, 3)");
    t.bias = m.number("bias", 1.0, "a number in (0.05, 20)");
    requireRange(t.bias > 0.05 && t.bias < 20, m.key("bias"), t.bias, "(0.05, 20)");
    m.finish();
  }

  if (auto d = s.string("data")) {
    if (p.mock)
      throw ParamError("inference.data = \"" + *d +
                       "\": not allowed with [inference.mock] (a mock makes its own data); "
                       "remove one of them");
    std::filesystem::path dp(*d);
    if (dp.is_relative())
      dp = std::filesystem::path(base_dir) / dp;
    p.data = dp.string();
  } else if (!p.mock) {
    throw ParamError("inference.data: missing; expected an HDF5 field file (or an "
                     "[inference.mock] section)");
  }
  p.dataset = s.string("dataset").value_or("delta");
  p.mask = s.string("mask").value_or("");
  if (p.mock && !p.mask.empty())
    throw ParamError("inference.mask = \"" + p.mask + "\": a mock has no mask dataset");

  const bool has_var = s.find("variance") != nullptr;
  const bool has_n = s.find("number_density") != nullptr;
  if (has_var == has_n)
    throw ParamError(std::string("inference.variance / inference.number_density: ") +
                     (has_var ? "both given; expected one" : "missing; expected one") +
                     " (the noise variance per cell, or a tracer density in (h/Mpc)^3)");
  if (has_var) {
    p.variance = s.number("variance", std::nullopt, "a number > 0");
    requireRange(p.variance > 0, s.key("variance"), p.variance, "> 0");
  } else {
    p.number_density = s.number("number_density", std::nullopt, "a number > 0 (h/Mpc)^3");
    requireRange(p.number_density > 0, s.key("number_density"), p.number_density, "> 0 (h/Mpc)^3");
  }

  p.fit = s.strings("fit").value_or(std::vector<std::string>{});
  for (std::size_t i = 0; i < p.fit.size(); ++i) {
    const auto& f = p.fit[i];
    if (f != "Omega_m" && f != "sigma8" && f != "bias")
      throw ParamError("inference.fit = \"" + f +
                       "\": unknown parameter; allowed: Omega_m, sigma8, bias");
    if (std::find(p.fit.begin(), p.fit.begin() + i, f) != p.fit.begin() + i)
      throw ParamError("inference.fit: \"" + f + "\" twice");
  }
  p.bias = s.number("bias", 1.0, "a number in (0.05, 20)");
  requireRange(p.bias > 0.05 && p.bias < 20, s.key("bias"), p.bias, "(0.05, 20)");

  const double cell = sim.box / sim.mesh;
  p.smoothing = s.numbers("smoothing", "a list of scales >= 0 in Mpc/h, descending")
                    .value_or(std::vector<double>{4 * cell, 2 * cell, cell, 0.0});
  if (p.smoothing.empty() || p.smoothing.size() > 20)
    throw ParamError("inference.smoothing: " + std::to_string(p.smoothing.size()) +
                     " stages; allowed: 1 to 20 scales");
  for (std::size_t i = 0; i < p.smoothing.size(); ++i) {
    requireRange(p.smoothing[i] >= 0 && p.smoothing[i] <= sim.box, s.key("smoothing"),
                 p.smoothing[i], "[0, simulation.box] Mpc/h");
    if (i > 0 && p.smoothing[i] > p.smoothing[i - 1])
      throw ParamError("inference.smoothing = " + formatNumber(p.smoothing[i]) + ": after " +
                       formatNumber(p.smoothing[i - 1]) +
                       "; the scales anneal from large to small (descending)");
  }
  const auto it = s.numbers("iterations", "an integer >= 1, or one per smoothing scale");
  std::vector<double> its = it.value_or(std::vector<double>{50.0});
  if (its.size() == 1)
    its.assign(p.smoothing.size(), its[0]);
  if (its.size() != p.smoothing.size())
    throw ParamError("inference.iterations: " + std::to_string(its.size()) + " values for " +
                     std::to_string(p.smoothing.size()) +
                     " smoothing scales; expected one integer, or one per scale");
  for (double v : its) {
    if (!(v >= 1 && v <= 1e6 && std::floor(v) == v))
      throw ParamError("inference.iterations = " + formatNumber(v) +
                       ": not allowed; expected an integer in [1, 1000000]");
    p.iterations.push_back(static_cast<int>(v));
  }
  // fit_from_stage = the number of stages: no stage moves the parameters (the MAP of the noise
  // at the start's parameters, from which HMC samples the joint posterior).
  const auto ffs = s.integer("fit_from_stage", p.smoothing.size() > 1 ? 1 : 0,
                             "a stage index in [0, number of smoothing scales]");
  if (ffs < 0 || ffs > static_cast<std::int64_t>(p.smoothing.size()))
    throw ParamError("inference.fit_from_stage = " + std::to_string(ffs) +
                     ": not allowed; expected a stage index in [0, " +
                     std::to_string(p.smoothing.size()) + "] (" +
                     std::to_string(p.smoothing.size()) + ": no stage moves the parameters)");
  p.fit_from_stage = static_cast<int>(ffs);
  const auto mem = s.integer("memory", 10, "an integer in [1, 100] (L-BFGS pairs)");
  if (mem < 1 || mem > 100)
    throw ParamError("inference.memory = " + std::to_string(mem) +
                     ": not allowed; expected an integer in [1, 100] (L-BFGS pairs)");
  p.memory = static_cast<int>(mem);
  p.gradient_tolerance = s.number("gradient_tolerance", 1e-5, "a number in (0, 1)");
  requireRange(p.gradient_tolerance > 0 && p.gradient_tolerance < 1, s.key("gradient_tolerance"),
               p.gradient_tolerance, "(0, 1)");
  const auto probes =
      s.integer("preconditioner_probes", 2, "an integer in [0, 64] (0: no preconditioner)");
  if (probes < 0 || probes > 64)
    throw ParamError("inference.preconditioner_probes = " + std::to_string(probes) +
                     ": not allowed; expected an integer in [0, 64] (0: no preconditioner)");
  p.preconditioner_probes = static_cast<int>(probes);
  const auto every = s.integer("checkpoint_every", 20,
                               "an integer >= 0 (MAP iterations or HMC trajectories between "
                               "checkpoints; 0: only when stopped by a signal)");
  if (every < 0 || every > 1000000)
    throw ParamError("inference.checkpoint_every = " + std::to_string(every) +
                     ": not allowed; expected an integer in [0, 1000000]");
  p.checkpoint_every = static_cast<int>(every);
  p.muse.enabled = s.find("muse") != nullptr;
  if (p.muse.enabled) {
    Section u(&inference, "muse", true, "inference.");
    auto& c = p.muse;
    if (p.fit.empty())
      throw ParamError("[inference.muse]: inference.fit is empty; MUSE estimates the fitted "
                       "parameters (any of Omega_m, sigma8, bias)");
    const auto ns = u.integer("simulations", 20, "an integer in [2, 100000]");
    if (ns < 2 || ns > 100000)
      throw ParamError(u.key("simulations") + " = " + std::to_string(ns) +
                       ": not allowed; expected an integer in [2, 100000]");
    if (static_cast<std::size_t>(ns) <= p.fit.size())
      throw ParamError(u.key("simulations") + " = " + std::to_string(ns) + ": not allowed with " +
                       std::to_string(p.fit.size()) +
                       " fitted parameters (inference.fit); expected more simulations than "
                       "parameters (their scores' covariance is singular otherwise)");
    const auto ni = u.integer("iterations", 2, "an integer in [1, 100] (Newton steps)");
    if (ni < 1 || ni > 100)
      throw ParamError(u.key("iterations") + " = " + std::to_string(ni) +
                       ": not allowed; expected an integer in [1, 100] (Newton steps)");
    c.simulations = static_cast<int>(ns);
    c.iterations = static_cast<int>(ni);
    c.tolerance = u.number("tolerance", 0.0, "a number in [0, 10] (sigmas; 0: every iteration)");
    requireRange(c.tolerance >= 0 && c.tolerance <= 10, u.key("tolerance"), c.tolerance,
                 "[0, 10] (sigmas; 0: every iteration)");
    c.step = u.number("step", 0.02, "a number in (0, 0.5] (relative to each parameter)");
    requireRange(c.step > 0 && c.step <= 0.5, u.key("step"), c.step,
                 "(0, 0.5] (relative to each parameter)");
    c.max_step = u.number("max_step", 0.25, "a number in (0, 10] (relative to each parameter)");
    requireRange(c.max_step > 0 && c.max_step <= 10, u.key("max_step"), c.max_step,
                 "(0, 10] (relative to each parameter)");
    c.final_covariance = u.boolean("final_covariance", true);
    c.broyden = u.boolean("broyden", true);
    const auto seed = u.integer("seed", 1000000, "an integer in [0, 2^62]");
    if (seed < 0 || seed > (std::int64_t(1) << 62))
      throw ParamError(u.key("seed") + " = " + std::to_string(seed) +
                       ": not allowed; expected an integer in [0, 2^62]");
    c.seed = static_cast<std::uint64_t>(seed);
    // The simulations must not repeat the mock's own seeds (a simulation equal to the data).
    const std::uint64_t end = c.seed + 2 * static_cast<std::uint64_t>(c.simulations);
    if (p.mock)
      for (auto [name, v] : {std::pair<const char*, std::uint64_t>{"seed", p.truth.seed},
                             {"noise_seed", p.truth.noise_seed}})
        if (v >= c.seed && v < end)
          throw ParamError(u.key("seed") + " = " + std::to_string(c.seed) +
                           ": its simulations use the seeds [" + std::to_string(c.seed) + ", " +
                           std::to_string(end) + "), which hold inference.mock." + name + " = " +
                           std::to_string(v) + "; choose seeds apart");
    u.finish();
  }
  p.hmc.enabled = s.find("hmc") != nullptr;
  // White by default where only it serves: MUSE's scores, and HMC moving the parameters (below).
  const bool hmc_moves_parameters = p.hmc.enabled && !p.fit.empty();
  p.centred_prior = s.choice("prior", p.muse.enabled || hmc_moves_parameters ? "white" : "centred",
                             {"centred", "white"}) == "centred";
  if (p.muse.enabled && p.centred_prior)
    throw ParamError("inference.prior = \"centred\": not allowed with [inference.muse], whose "
                     "scores are of the joint density of (omega, theta); use \"white\" (its "
                     "default)");
  const bool map_fits = p.fit_from_stage < static_cast<int>(p.smoothing.size());
  p.laplace = s.boolean("laplace", !p.fit.empty() && !p.muse.enabled && map_fits);
  if (p.laplace && p.fit.empty())
    throw ParamError("inference.laplace = true: no parameter to fit (inference.fit is empty); "
                     "the Laplace covariance is that of the fitted parameters");
  if (p.laplace && !map_fits)
    throw ParamError("inference.laplace = true: not allowed with inference.fit_from_stage = " +
                     std::to_string(p.fit_from_stage) +
                     " (no stage fits the parameters, so there is no MAP to expand around)");
  if (p.laplace && p.muse.enabled)
    throw ParamError("inference.laplace = true: not allowed with [inference.muse], which gives "
                     "the parameters' covariance itself");
  if (p.hmc.enabled && p.muse.enabled)
    throw ParamError("[inference.hmc]: not allowed with [inference.muse] (HMC samples around "
                     "the joint MAP, which MUSE does not compute); run them separately");
  // HMC moves (omega, theta); the density of (omega, theta) is the white prior's. The centred
  // prior's is that of (delta_L, theta), which in omega's coordinates lacks the Jacobian
  // det S(theta)^(1/2): sampled in omega it would weigh theta by det S^(-1/2).
  if (hmc_moves_parameters && p.centred_prior)
    throw ParamError("inference.prior = \"centred\": not allowed with [inference.hmc] and "
                     "fitted parameters (HMC moves the white noise, whose joint density with "
                     "the parameters is the \"white\" prior's); use prior = \"white\"");
  if (p.hmc.enabled) {
    Section h(&inference, "hmc", true, "inference.");
    auto& c = p.hmc;
    const auto ns = h.integer("samples", 200, "an integer in [1, 1000000]");
    const auto nb = h.integer("burn_in", 50, "an integer in [0, 1000000]");
    const auto nl = h.integer("leapfrog_steps", 10, "an integer in [1, 10000]");
    if (ns < 1 || ns > 1000000)
      throw ParamError(h.key("samples") + " = " + std::to_string(ns) +
                       ": not allowed; expected an integer in [1, 1000000]");
    if (nb < 0 || nb > 1000000)
      throw ParamError(h.key("burn_in") + " = " + std::to_string(nb) +
                       ": not allowed; expected an integer in [0, 1000000]");
    if (nl < 1 || nl > 10000)
      throw ParamError(h.key("leapfrog_steps") + " = " + std::to_string(nl) +
                       ": not allowed; expected an integer in [1, 10000]");
    c.samples = static_cast<int>(ns);
    c.burn_in = static_cast<int>(nb);
    c.leapfrog_steps = static_cast<int>(nl);
    c.step_size = h.number("step_size", 0.05, "a number in (0, 10]");
    requireRange(c.step_size > 0 && c.step_size <= 10, h.key("step_size"), c.step_size, "(0, 10]");
    const auto seed = h.integer("seed", 1, "an integer >= 0");
    if (seed < 0)
      throw ParamError(h.key("seed") + " = " + std::to_string(seed) +
                       ": not allowed; expected an integer >= 0");
    c.seed = static_cast<std::uint64_t>(seed);
    // The noise partially centred on the parameters while they are sampled (weights from the
    // preconditioner's curvature per shell, so it needs the preconditioner).
    c.centring = h.boolean("centring", !p.fit.empty() && p.preconditioner_probes > 0);
    if (c.centring && (p.fit.empty() || p.preconditioner_probes == 0))
      throw ParamError(h.key("centring") + " = true: not allowed " +
                       (p.fit.empty() ? std::string("without fitted parameters (inference.fit is "
                                                    "empty: no parameter to centre on)")
                                      : std::string("with inference.preconditioner_probes = 0 "
                                                    "(its weights come from the "
                                                    "preconditioner's curvature)")));
    if (auto ps = h.numbers("parameter_sigma",
                            "a list of widths > 0, one per entry of inference.fit")) {
      if (ps->size() != p.fit.size())
        throw ParamError(h.key("parameter_sigma") + ": " + std::to_string(ps->size()) +
                         " values for " + std::to_string(p.fit.size()) +
                         " fitted parameters; expected one per entry of inference.fit");
      for (double v : *ps)
        requireRange(v > 0 && std::isfinite(v), h.key("parameter_sigma"), v,
                     "> 0 (the expected posterior width, in the parameter's units)");
      c.parameter_sigma = *ps;
    }
    h.finish();
  }
  s.finish();
  return p;
}

} // namespace caustic
