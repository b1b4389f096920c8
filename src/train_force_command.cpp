// `caustic train` with [model] kind = "force_correction": fits a force correction of the hybrid
// PM (neural_spline, hat_ka or pgd) to high-resolution reference runs through the adjoint.
#include "commands.hpp"
#include "common.hpp"
#include "force_correction.hpp"

#include "emulators/force/neural_correction.hpp"
#include "emulators/training/training.hpp"
#include "io/atomic_file.hpp"
#include "io/format.hpp"
#include "io/snapshot.hpp"
#include "io/svg_plot.hpp"
#include "io/text_file.hpp"
#include "io/toml_section.hpp"
#include "pm/core/memory.hpp"
#include "pm/grad/adjoint.hpp"
#include "pm/particles/migrate.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <limits>
#include <sstream>
#include <unistd.h>

namespace caustic {

using namespace tomlsec;

namespace {

struct ForceTrainConfig {
  std::string source, text;
  std::string correction; // neural_spline | hat_ka | pgd
  nlohmann::json architecture;
  std::uint64_t init_seed = 1;
  // PGD on top of a trained potential correction ([model] base): its record, applied at every
  // force evaluation of the runs PGD is fitted to; the trained record carries it.
  std::string base_path;
  std::shared_ptr<const ForceCorrectionRecord> base;
  std::string run_params;
  Params run;
  std::string references; // directory pattern with {seed}
  std::vector<std::uint64_t> train_seeds, validation_seeds;
  std::vector<double> a; // snapshot scale factors scored
  int steps = 200;
  double learning_rate = 0.01, lr_min = 0.0;
  double power_weight = 1.0, k_max = 0.0;
  std::string optimizer = "adam"; // adam | lbfgs (learning_rate: its largest first step)
  int validate_every = 10, checkpoint_every = 10;
  std::string directory = "output/force_correction";
};

std::vector<std::uint64_t> seedList(Section& s, const std::string& k) {
  const auto v = s.numbers(k, "a list of integer seeds");
  if (!v || v->empty())
    throw ParamError(s.key(k) + ": missing or empty; expected a list of integer seeds");
  std::vector<std::uint64_t> out;
  for (double x : *v) {
    if (!(x >= 0) || x != std::floor(x) || x > 9e15)
      throw ParamError(s.key(k) + ": " + format("%g", x) + " is not a seed (integer >= 0)");
    out.push_back(static_cast<std::uint64_t>(x));
  }
  return out;
}

// The trained kinds' potential corrections as functions of their parameters.
PotentialCorrectionFactory potentialCorrectionFactory(const std::string& correction,
                                                      const nlohmann::json& architecture) {
  if (correction == "neural_spline") {
    const NeuralSplineConfig nc = NeuralSplineConfig::fromJson(architecture, "architecture");
    return [nc](const std::vector<double>& t) {
      return std::make_shared<const NeuralSplineCorrection<double>>(nc, t);
    };
  }
  const auto x = architecture.at("x_nodes").get<std::vector<double>>();
  const auto an = architecture.at("a_nodes").get<std::vector<double>>();
  return [x, an](const std::vector<double>& t) {
    return std::make_shared<const HatKCorrection<double>>(x, an, t);
  };
}

ForceTrainConfig parseConfig(const std::string& path, const std::vector<std::string>& sets,
                             int nranks) {
  ForceTrainConfig c;
  c.source = path;
  c.text = readTextFile(path, "training configuration");
  std::string base = std::filesystem::path(path).parent_path().string();
  if (base.empty())
    base = ".";
  toml::table root = parseTomlText(c.text, path);
  for (const auto& ov : sets)
    applyOverride(root, ov);
  {
    std::ostringstream t;
    t << root;
    c.text = t.str(); // the effective configuration (file plus overrides)
  }
  for (auto&& [k, v] : root) {
    const std::string ks(k.str());
    if (ks != "model" && ks != "run" && ks != "data" && ks != "training" && ks != "output")
      throw ParamError("[" + ks +
                       "]: unknown section; allowed: [model], [run], [data], [training], "
                       "[output]");
  }
  {
    Section s(&root, "model");
    (void)s.string("kind");
    c.correction = s.choice("correction", "neural_spline", {"neural_spline", "hat_ka", "pgd"});
    const auto seed = s.integer("seed", 1, "an integer >= 0");
    requireRange(seed >= 0, s.key("seed"), double(seed), ">= 0");
    c.init_seed = static_cast<std::uint64_t>(seed);
    if (const auto b = s.string("base")) {
      if (c.correction != "pgd")
        throw ParamError(s.key("base") + " = \"" + *b + "\": a base (the potential correction " +
                         "PGD is fitted on top of) is only allowed with correction = \"pgd\", "
                         "not \"" +
                         c.correction + "\"");
      std::filesystem::path bp(*b);
      c.base_path = bp.is_relative() ? (std::filesystem::path(base) / bp).string() : *b;
    }
    if (c.correction == "neural_spline") {
      NeuralSplineConfig nc;
      nc.knots = static_cast<int>(s.integer("knots", nc.knots, "an integer in [1, 64]"));
      nc.latent = static_cast<int>(s.integer("latent", nc.latent, "an integer in [1, 1024]"));
      nc.bound = s.number("bound", nc.bound, "a number in (0, 10]");
      nc.flat_origin = s.boolean("flat_origin", nc.flat_origin);
      try {
        c.architecture = NeuralSplineConfig::fromJson(nc.toJson(), "[model]").toJson();
      } catch (const std::invalid_argument& e) {
        throw ParamError(e.what());
      }
    } else if (c.correction == "hat_ka") {
      const auto x = s.numbers("x_nodes", "increasing |k| / k_Nyquist nodes > 0")
                         .value_or(std::vector<double>{0.25, 0.5, 0.75, 1.0, 1.25});
      const auto an = s.numbers("a_nodes", "increasing scale-factor nodes > 0")
                          .value_or(std::vector<double>{0.25, 0.5, 1.0});
      try {
        HatKCorrection<double> probe(x, an, std::vector<double>(x.size() * an.size(), 0.0));
      } catch (const std::invalid_argument& e) {
        throw ParamError("[model]: " + std::string(e.what()));
      }
      c.architecture = {{"type", "hat_ka"}, {"x_nodes", x}, {"a_nodes", an}};
    }
    s.finish();
  }
  {
    Section s(&root, "run");
    const auto p = s.string("params");
    if (!p || p->empty())
      throw ParamError("run.params: missing; expected the parameter file of the production run "
                       "the correction is for");
    std::filesystem::path pp(*p);
    if (pp.is_relative())
      pp = std::filesystem::path(base) / pp;
    c.run_params = pp.string();
    c.run = loadParams(c.run_params, {}, nranks);
    if (c.run.gravity.kernel != "finite_difference" || c.run.gravity.deconvolve)
      throw ParamError("run.params = \"" + *p +
                       "\": the differentiable model has the finite_difference kernel without "
                       "deconvolution; gravity.kernel = \"" + c.run.gravity.kernel + "\"" +
                       (c.run.gravity.deconvolve ? ", deconvolve = true" : ""));
    if (c.run.gravity.correction.enabled)
      throw ParamError("run.params = \"" + *p +
                       "\" has a [gravity.correction]; train against the uncorrected run");
    s.finish();
  }
  if (!c.base_path.empty()) {
    auto b = ForceCorrectionRecord::read(c.base_path);
    if (b.correction == "pgd")
      throw ParamError("model.base = \"" + c.base_path +
                       "\" is a pgd record; a base is a neural_spline or hat_ka record");
    try { // built once here, so that a broken base fails before anything is written
      const auto corr = potentialCorrectionFactory(b.correction, b.architecture)(b.theta);
      if (corr->parameters().size() != b.theta.size())
        throw std::invalid_argument(std::to_string(b.theta.size()) + " parameters for " +
                                    corr->name() + ", which has " +
                                    std::to_string(corr->parameters().size()));
    } catch (const std::exception& e) { // malformed architecture or parameters
      throw ParamError("model.base = \"" + c.base_path + "\": not a usable " + b.correction +
                       " record (" + e.what() + ")");
    }
    const std::string mismatch = b.domainMismatch(c.run);
    if (!mismatch.empty())
      throw ParamError("model.base = \"" + c.base_path + "\" was trained for another run than " +
                       c.run_params + ": " + mismatch);
    c.base = std::make_shared<const ForceCorrectionRecord>(std::move(b));
  }
  const auto& sim = c.run.simulation;
  const Spacing spacing = stepSpacing(sim);
  const auto bounds = timeSteps(sim.a_start, sim.a_end, sim.steps, spacing);
  {
    // The differentiable model steps on the plain grid; outputs off it would move the run's steps.
    const auto with_outputs = timeSteps(sim.a_start, sim.a_end, sim.steps, spacing, c.run.output.a);
    bool same = with_outputs.size() == bounds.size();
    for (std::size_t i = 0; same && i < bounds.size(); ++i)
      same = std::abs(with_outputs[i] - bounds[i]) < 1e-9;
    if (!same)
      throw ParamError("run.params: output.a has scale factors off the run's " +
                       std::to_string(sim.steps) +
                       " step boundaries, which moves the steps; put the outputs on step "
                       "boundaries");
  }
  {
    Section s(&root, "data");
    const auto r = s.string("references");
    if (!r || r->find("{seed}") == std::string::npos)
      throw ParamError("data.references: missing or without {seed}; expected a directory pattern "
                       "such as \"refs/seed_{seed}\"");
    std::filesystem::path rp(*r);
    c.references = rp.is_relative() ? (std::filesystem::path(base) / rp).string() : *r;
    c.train_seeds = seedList(s, "train_seeds");
    c.validation_seeds = seedList(s, "validation_seeds");
    for (auto t : c.train_seeds)
      for (auto v : c.validation_seeds)
        if (t == v)
          throw ParamError("data.validation_seeds: seed " + std::to_string(v) +
                           " is also a training seed; held-out seeds must differ");
    const auto a = s.numbers("a", "scale factors of step boundaries of the production run");
    c.a = a ? *a : std::vector<double>(bounds.begin() + 1, bounds.end());
    for (std::size_t i = 1; i < c.a.size(); ++i)
      if (!(c.a[i] > c.a[i - 1]))
        throw ParamError("data.a: " + format("%g", c.a[i]) +
                         " after " + format("%g", c.a[i - 1]) + "; expected increasing scale "
                         "factors without repeats");
    for (double x : c.a) {
      bool found = false;
      for (std::size_t i = 1; i < bounds.size(); ++i)
        found = found || std::abs(bounds[i] - x) < 1e-9;
      if (!found)
        throw ParamError("data.a: " + format("%g", x) +
                         " is not a step boundary of the production run (" +
                         std::to_string(sim.steps) + " steps from " + format("%g", sim.a_start) +
                         ")");
    }
    s.finish();
  }
  {
    Section s(&root, "training", false);
    c.steps = static_cast<int>(s.integer("steps", c.steps, "an integer >= 1"));
    requireRange(c.steps >= 1 && c.steps <= 10000000, s.key("steps"), c.steps, ">= 1");
    c.learning_rate = s.number("learning_rate", c.learning_rate, "a number in (0, 1)");
    requireRange(c.learning_rate > 0 && c.learning_rate < 1, s.key("learning_rate"),
                 c.learning_rate, "(0, 1)");
    c.lr_min = s.number("lr_min", 0.05 * c.learning_rate, "a number in [0, learning_rate]");
    requireRange(c.lr_min >= 0 && c.lr_min <= c.learning_rate, s.key("lr_min"), c.lr_min,
                 "[0, learning_rate]");
    c.optimizer = s.choice("optimizer", "adam", {"adam", "lbfgs"});
    c.power_weight = s.number("power_weight", c.power_weight, "a number >= 0");
    requireRange(c.power_weight >= 0, s.key("power_weight"), c.power_weight, ">= 0");
    c.k_max = s.number("k_max", 0.0, "a number >= 0 (0: the mesh Nyquist frequency)");
    requireRange(c.k_max >= 0, s.key("k_max"), c.k_max, ">= 0");
    c.validate_every = static_cast<int>(s.integer("validate_every", 10, "an integer >= 1"));
    requireRange(c.validate_every >= 1, s.key("validate_every"), c.validate_every, ">= 1");
    c.checkpoint_every = static_cast<int>(s.integer("checkpoint_every", 10, "an integer >= 1"));
    requireRange(c.checkpoint_every >= 1, s.key("checkpoint_every"), c.checkpoint_every, ">= 1");
    s.finish();
  }
  {
    Section s(&root, "output", false);
    c.directory = s.string("directory").value_or(c.directory);
    if (c.directory.empty())
      throw ParamError("output.directory = \"\": expected a directory path");
    s.finish();
  }
  return c;
}

std::string referenceDir(const ForceTrainConfig& c, std::uint64_t seed) {
  std::string d = c.references;
  d.replace(d.find("{seed}"), 6, std::to_string(seed));
  return d;
}


// Max periodic distance between two particle sets in lattice order. Collective.
double maxDistance(const Particles& a, const Particles& b, double L, MPI_Comm comm) {
  auto xa = a.x, xb = b.x;
  double m = 0.0;
  Kokkos::parallel_reduce(
      "caustic::train::icCheck", Kokkos::RangePolicy<>(0, a.size()),
      KOKKOS_LAMBDA(std::size_t i, double& acc) {
        for (int c = 0; c < 3; ++c) {
          double d = xa(i, c) - xb(i, c);
          d -= L * km::floor(d / L + 0.5);
          acc = km::fmax(acc, km::fabs(d));
        }
      },
      Kokkos::Max<double>(m));
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &m, 1, MPI_DOUBLE, MPI_MAX, comm), "train: IC check");
  return m;
}

// Whether `path` is a regular file (or directory), as rank 0 sees it: every rank gets the same
// answer, so no rank leaves a collective read the others enter.
bool existsOnRoot(const std::string& path, bool directory, const Comm& comm) {
  int ok = 0;
  if (comm.rank() == 0)
    ok = directory ? std::filesystem::is_directory(path) : std::filesystem::is_regular_file(path);
  mpiCheck(MPI_Bcast(&ok, 1, MPI_INT, 0, comm.get()), "train: file check");
  return ok != 0;
}

TrajectorySample loadSample(RunContext& ctx, const ForceTrainConfig& c, const DiffConfig& cfg,
                            std::uint64_t seed) {
  Params p = c.run;
  p.simulation.seed = seed;
  const auto& sim = p.simulation;
  const std::string dir = referenceDir(c, seed);
  if (!existsOnRoot(dir, true, ctx.comm()))
    throw ParamError("data.references: no reference directory " + dir + " for seed " +
                     std::to_string(seed) + " (make it with validation/hybrid_pm_references.sh)");
  TrajectorySample sample;
  // The production run's own initial conditions (in double precision), in lattice order.
  sample.initial = makeRunInitialConditions<double>(ctx, p, Cosmology(p.cosmology),
                                                    makeLinearPower(p));
  Migrator(cfg.lattice).toLattice(sample.initial);
  Migrator toLattice(cfg.lattice);
  auto read = [&](const std::string& file, double a) {
    if (!existsOnRoot(file, false, ctx.comm()))
      throw ParamError("data.references: " + file + " is missing (the reference for seed " +
                       std::to_string(seed) + " needs a snapshot at a = " + format("%.4f", a) +
                       ")");
    SnapshotHeader h;
    Particles q = readSnapshot(file, ctx.comm(), h);
    if (std::abs(h.box - sim.box) > 1e-9 * sim.box ||
        h.total_particles != std::uint64_t(sim.particles) * sim.particles * sim.particles)
      throw ParamError(file + ": box " + format("%g", h.box) + " Mpc/h with " +
                       std::to_string(h.total_particles) + " particles; the production run has " +
                       format("%g", sim.box) + " Mpc/h and " + std::to_string(sim.particles) +
                       "^3");
    if (std::abs(h.a - a) > 1e-6)
      throw ParamError(file + ": a = " + format("%.6f", h.a) + ", expected " + format("%.6f", a));
    toLattice.toLattice(q);
    return q;
  };
  // The reference must start from the same initial conditions (same seed, a_start, LPT).
  const std::string ic = dir + "/ic.hdf5";
  {
    const Particles q = read(ic, sim.a_start);
    const double d = maxDistance(q, sample.initial, sim.box, cfg.lattice->comm().get());
    if (d > 1e-3 * sim.box / sim.particles)
      throw ParamError(ic + ": not the initial conditions of seed " + std::to_string(seed) +
                       " with the production parameters (positions differ by up to " +
                       format("%.3g", d) + " Mpc/h)");
  }
  const auto bounds = timeSteps(sim.a_start, sim.a_end, sim.steps, cfg.spacing);
  for (double a : c.a) {
    TrajectorySample::Target t;
    for (std::size_t i = 1; i < bounds.size(); ++i)
      if (std::abs(bounds[i] - a) < 1e-9)
        t.boundary = static_cast<int>(i);
    t.particles = read(dir + "/" + format("snapshot_a%.4f.hdf5", a), a);
    sample.targets.push_back(std::move(t));
  }
  return sample;
}

struct Adam {
  std::vector<double> m, v;
  int t = 0;
  void step(std::vector<double>& x, const std::vector<double>& g, double lr) {
    const double b1 = 0.9, b2 = 0.999, eps = 1e-8;
    if (m.size() != x.size()) {
      m.assign(x.size(), 0.0);
      v.assign(x.size(), 0.0);
    }
    ++t;
    for (std::size_t i = 0; i < x.size(); ++i) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const double mh = m[i] / (1 - std::pow(b1, t)), vh = v[i] / (1 - std::pow(b2, t));
      x[i] -= lr * mh / (std::sqrt(vh) + eps);
    }
  }
};

// L-BFGS (two-loop recursion, 10 pairs) with a backtracking Armijo line search whose first
// trial moves no parameter by more than `max_step`. Deterministic, so a resumed run that
// recomputes the loss and gradient at the checkpoint's x continues bit for bit.
struct Lbfgs {
  std::size_t memory = 10;
  std::vector<std::vector<double>> s, y;
  // From x with loss f and gradient g: one iteration; x, f, g are updated. eval(u, gu) returns
  // the loss at u and fills its gradient.
  // Returns false when no decrease was found along the gradient either (converged, or the
  // loss is not smooth there).
  template <class Eval>
  bool step(std::vector<double>& x, double& f, std::vector<double>& g, double max_step,
            Eval&& eval) {
    const std::size_t n = x.size(), k = s.size();
    auto dot = [n](const std::vector<double>& a, const std::vector<double>& b) {
      double r = 0.0;
      for (std::size_t i = 0; i < n; ++i)
        r += a[i] * b[i];
      return r;
    };
    std::vector<double> d(g), alpha(k);
    for (std::size_t i = k; i-- > 0;) {
      alpha[i] = dot(s[i], d) / dot(y[i], s[i]);
      for (std::size_t j = 0; j < n; ++j)
        d[j] -= alpha[i] * y[i][j];
    }
    if (k > 0) {
      const double gamma = dot(s[k - 1], y[k - 1]) / dot(y[k - 1], y[k - 1]);
      for (double& v : d)
        v *= gamma;
    }
    for (std::size_t i = 0; i < k; ++i) {
      const double beta = dot(y[i], d) / dot(y[i], s[i]);
      for (std::size_t j = 0; j < n; ++j)
        d[j] += (alpha[i] - beta) * s[i][j];
    }
    for (double& v : d)
      v = -v;
    double slope = dot(g, d);
    if (!(slope < 0)) { // not a descent direction: forget the history, follow the gradient
      s.clear();
      y.clear();
      for (std::size_t j = 0; j < n; ++j)
        d[j] = -g[j];
      slope = dot(g, d);
    }
    double dmax = 0.0;
    for (double v : d)
      dmax = std::max(dmax, std::abs(v));
    double t = dmax > 0 ? std::min(1.0, max_step / dmax) : 0.0;
    std::vector<double> u(n), gu;
    for (int tries = 0; tries < 30; ++tries, t *= 0.5) {
      for (std::size_t j = 0; j < n; ++j)
        u[j] = x[j] + t * d[j];
      const double fu = eval(u, gu);
      if (std::isfinite(fu) && fu <= f + 1e-4 * t * slope) {
        std::vector<double> sk(n), yk(n);
        for (std::size_t j = 0; j < n; ++j) {
          sk[j] = u[j] - x[j];
          yk[j] = gu[j] - g[j];
        }
        if (dot(sk, yk) > 1e-12 * dot(yk, yk)) {
          s.push_back(sk);
          y.push_back(yk);
          if (s.size() > memory) {
            s.erase(s.begin());
            y.erase(y.begin());
          }
        }
        x = u;
        f = fu;
        g = gu;
        return true;
      }
    }
    const bool had_history = !s.empty();
    s.clear(); // no decrease found: stay, start the history again from the gradient
    y.clear();
    return had_history;
  }
};

} // namespace

int runForceTrainCommand(RunContext& ctx, const TrainCommandOptions& opt) {
  const ForceTrainConfig c = parseConfig(opt.config, opt.sets, ctx.comm().size());
  configureAllocatorForReuse();
  torch::set_num_threads(1); // parallelism comes from the MPI ranks
  const bool pgd = c.correction == "pgd";
  const bool tty = isatty(fileno(stderr)) != 0;
  DiffConfig cfg = diffConfig(c.run, ctx.comm().get());
  const NeuralSplineConfig nc = c.correction == "neural_spline"
                                    ? NeuralSplineConfig::fromJson(c.architecture, "[model]")
                                    : NeuralSplineConfig{};
  if (!pgd)
    cfg.potential_correction = potentialCorrectionFactory(c.correction, c.architecture);
  else if (c.base) // PGD's states come from runs with the base correction at every force
    cfg.potential_correction = potentialCorrectionFactory(c.base->correction, c.base->architecture);
  TrajectoryLossOptions lo;
  lo.power_weight = c.power_weight;
  lo.k_max = c.k_max;
  const TrajectoryLoss loss(cfg, lo);

  ctx.log("caustic train: force correction " + c.correction +
          (c.base ? " on top of " + c.base->correction + " (" + c.base_path + ")" : "") + " for " +
          c.run_params + " (" + std::to_string(c.run.simulation.particles) + "^3 particles, " +
          std::to_string(c.run.simulation.mesh) + "^3 mesh, " +
          std::to_string(c.run.simulation.steps) + " steps), " +
          std::to_string(c.train_seeds.size()) + " training and " +
          std::to_string(c.validation_seeds.size()) + " held-out references, " +
          std::to_string(c.a.size()) + " snapshots each -> " + c.directory);
  std::vector<TrajectorySample> train, held;
  {
    const auto t0 = std::chrono::steady_clock::now();
    for (auto s : c.train_seeds)
      train.push_back(loadSample(ctx, c, cfg, s));
    for (auto s : c.validation_seeds)
      held.push_back(loadSample(ctx, c, cfg, s));
    for (auto& s : train)
      loss.prepare(s);
    for (auto& s : held)
      loss.prepare(s);
    ctx.log(format("read the references in %.1f s",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
  }

  DiffParams params;
  params.cosmology = c.run.cosmology;
  if (c.base)
    params.correction = c.base->theta; // fixed: only PGD's parameters are fitted
  const std::size_t S = c.a.size();
  // The optimised vector: theta (potential corrections) or log(alpha, k_l, k_s) per snapshot.
  std::vector<double> x;
  std::vector<std::vector<Particles>> train_states, held_states;
  if (pgd) {
    const double kny = M_PI * c.run.simulation.mesh / c.run.simulation.box;
    for (double a : c.a) {
      // A weak start (alpha = 0.005) with k_l, k_s at 1/4 and 1 times the mesh Nyquist
      // frequency (FastPM's k_l = 2, k_s = 10 h/Mpc belong to its finer meshes).
      (void)a;
      for (double v : {0.005, 0.25 * kny, 1.0 * kny})
        x.push_back(std::log(v));
    }
    for (auto& s : train)
      train_states.push_back(loss.states(s, params));
    for (auto& s : held)
      held_states.push_back(loss.states(s, params));
  } else if (c.correction == "neural_spline") {
    x = NeuralSplineCorrection<double>(nc, {}, c.init_seed).parameters();
  } else {
    x.assign(c.architecture.at("x_nodes").size() * c.architecture.at("a_nodes").size(), 0.0);
  }
  auto pgdTheta = [&](const std::vector<double>& u) {
    std::vector<PgdTheta> t(S);
    for (std::size_t i = 0; i < S; ++i)
      t[i] = {std::exp(u[3 * i]), std::exp(u[3 * i + 1]), std::exp(u[3 * i + 2])};
    return t;
  };
  // Mean loss over a set, and its gradient in x when asked; its two terms are left in
  // last_position [(Mpc/h)^2] and last_power.
  double last_position = 0.0, last_power = 0.0;
  auto evaluate = [&](std::vector<TrajectorySample>& set,
                      const std::vector<std::vector<Particles>>& states,
                      const std::vector<double>& u, std::vector<double>* grad) {
    double total = 0.0;
    last_position = last_power = 0.0;
    if (grad)
      grad->assign(u.size(), 0.0);
    for (std::size_t i = 0; i < set.size(); ++i) {
      if (pgd) {
        std::vector<std::array<double, 3>> g;
        const auto th = pgdTheta(u);
        const auto v =
            loss.pgdLoss(set[i], states[i], th, params.cosmology.Omega_m, grad ? &g : nullptr);
        total += v.total;
        last_position += v.position / double(set.size());
        last_power += v.power / double(set.size());
        if (grad)
          for (std::size_t t = 0; t < S; ++t)
            for (int k = 0; k < 3; ++k)
              (*grad)[3 * t + k] += g[t][k] * th[t][k] / double(set.size()); // d/d log
      } else {
        DiffParams p = params;
        p.correction = u;
        ParameterGradient g = ParameterGradient::zeros(p);
        const auto v = loss(set[i], p, grad ? &g : nullptr);
        total += v.total;
        last_position += v.position / double(set.size());
        last_power += v.power / double(set.size());
        if (grad)
          for (std::size_t k = 0; k < u.size(); ++k)
            (*grad)[k] += g.correction[k] / double(set.size());
      }
    }
    return total / double(set.size());
  };

  const std::string dir = c.directory, ckpt = c.directory + "/checkpoint.json";
  const std::string config_hash = fnv1aHex(c.text + "\n" + c.run.hash());
  Adam adam;
  Lbfgs lbfgs;
  double f_now = 0.0; // L-BFGS: loss and gradient at x
  bool have_f = false;
  std::vector<LossRecord> curve;
  int start = 0;
  double elapsed_before = 0.0;
  // Locked against a second command writing into the same directory.
  const OutputClaim claim = claimOutputDirectory(ctx, dir, "caustic train");
  const bool have_ckpt = existsOnRoot(ckpt, false, ctx.comm());
  if (!opt.resume && (have_ckpt || existsOnRoot(dir + "/model.json", false, ctx.comm())))
    throw ParamError("output.directory = \"" + dir +
                     "\" holds an earlier training (checkpoint.json or model.json); pass "
                     "--resume to continue it, or choose or empty another directory");
  if (opt.resume) try {
    if (!have_ckpt)
      throw ParamError("--resume: no checkpoint " + ckpt);
    const auto j = nlohmann::json::parse(readTextFile(ckpt, "training checkpoint"));
    if (j.value("config_hash", "") != config_hash)
      throw ParamError("--resume: " + ckpt +
                       " was written with another configuration; resume with the same file and "
                       "--set options");
    start = j.at("step").get<int>();
    x = j.at("x").get<std::vector<double>>();
    adam.m = j.at("adam_m").get<std::vector<double>>();
    adam.v = j.at("adam_v").get<std::vector<double>>();
    adam.t = j.at("adam_t").get<int>();
    lbfgs.s = j.at("lbfgs_s").get<std::vector<std::vector<double>>>();
    lbfgs.y = j.at("lbfgs_y").get<std::vector<std::vector<double>>>();
    elapsed_before = j.value("seconds", 0.0);
    // Steps without a held-out evaluation carry null (NaN is not JSON).
    auto number = [](const nlohmann::json& v) {
      return v.is_null() ? std::nan("") : v.get<double>();
    };
    for (const auto& p : j.at("curve"))
      curve.push_back({p.at(0).get<int>(), number(p.at(1)), number(p.at(2)), number(p.at(3)),
                       number(p.at(4))});
    ctx.log("resuming at step " + std::to_string(start) + " from " + ckpt);
  } catch (const nlohmann::json::exception& e) {
    throw ParamError("--resume: " + ckpt + " is not a readable training checkpoint (" + e.what() +
                     ")");
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&] {
    return elapsed_before +
           std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  };
  auto writeCheckpoint = [&](int step) {
    if (!ctx.root())
      return;
    nlohmann::json j;
    j["config_hash"] = config_hash;
    j["step"] = step;
    j["x"] = x;
    j["adam_m"] = adam.m;
    j["adam_v"] = adam.v;
    j["adam_t"] = adam.t;
    j["lbfgs_s"] = lbfgs.s;
    j["lbfgs_y"] = lbfgs.y;
    j["seconds"] = seconds();
    j["curve"] = nlohmann::json::array();
    for (const auto& p : curve)
      j["curve"].push_back({p.step, p.train, p.validation, p.lr, p.seconds});
    writeTextFile(ckpt, j.dump() + "\n");
  };
  if (start == 0) {
    const double tr = evaluate(train, train_states, x, nullptr);
    const double va = evaluate(held, held_states, x, nullptr);
    curve.push_back({0, tr, va, c.learning_rate, 0.0});
    ctx.log(format("step 0 (%s): training loss %.5e, held-out %.5e (position %.5e (Mpc/h)^2, "
                   "power %.5e)",
                   !pgd     ? "uncorrected"
                   : c.base ? "PGD start, with the base"
                            : "PGD start",
                   tr, va, last_position, last_power));
  }
  const int every = std::max(1, c.steps / 50);
  const int last = opt.stop_after > 0 ? std::min(c.steps, opt.stop_after) : c.steps;
  std::vector<double> g;
  for (int step = start + 1; step <= last; ++step) {
    const double lr = c.lr_min + 0.5 * (c.learning_rate - c.lr_min) *
                                     (1 + std::cos(M_PI * (step - 1) / std::max(1, c.steps - 1)));
    double tr;
    if (c.optimizer == "lbfgs") {
      if (!have_f) {
        f_now = evaluate(train, train_states, x, &g);
        have_f = true;
      }
      tr = f_now;
    } else {
      tr = evaluate(train, train_states, x, &g);
    }
    for (double v : g)
      if (!std::isfinite(v))
        throw std::runtime_error("caustic train: non-finite gradient at step " +
                                 std::to_string(step) + " (learning rate too large?)");
    bool converged = false;
    if (c.optimizer == "lbfgs")
      converged = !lbfgs.step(x, f_now, g, lr, [&](const std::vector<double>& u,
                                                   std::vector<double>& gu) {
        try {
          return evaluate(train, train_states, u, &gu);
        } catch (const std::runtime_error& e) {
          // A trial point where the correction leaves its bounds (every rank alike): reject it.
          ctx.log(std::string("line search: ") + e.what());
          return std::numeric_limits<double>::infinity();
        }
      });
    else
      adam.step(x, g, lr);
    if (converged) {
      ctx.log("L-BFGS: no decrease along the gradient at step " + std::to_string(step) +
              "; stopping (converged)");
      curve.push_back({step, tr, evaluate(held, held_states, x, nullptr), lr, seconds()});
      writeCheckpoint(step);
      break;
    }
    double va = std::nan("");
    if (step % c.validate_every == 0 || step == c.steps)
      va = evaluate(held, held_states, x, nullptr);
    curve.push_back({step, tr, va, lr, seconds()});
    const double eta = (seconds() - elapsed_before) / (step - start) * (c.steps - step);
    const std::string line =
        format("step %5d/%d  loss %.5e  held-out %s  lr %.2e  ETA %6.0f s", step, c.steps, tr,
               std::isfinite(va) ? format("%.5e", va).c_str() : "     -     ", lr, eta);
    if (tty && ctx.root()) {
      std::fprintf(stderr, "\r%s", line.c_str());
      if (step == last)
        std::fprintf(stderr, "\n");
      std::fflush(stderr);
    } else if (step % every == 0 || step == last) {
      ctx.log(line);
    }
    if (step % c.checkpoint_every == 0 || step == last)
      writeCheckpoint(step);
  }
  if (last < c.steps) {
    ctx.log("stopped after step " + std::to_string(last) + "; continue with --resume");
    return 0;
  }
  // The record: parameters, domain, provenance.
  ForceCorrectionRecord r;
  r.correction = c.correction;
  r.setDomain(c.run);
  r.omega_m = {c.run.cosmology.Omega_m - 0.01, c.run.cosmology.Omega_m + 0.01};
  r.sigma8 = {c.run.cosmology.sigma8 - 0.01, c.run.cosmology.sigma8 + 0.01};
  if (pgd) {
    r.base = c.base;
    r.pgd_a = c.a;
    for (const auto& t : pgdTheta(x))
      r.pgd_theta.push_back(t);
  } else {
    r.architecture = c.architecture;
    r.theta = x;
  }
  const double va_end = evaluate(held, held_states, x, nullptr);
  const double va_position = last_position, va_power = last_power;
  r.training = {
      {"command", "caustic train " + c.source},
      {"configuration", c.text},
      {"run_params", c.run_params},
      {"base", c.base_path.empty() ? nlohmann::json() : nlohmann::json(c.base_path)},
      {"train_seeds", c.train_seeds},
      {"validation_seeds", c.validation_seeds},
      {"snapshots_a", c.a},
      {"steps", c.steps},
      {"power_weight", c.power_weight},
      {"loss_start", {{"train", curve.front().train}, {"held_out", curve.front().validation}}},
      {"loss_end",
       {{"train", curve.back().train},
        {"held_out", va_end},
        {"held_out_position", va_position},
        {"held_out_power", va_power}}},
      {"seconds", seconds()},
      {"ranks", ctx.comm().size()}};
  if (ctx.root()) {
    r.write(dir + "/model.json");
    writeLossCurve(dir, curve,
                   "caustic train (force correction " + c.correction +
                       "): loss = position MSE [(Mpc/h)^2] + power_weight * power term",
                   "caustic train: force correction " + c.correction, "loss", "held-out");
  }
  ctx.log("wrote " + dir + "/model.json, " + dir + "/loss.csv, " + dir + "/loss.svg");
  ctx.log(format("held-out loss %.5e at the start, %.5e after %d steps (position %.5e (Mpc/h)^2, "
                 "power %.5e; %.0f s)",
                 curve.front().validation, va_end, c.steps, va_position, va_power, seconds()));
  return 0;
}

} // namespace caustic
