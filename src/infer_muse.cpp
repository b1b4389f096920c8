#include "infer_muse.hpp"

#include "common.hpp"
#include "signals.hpp"

#include "infer/mock.hpp"
#include "io/atomic_file.hpp"
#include "io/format.hpp"
#include "io/params.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

namespace caustic {

namespace {

namespace fs = std::filesystem;

// A score's identity: the parameters, those of the data, and which data (-1: the observed).
// A resumed run recomputes the same parameters bit for bit, so the text names the same score.
std::string scoreKey(const std::vector<double>& theta, const std::vector<double>& theta_sim,
                     int sim) {
  std::ostringstream k;
  k.precision(17);
  k << sim << ":";
  for (double v : theta)
    k << " " << v;
  k << " |";
  for (double v : theta_sim)
    k << " " << v;
  return k.str();
}

} // namespace

MuseRun runMuse(RunContext& ctx, const InferParams& ip, FieldPosterior& post, Field<double>& data,
                double variance, const MapSettings& map, const std::vector<double>& theta0,
                const std::string& checkpoint_dir, bool resume) {
  const fs::path journal_path = fs::path(checkpoint_dir) / "muse.json";
  std::map<std::string, std::vector<double>> journal;
  // The scores whose MAP ended at the last stage's iteration cap instead of the gradient
  // tolerance: such a score carries the MAP's error, which the differences of H magnify (a
  // 300-iteration cap moved one simulation's Omega_m score by 36, more than a 2% step in Omega_m
  // changed its converged score).
  std::set<std::string> capped;
  // -log P at each score's MAP: the data's against the simulations' at the estimate tells a MAP
  // caught in a local minimum (mock 101 with two smoothing stages: 15969 against 14575-14919).
  std::map<std::string, double> minus_log_p;
  if (resume) {
    const std::string text = readOnRoot(ctx, journal_path.string(), "MUSE checkpoint");
    if (!text.empty()) {
      nlohmann::json j;
      try {
        j = nlohmann::json::parse(text);
        journal = j.at("scores").get<std::map<std::string, std::vector<double>>>();
        capped = j.value("capped", std::set<std::string>());
        minus_log_p = j.value("minus_log_p", std::map<std::string, double>());
      } catch (const std::exception& e) {
        throw ParamError("--resume: " + journal_path.string() + " is unreadable: " + e.what());
      }
      if (j.value("parameter_hash", std::string()) != ip.hash())
        throw ParamError("--resume: the MUSE scores in " + journal_path.string() +
                         " belong to other parameters; resume with the same file and --set "
                         "options");
      ctx.log("infer: MUSE resumes with " + std::to_string(journal.size()) + " scores computed");
    }
  }
  MPI_Comm comm = ctx.comm().get();
  const DiffConfig& cfg = post.config();
  const auto& free = post.freeParameters();
  const auto& mp = ip.muse;
  Field<double> observed(cfg.mesh, "caustic::infer::muse::observed");
  Kokkos::deep_copy(observed.real(), data.real());
  Field<double> omega(cfg.lattice, "caustic::infer::muse::omega"),
      gomega(cfg.lattice, "caustic::infer::muse::gradient");
  const long total = long(mp.iterations + (mp.final_covariance ? 1 : 0)) * (mp.simulations + 1) +
                     long(free.size()) * mp.simulations * (mp.final_covariance ? 2 : 1);
  long reached = 0, computed = 0;
  double seconds = 0.0;
  MuseRun run;

  MuseProblem problem;
  problem.in_domain = [&](const std::vector<double>& th) { return post.inDomain(th); };
  problem.score = [&](const std::vector<double>& th, const std::vector<double>& th_sim, int sim,
                      std::vector<double>& score) {
    ++reached;
    const std::string key = scoreKey(th, th_sim, sim);
    if (const auto f = journal.find(key); f != journal.end()) {
      score = f->second;
      return true;
    }
    const double t0 = ctx.elapsed();
    if (sim < 0)
      Kokkos::deep_copy(data.real(), observed.real());
    else
      makeMockData(cfg, post.paramsAt(th_sim), post.biasAt(th_sim), variance,
                   mp.seed + 2 * std::uint64_t(sim), mp.seed + 2 * std::uint64_t(sim) + 1, data);
    Kokkos::deep_copy(omega.real(), 0.0);
    std::vector<double> held = th;
    MapOptimizer opt(post, map);
    int iterations = 0;
    const bool finished = opt.run(omega, held, [&](const MapIteration& it) {
      iterations = it.total;
      run.stop_signal = agreedStopSignal(comm);
      return run.stop_signal == 0;
    });
    if (!finished)
      return false;
    // The score: -dL/dtheta at the MAP, the likelihood of the last stage (the noise's prior
    // does not depend on theta; the parameters have no prior of their own with MUSE).
    post.setSmoothing(map.stages.back().smoothing);
    const FieldPosterior::Terms terms = post.value(omega, th);
    std::vector<double> g;
    post.gradient(gomega, g);
    score.assign(g.size(), 0.0);
    for (std::size_t i = 0; i < g.size(); ++i)
      score[i] = -g[i];
    journal[key] = score;
    const bool at_cap = opt.lastStop() == LbfgsStop::iteration_limit;
    if (at_cap)
      capped.insert(key);
    minus_log_p[key] = terms.total();
    if (ctx.root()) {
      makeDirectories(checkpoint_dir);
      nlohmann::json j;
      j["parameter_hash"] = ip.hash();
      j["scores"] = journal;
      j["capped"] = capped;
      j["minus_log_p"] = minus_log_p;
      writeTextFile(journal_path.string(), j.dump() + "\n");
    }
    MPI_Barrier(comm);
    ++computed;
    seconds += ctx.elapsed() - t0;
    std::string which =
        sim < 0 ? std::string("the data")
                : "simulation " + std::to_string(sim + 1) + " of " + std::to_string(mp.simulations);
    for (std::size_t i = 0; i < th.size(); ++i)
      if (th_sim[i] != th[i])
        which += " made at " + free[i].name + " " + formatNumber(th_sim[i], 6);
    std::string sc;
    for (std::size_t i = 0; i < score.size(); ++i)
      sc += (i ? ", " : "") + free[i].name + " " + formatNumber(score[i], 5);
    ctx.log("infer: MUSE score " + std::to_string(reached) + " of " + std::to_string(total) + " (" +
            which + "): MAP in " + std::to_string(iterations) + " iterations" +
            (at_cap ? " (the cap, not converged)" : "") + ", -log P " +
            formatNumber(terms.total(), 8) + ", score (" + sc + "); ETA " +
            durationText(seconds / double(computed) * double(total - reached)));
    return true;
  };

  MuseSettings ms;
  ms.simulations = mp.simulations;
  ms.iterations = mp.iterations;
  ms.tolerance = mp.tolerance;
  ms.step = mp.step;
  ms.max_step = mp.max_step;
  ms.final_covariance = mp.final_covariance;
  ms.broyden = mp.broyden;
  const double t_start = ctx.elapsed();
  run.result = museEstimate(problem, theta0, ms);
  Kokkos::deep_copy(data.real(), observed.real());
  if (!run.result.complete)
    return run;
  const MuseResult& r = run.result;
  nlohmann::json& j = run.summary;
  j["order"] = ip.fit;
  for (std::size_t i = 0; i < free.size(); ++i) {
    j["theta"][free[i].name] = r.theta[i];
    j["sigma"][free[i].name] = std::sqrt(r.covariance[i][i]);
    for (std::size_t k = i + 1; k < free.size(); ++k)
      j["correlation"][free[i].name + "," + free[k].name] =
          r.covariance[i][k] / std::sqrt(r.covariance[i][i] * r.covariance[k][k]);
  }
  j["covariance"] = r.covariance;
  // Intervals for a covariance measured with N simulations: Student's t (N - 1 degrees of
  // freedom) per parameter, Hotelling's T^2 jointly (museIntervalScale).
  std::string interval_text;
  for (const auto& [key, level] : kIntervalLevels) {
    const MuseIntervalScale sc = museIntervalScale(mp.simulations, free.size(), level);
    nlohmann::json& iv = j["intervals"][key];
    iv["level"] = level;
    iv["sigmas"] = sc.marginal;
    iv["joint_bound"] = sc.joint;
    interval_text += std::string(interval_text.empty() ? "" : "; ") + key + "% (+-" +
                     formatNumber(sc.marginal, 3) + " sigma):";
    for (std::size_t i = 0; i < free.size(); ++i) {
      const double half = sc.marginal * std::sqrt(r.covariance[i][i]);
      iv["bounds"][free[i].name] = {r.theta[i] - half, r.theta[i] + half};
      interval_text += " " + free[i].name + " [" + formatNumber(r.theta[i] - half, 4) + ", " +
                       formatNumber(r.theta[i] + half, 4) + "]";
    }
  }
  j["H"] = r.H;
  j["J"] = r.J;
  j["covariance_at_estimate"] = r.covariance_at_estimate;
  j["newton_H"] = r.newton_H;
  j["history"] = r.history;
  auto scoresJson = [](const MuseScores& sc) {
    return nlohmann::json{{"observed_score", sc.observed},
                          {"mean_score", sc.mean},
                          {"simulation_scores", sc.simulations}};
  };
  j["steps"] = nlohmann::json::array();
  for (const MuseScores& sc : r.steps) {
    j["steps"].push_back(scoresJson(sc));
    j["steps"].back()["newton_H"] = sc.newton_H;
  }
  if (r.covariance_at_estimate) {
    j["at_estimate"] = scoresJson(r.at_estimate);
    j["residual_sigmas"] = r.residual_sigmas;
  }
  j["simulations"] = mp.simulations;
  j["iterations"] = mp.iterations;
  j["tolerance"] = mp.tolerance;
  j["newton_steps"] = r.newton_steps;
  if (mp.tolerance > 0)
    j["converged"] = r.converged;
  j["step"] = mp.step;
  j["max_step"] = mp.max_step;
  j["final_covariance"] = mp.final_covariance;
  j["broyden"] = mp.broyden;
  j["last_step_sigmas"] = r.last_step_sigmas;
  j["seed"] = mp.seed;
  j["scores"] = r.scores;
  j["scores_computed_now"] = computed;
  j["maps_at_iteration_cap"] = capped.size();
  if (r.covariance_at_estimate) {
    // The data's MAP against the simulations' made at the estimate: a data MAP far above them
    // sits in another basin, and its score misleads the estimate.
    std::vector<double> lp; // the data's, then the simulations'
    for (int sim = -1; sim < mp.simulations; ++sim)
      if (const auto f = minus_log_p.find(scoreKey(r.theta, r.theta, sim)); f != minus_log_p.end())
        lp.push_back(f->second);
    if (lp.size() == std::size_t(mp.simulations) + 1) {
      const double n = mp.simulations, data = lp[0];
      double mean = 0.0, var = 0.0;
      for (std::size_t i = 1; i < lp.size(); ++i)
        mean += lp[i] / n;
      for (std::size_t i = 1; i < lp.size(); ++i)
        var += (lp[i] - mean) * (lp[i] - mean) / (n - 1);
      const double sd = std::sqrt(var), z = sd > 0.0 ? (data - mean) / sd : 0.0;
      j["minus_log_p_at_estimate"] = {
          {"data", data}, {"simulations_mean", mean}, {"simulations_sd", sd}, {"z", z}};
      if (z > 3.0)
        ctx.log("infer: MUSE: the data's MAP has -log P " + formatNumber(data, 8) + ", " +
                formatNumber(z, 3) + " standard deviations above the simulations' at the " +
                "estimate (" + formatNumber(mean, 8) + " +- " + formatNumber(sd, 3) +
                "): a local minimum? Anneal through more inference.smoothing stages");
    }
  }
  j["seconds"] = ctx.elapsed() - t_start;
  std::string txt;
  for (std::size_t i = 0; i < free.size(); ++i)
    txt += " " + free[i].name + " " + formatNumber(r.theta[i], 5) + " +- " +
           formatNumber(std::sqrt(r.covariance[i][i]), 3);
  if (!capped.empty())
    ctx.log("infer: MUSE: " + std::to_string(capped.size()) + " of " + std::to_string(r.scores) +
            " scores are from MAPs stopped at the cap of inference.iterations' last entry (" +
            std::to_string(map.stages.back().max_iterations) +
            "), not at inference.gradient_tolerance: their MAP's error enters H and the "
            "estimate; raise the cap");
  // Converged when the last step, and the step a further iteration would take from the
  // estimate, are small against the errors.
  const double worst = std::max(r.last_step_sigmas, r.residual_sigmas);
  ctx.log("infer: MUSE:" + txt + " (" + std::to_string(r.scores) + " scores; the last step " +
          formatNumber(r.last_step_sigmas, 3) + " sigma" +
          (r.covariance_at_estimate ? ", the next " + formatNumber(r.residual_sigmas, 3) +
                                          " sigma; H and J at the estimate"
                                    : std::string("; H at the start")) +
          (worst > 0.3 ? ": not converged, more inference.muse.iterations" : "") + ")");
  ctx.log("infer: MUSE: intervals for a covariance from " + std::to_string(mp.simulations) +
          " simulations (Student t, " + std::to_string(mp.simulations - 1) +
          " degrees of freedom): " + interval_text);
  if (mp.tolerance > 0)
    ctx.log("infer: MUSE: " + std::to_string(r.newton_steps) + " Newton steps; " +
            (r.converged ? "the last below inference.muse.tolerance = "
                         : "none below inference.muse.tolerance = ") +
            formatNumber(mp.tolerance, 3) + " sigma" +
            (r.converged ? ""
                         : " within inference.muse.iterations = " + std::to_string(mp.iterations)));
  return run;
}

} // namespace caustic
