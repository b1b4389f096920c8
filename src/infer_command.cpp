// `caustic infer`: the initial white noise (and, if asked, Omega_m, sigma8, bias) behind an
// observed late-time field, as the MAP of the field-level posterior (pm/grad/field_posterior,
// infer/map_optimizer), the parameters either jointly or by MUSE (infer_muse.hpp), with the
// outputs a user checks a reconstruction with.
#include "commands.hpp"
#include "common.hpp"
#include "infer_muse.hpp"
#include "signals.hpp"

#include "infer/hmc.hpp"
#include "infer/laplace.hpp"
#include "infer/map_optimizer.hpp"
#include "infer/mock.hpp"
#include "infer/muse.hpp"
#include "infer/posterior_objective.hpp"
#include "io/atomic_file.hpp"
#include "io/fields.hpp"
#include "io/format.hpp"
#include "io/svg_plot.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/grad/lpt_model.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

namespace caustic {

namespace {

namespace fs = std::filesystem;

// This rank's planes of a field file's dataset into `f` (each rank reads its own slab), after
// the header is checked against the model.
void readSlab(const std::string& path, const std::string& dataset, const InferParams& ip,
              Field<double>& f, const std::string& setting) {
  FieldData d;
  try {
    d = readFieldHeader(path, "Fields/" + dataset);
  } catch (const std::exception& e) {
    throw ParamError(setting + ": " + e.what());
  }
  const auto& sim = ip.run.simulation;
  if (d.n != sim.mesh)
    throw ParamError(setting + ": " + path + " /Fields/" + dataset + " has " + std::to_string(d.n) +
                     "^3 cells; the model's mesh (simulation.mesh) is " +
                     std::to_string(sim.mesh) + "^3");
  if (d.box > 0 && std::abs(d.box - sim.box) > 1e-6 * sim.box)
    throw ParamError(setting + ": " + path + " has BoxSize " + formatNumber(d.box) +
                     " Mpc/h; simulation.box is " + formatNumber(sim.box));
  if (d.a > 0 && std::abs(d.a - sim.a_end) > 1e-6)
    throw ParamError(setting + ": " + path + " is at a = " + formatNumber(d.a) +
                     "; the model ends at simulation.a_end = " + formatNumber(sim.a_end));
  try {
    readFieldSlab(path, "Fields/" + dataset, f);
  } catch (const std::exception& e) {
    throw ParamError(setting + ": " + e.what());
  }
}

// Cross and auto power of a and b (real space, same decomposition): P_ab = (P_{a+b} - P_a -
// P_b) / 2 from three binnings. Collective.
struct CrossPower {
  PowerSpectrum a, b;
  std::vector<double> ab;
};
CrossPower crossPower(const Field<double>& a, const Field<double>& b) {
  auto dec = a.decompPtr();
  FFT<double> fft(dec);
  Field<double> fa(dec, "caustic::infer::fa"), fb(dec, "caustic::infer::fb"),
      fs_(dec, "caustic::infer::fsum");
  Kokkos::deep_copy(fa.real(), a.real());
  Kokkos::deep_copy(fb.real(), b.real());
  fft.forward(fa);
  fft.forward(fb);
  auto ra = fa.real(), rb = fb.real(), rs = fs_.real();
  Kokkos::parallel_for(
      "caustic::infer::sum", Kokkos::RangePolicy<>(0, rs.extent(0)),
      KOKKOS_LAMBDA(std::size_t i) { rs(i) = ra(i) + rb(i); });
  Kokkos::fence();
  CrossPower c;
  c.a = binPower(fa);
  c.b = binPower(fb);
  const PowerSpectrum s = binPower(fs_);
  c.ab.resize(s.power.size());
  for (std::size_t i = 0; i < s.power.size(); ++i)
    c.ab[i] = 0.5 * (s.power[i] - c.a.power[i] - c.b.power[i]);
  return c;
}

nlohmann::json termsJson(const FieldPosterior::Terms& t) {
  return {{"minus_log_posterior", t.total()},
          {"likelihood", t.likelihood},
          {"noise_prior", t.noise_prior},
          {"parameter_prior", t.parameter_prior}};
}

// ---- checkpoints ------------------------------------------------------------------------
// <output.directory>/.infer_checkpoint/ holds one per phase: the MAP's (state.json and
// rank<r>_g<generation>.bin: the raw doubles of each rank's slab of the iterate and of the
// L-BFGS pairs) and HMC's (hmc.json and hmc_rank<r>_g<generation>.bin: the chain's state). A
// generation's rank files are complete before its JSON (rank 0: scalars, parameters, tables)
// names it; the previous generation's are removed after. Resuming needs the same parameters and
// the same number of ranks.
const char* kCheckpointDir = ".infer_checkpoint";

std::string rankFile(const fs::path& dir, const std::string& prefix, int rank, long gen) {
  return (dir / (prefix + "rank" + std::to_string(rank) + "_g" + std::to_string(gen) + ".bin"))
      .string();
}

// Writes generation + 1 of a checkpoint: each rank's slab of `fields` to its <prefix>rank file
// (atomically: a temporary file committed when complete; every rank throws when one fails),
// then on rank 0 `state`, with the generation, rank count and parameter hash added, to `json`.
// Collective.
void writeCheckpoint(RunContext& ctx, const std::string& out, const std::string& prefix,
                     const std::string& json, const std::vector<const Field<double>*>& fields,
                     nlohmann::json state, const std::string& hash, long& generation) {
  PhaseTimer t(ctx, "checkpoint");
  const fs::path dir = fs::path(out) / kCheckpointDir;
  // Rank 0's steps share their failure, so that no rank waits for one that threw.
  auto onRoot = [&](const std::function<void()>& step) {
    std::string err;
    if (ctx.root()) {
      try {
        step();
      } catch (const std::exception& e) {
        err = e.what();
      }
    }
    err = broadcastString(ctx.comm().get(), err, 0, "infer checkpoint");
    if (!err.empty())
      throw std::runtime_error(err);
  };
  onRoot([&] { makeDirectories(dir.string()); });
  const long gen = generation + 1;
  const int rank = ctx.comm().rank();
  {
    const std::string path = rankFile(dir, prefix, rank, gen), tmp = path + ".tmp";
    std::ofstream f(tmp, std::ios::binary);
    for (const Field<double>* v : fields) {
      auto host = Kokkos::create_mirror_view(v->real());
      Kokkos::deep_copy(host, v->real());
      f.write(reinterpret_cast<const char*>(host.data()),
              static_cast<std::streamsize>(host.extent(0) * sizeof(double)));
    }
    f.close();
    std::string err;
    if (!f)
      err = "cannot write the inference checkpoint " + tmp;
    else
      commitFile(tmp, path);
    int bad = err.empty() ? 0 : 1;
    MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, ctx.comm().get());
    if (bad)
      throw std::runtime_error(err.empty() ? "another rank could not write its inference checkpoint"
                                           : err);
  }
  MPI_Barrier(ctx.comm().get());
  onRoot([&] {
    state["generation"] = gen;
    state["ranks"] = ctx.comm().size();
    state["parameter_hash"] = hash;
    writeTextFile((dir / json).string(), state.dump() + "\n");
  });
  std::error_code ec;
  fs::remove(rankFile(dir, prefix, rank, generation), ec);
  generation = gen;
}

// The state of checkpoint `json` (null if there is none), its generation in `generation`.
// ParamError if it is unreadable or belongs to other parameters or another rank count.
// Collective.
nlohmann::json readCheckpointState(RunContext& ctx, const std::string& out, const std::string& json,
                                   const std::string& hash, long& generation) {
  const fs::path dir = fs::path(out) / kCheckpointDir;
  const std::string text = readOnRoot(ctx, (dir / json).string(), "infer checkpoint");
  if (text.empty())
    return nullptr;
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
    generation = j.at("generation").get<long>();
  } catch (const std::exception& e) {
    throw ParamError("--resume: " + (dir / json).string() + " is unreadable: " + e.what());
  }
  if (j.value("parameter_hash", std::string()) != hash)
    throw ParamError("--resume: the checkpoint in " + dir.string() +
                     " belongs to other parameters (hash " + j.value("parameter_hash", std::string()) +
                     ", these " + hash + "); resume with the same file and --set options");
  if (j.value("ranks", -1) != ctx.comm().size())
    throw ParamError("--resume: the checkpoint in " + dir.string() + " was written by " +
                     std::to_string(j.value("ranks", -1)) + " ranks; resume on the same number (" +
                     std::to_string(ctx.comm().size()) + " now)");
  return j;
}

// Reads this rank's slab of `fields` from checkpoint `prefix`'s generation; ParamError on every
// rank when one rank's file is missing or short. Collective.
void readCheckpointFields(RunContext& ctx, const std::string& out, const std::string& prefix,
                          long generation, const std::vector<Field<double>*>& fields) {
  const fs::path dir = fs::path(out) / kCheckpointDir;
  const std::string path = rankFile(dir, prefix, ctx.comm().rank(), generation);
  std::ifstream f(path, std::ios::binary);
  for (Field<double>* v : fields) {
    auto host = Kokkos::create_mirror_view(v->real());
    f.read(reinterpret_cast<char*>(host.data()),
           static_cast<std::streamsize>(host.extent(0) * sizeof(double)));
    Kokkos::deep_copy(v->real(), host);
  }
  int bad = f ? 0 : 1;
  MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_INT, MPI_MAX, ctx.comm().get());
  if (bad)
    throw ParamError("--resume: the checkpoint in " + dir.string() + " is incomplete (" + path +
                     " or another rank's file is missing or short)");
}

void writeMapCheckpoint(RunContext& ctx, const std::string& out, const MapCheckpoint& c,
                        const std::string& csv, const std::string& hash, long& generation) {
  std::vector<const Field<double>*> fields = {&c.x->noise()};
  nlohmann::json sp = nlohmann::json::array(), yp = nlohmann::json::array();
  for (std::size_t i = 0; i < c.memory.s.size(); ++i) {
    fields.push_back(&c.memory.s[i].noise());
    fields.push_back(&c.memory.y[i].noise());
    sp.push_back(c.memory.s[i].params());
    yp.push_back(c.memory.y[i].params());
  }
  nlohmann::json j;
  j["stage"] = c.stage;
  j["total"] = c.total;
  j["evaluations"] = c.evaluations;
  j["gradients"] = c.gradients;
  j["theta_stage"] = c.theta_stage;
  j["scales"] = c.scales;
  j["noise_curvature"] = c.noise_curvature;
  j["preconditioner_curvature"] = c.preconditioner_curvature;
  j["x_params"] = c.x->params();
  j["memory_iteration"] = c.memory.iteration;
  j["initial_gradient_norm"] = c.memory.initial_gradient_norm;
  j["sy"] = c.memory.sy;
  j["s_params"] = sp;
  j["y_params"] = yp;
  j["loss_csv"] = csv;
  writeCheckpoint(ctx, out, "", "state.json", fields, std::move(j), hash, generation);
}

// Reads the MAP's checkpoint into c (on the lattice of `like`); false if there is none.
bool readMapCheckpoint(RunContext& ctx, const std::string& out, const std::string& hash,
                       const FieldVector& like, MapCheckpoint& c, std::string& csv,
                       long& generation) {
  const nlohmann::json j = readCheckpointState(ctx, out, "state.json", hash, generation);
  if (j.is_null())
    return false;
  c.stage = j["stage"];
  c.total = j["total"];
  c.evaluations = j["evaluations"];
  c.gradients = j["gradients"];
  c.theta_stage = j["theta_stage"].get<std::vector<double>>();
  c.scales = j["scales"].get<std::vector<double>>();
  c.noise_curvature = j["noise_curvature"];
  c.preconditioner_curvature = j["preconditioner_curvature"].get<std::vector<double>>();
  c.memory.iteration = j["memory_iteration"];
  c.memory.initial_gradient_norm = j["initial_gradient_norm"];
  c.memory.sy = j["sy"].get<std::vector<double>>();
  csv = j["loss_csv"].get<std::string>();
  const auto xp = j["x_params"].get<std::vector<double>>();
  const auto sp = j["s_params"].get<std::vector<std::vector<double>>>();
  const auto yp = j["y_params"].get<std::vector<std::vector<double>>>();
  const std::size_t pairs = c.memory.sy.size();
  auto make = [&](const std::vector<double>& params) {
    FieldVector v(like);
    v.params() = params;
    return v;
  };
  c.x = std::make_unique<FieldVector>(make(xp));
  for (std::size_t i = 0; i < pairs; ++i) {
    c.memory.s.push_back(make(sp.at(i)));
    c.memory.y.push_back(make(yp.at(i)));
  }
  std::vector<Field<double>*> fields = {&c.x->noise()};
  for (std::size_t i = 0; i < pairs; ++i) {
    fields.push_back(&c.memory.s[i].noise());
    fields.push_back(&c.memory.y[i].noise());
  }
  readCheckpointFields(ctx, out, "", generation, fields);
  return true;
}

// HMC's checkpoint: where the chain stands, the kept samples' theta and the table so far; the
// state's z in the rank files. The MAP before it resumes from its own checkpoint (or runs
// again: it is deterministic) to the same point.
struct HmcCheckpoint {
  HmcStart start;
  std::vector<std::vector<double>> kept; // theta of the kept trajectories
  std::string csv;
  long gradients = 0;   // the chain's so far, over every run of it
  double seconds = 0.0; // likewise
};

void writeHmcCheckpoint(RunContext& ctx, const std::string& out, const FieldVector& x,
                        const HmcCheckpoint& c, const std::string& hash, long& generation) {
  nlohmann::json j;
  j["trajectory"] = c.start.trajectory;
  j["accepted"] = c.start.accepted;
  j["params"] = x.params();
  j["kept"] = c.kept;
  j["csv"] = c.csv;
  j["gradients"] = c.gradients;
  j["seconds"] = c.seconds;
  writeCheckpoint(ctx, out, "hmc_", "hmc.json", {&x.noise()}, std::move(j), hash, generation);
}

// The chain's state from hmc.json into c and params (ParamError on every rank if it is broken);
// false if there is none. Collective.
bool readHmcState(RunContext& ctx, const std::string& out, const std::string& hash,
                  HmcCheckpoint& c, std::vector<double>& params, long& generation) {
  const nlohmann::json j = readCheckpointState(ctx, out, "hmc.json", hash, generation);
  if (j.is_null())
    return false;
  try {
    c.start = {j.at("trajectory").get<int>(), j.at("accepted").get<int>()};
    params = j.at("params").get<std::vector<double>>();
    c.kept = j.at("kept").get<std::vector<std::vector<double>>>();
    c.csv = j.at("csv").get<std::string>();
    // (absent from checkpoints of earlier versions: counted from this run on)
    c.gradients = j.value("gradients", 0L);
    c.seconds = j.value("seconds", 0.0);
  } catch (const nlohmann::json::exception& e) {
    throw ParamError(std::string("--resume: the HMC checkpoint is unreadable: ") + e.what());
  }
  return true;
}

// Reads the chain's checkpoint into x and c; false if there is none.
bool readHmcCheckpoint(RunContext& ctx, const std::string& out, const std::string& hash,
                       FieldVector& x, HmcCheckpoint& c, long& generation) {
  std::vector<double> params;
  if (!readHmcState(ctx, out, hash, c, params, generation))
    return false;
  if (params.size() != x.params().size())
    throw ParamError("--resume: the HMC checkpoint holds " + std::to_string(params.size()) +
                     " parameters, not " + std::to_string(x.params().size()));
  x.params() = params;
  readCheckpointFields(ctx, out, "hmc_", generation, {&x.noise()});
  return true;
}

} // namespace

int runInferCommand(RunContext& ctx, const InferParams& ip, const InferOptions& opt) {
  const Params& params = ip.run;
  const auto& sim = params.simulation;
  const std::string dir = params.output.directory;
  checkOutputPaths(ctx, params);
  OutputClaim claim = claimOutputDirectory(ctx, dir, "caustic infer");
  {
    std::string err;
    if (ctx.root()) {
      const bool summary = fs::exists(fs::path(dir) / "inference_summary.json");
      const bool checkpoint = fs::exists(fs::path(dir) / kCheckpointDir / "state.json") ||
                              fs::exists(fs::path(dir) / kCheckpointDir / "muse.json") ||
                              fs::exists(fs::path(dir) / kCheckpointDir / "hmc.json");
      if (opt.resume && !checkpoint)
        err = "--resume: no inference checkpoint in output.directory = \"" + dir +
              "\"" + (summary ? " (its inference is complete): nothing to resume" : "");
      else if (!opt.resume && !opt.overwrite && (summary || checkpoint))
        err = "output.directory = \"" + dir + "\" holds an earlier inference (" +
              (summary ? "inference_summary.json" : std::string("an interrupted one: ") +
                                                       kCheckpointDir) +
              "); use --overwrite to replace it" + (checkpoint ? ", --resume to continue it" : "") +
              ", or choose another directory";
    }
    shareError(ctx, err, "infer");
    if (opt.overwrite && ctx.root()) {
      std::error_code ec;
      fs::remove_all(fs::path(dir) / kCheckpointDir, ec);
    }
    MPI_Barrier(ctx.comm().get());
    // A broken HMC checkpoint fails now, not after the MAP that comes before the chain.
    if (opt.resume && ip.hmc.enabled) {
      HmcCheckpoint c;
      std::vector<double> theta;
      long generation = 0;
      readHmcState(ctx, dir, ip.hash(), c, theta, generation);
    }
  }
  if (!ip.data.empty()) {
    std::string err;
    if (ctx.root() && !fs::is_regular_file(ip.data))
      err = "inference.data = \"" + ip.data + "\": no such file";
    shareError(ctx, err, "infer");
  }
  MPI_Comm comm = ctx.comm().get();
  const DiffConfig cfg = diffConfig(params, comm);
  const double variance = ip.cellVariance();
  ctx.log("infer: " + std::to_string(sim.particles) + "^3 noise modes, mesh " +
          std::to_string(sim.mesh) + "^3, " + std::to_string(sim.steps) +
          " steps to a = " + formatNumber(sim.a_end) + "; noise variance per cell " +
          formatNumber(variance, 4));

  DiffParams base;
  base.cosmology = params.cosmology;
  auto data = std::make_shared<Field<double>>(cfg.mesh, "caustic::infer::data");
  auto var = std::make_shared<Field<double>>(cfg.mesh, "caustic::infer::variance");
  Kokkos::deep_copy(var->real(), variance);
  std::shared_ptr<Field<double>> mask;
  std::unique_ptr<Field<double>> omega_true, truth_model;
  DiffParams truth = base;
  if (ip.mock) {
    PhaseTimer t(ctx, "mock");
    truth.cosmology.Omega_m = ip.truth.Omega_m;
    truth.cosmology.sigma8 = ip.truth.sigma8;
    omega_true = std::make_unique<Field<double>>(cfg.lattice, "caustic::infer::omegaTrue");
    truth_model = std::make_unique<Field<double>>(cfg.mesh, "caustic::infer::truthModel");
    makeMockData(cfg, truth, ip.truth.bias, variance, ip.truth.seed, ip.truth.noise_seed, *data,
                 omega_true.get(), truth_model.get());
    ctx.log("infer: mock data from seed " + std::to_string(ip.truth.seed) + ", Omega_m " +
            formatNumber(ip.truth.Omega_m) + ", sigma8 " + formatNumber(ip.truth.sigma8) +
            ", bias " + formatNumber(ip.truth.bias) + ", noise seed " +
            std::to_string(ip.truth.noise_seed));
  } else {
    readSlab(ip.data, ip.dataset, ip, *data, "inference.data");
    if (!ip.mask.empty()) {
      mask = std::make_shared<Field<double>>(cfg.mesh, "caustic::infer::mask");
      readSlab(ip.data, ip.mask, ip, *mask, "inference.mask");
    }
  }

  std::vector<PosteriorParameter> free;
  std::vector<double> theta;
  for (const auto& name : ip.fit) {
    free.push_back(posteriorParameter(name));
    theta.push_back(name == "Omega_m"  ? params.cosmology.Omega_m
                    : name == "sigma8" ? params.cosmology.sigma8
                                       : ip.bias);
  }
  FieldPosterior post(cfg, base, {data, var, mask}, free, ip.bias);
  // " Omega_m 0.3 sigma8 0.8" for the log.
  auto parametersText = [&](const std::vector<double>& theta) {
    std::string txt;
    for (std::size_t i = 0; i < theta.size(); ++i)
      txt += " " + free[i].name + " " + formatNumber(theta[i], 5);
    return txt;
  };
  post.setCentredPrior(ip.centred_prior);
  MapSettings ms;
  for (std::size_t i = 0; i < ip.smoothing.size(); ++i)
    ms.stages.push_back({ip.smoothing[i], ip.iterations[i], int(i) >= ip.fit_from_stage});
  ms.memory = ip.memory;
  ms.gradient_tolerance = ip.gradient_tolerance;
  ms.preconditioner_probes = ip.preconditioner_probes;
  if (ip.muse.enabled) // MUSE estimates the parameters; every MAP holds them
    for (auto& st : ms.stages)
      st.fit_parameters = false;
  MapOptimizer opt_map(post, ms);

  // MUSE: the parameters, before the MAP of the data at them (the outputs below).
  nlohmann::json muse_json;
  std::vector<std::vector<double>> muse_cov;
  if (ip.muse.enabled) {
    PhaseTimer t(ctx, "muse");
    const MuseRun mr = runMuse(ctx, ip, post, *data, variance, ms, theta,
                               (fs::path(dir) / kCheckpointDir).string(), opt.resume);
    if (mr.stop_signal != 0) {
      ctx.log("infer: stopped by signal " + std::to_string(mr.stop_signal) +
              " during MUSE; the scores computed are kept: continue with --resume");
      MPI_Barrier(ctx.comm().get());
      return 128 + mr.stop_signal;
    }
    theta = mr.result.theta;
    muse_json = mr.summary;
    muse_cov = mr.result.covariance;
  }

  // Progress: one line per iteration, the loss table, a stop on SIGINT/SIGTERM/SIGUSR1.
  std::ostringstream csv;
  csv << "# stage,iteration,total,smoothing_mpc_h,minus_log_posterior,likelihood,noise_prior,"
         "parameter_prior,gradient_norm";
  for (const auto& f : free)
    csv << "," << f.name;
  csv << ",evaluations,gradients,seconds\n";
  std::vector<PlotSeries> curves(ms.stages.size());
  int max_total = 0;
  for (const auto& st : ms.stages)
    max_total += st.max_iterations;
  int stop_signal = 0;
  MapIteration last;
  Field<double> omega(cfg.lattice, "caustic::infer::omega");
  MapCheckpoint resume_from;
  long generation = 0;
  bool resuming = false;
  if (opt.resume) {
    std::string earlier_csv;
    FieldVector like(cfg.lattice, 0);
    resuming = readMapCheckpoint(ctx, dir, ip.hash(), like, resume_from, earlier_csv, generation);
    csv.str(earlier_csv);
    csv.seekp(0, std::ios::end);
    // The plot's curves from the table so far.
    std::istringstream rows(earlier_csv);
    for (std::string row; std::getline(rows, row);) {
      if (row.empty() || row[0] == '#')
        continue;
      std::vector<double> v;
      std::stringstream rs(row);
      for (std::string cell; std::getline(rs, cell, ',');)
        v.push_back(std::atof(cell.c_str()));
      if (v.size() > 4 && v[0] >= 0 && v[0] < curves.size())
        curves[std::size_t(v[0])].points.emplace_back(v[2], v[4]);
    }
    ctx.log("infer: resuming from the checkpoint at stage " + std::to_string(resume_from.stage) +
            ", iteration " + std::to_string(resume_from.total));
  }
  bool skip_first = resuming; // the resumed run's first iterate is the checkpoint's
  const int start_total = resuming ? resume_from.total : 0;
  {
    PhaseTimer t(ctx, "map");
    opt_map.run(omega, theta, [&](const MapIteration& it) {
      last = it;
      if (skip_first) {
        skip_first = false;
        stop_signal = agreedStopSignal(comm);
        return stop_signal == 0;
      }
      csv << it.stage << "," << it.iteration << "," << it.total << ","
          << formatNumber(it.smoothing) << "," << formatNumber(it.terms.total(), 12) << ","
          << formatNumber(it.terms.likelihood, 12) << "," << formatNumber(it.terms.noise_prior, 12)
          << "," << formatNumber(it.terms.parameter_prior, 12) << ","
          << formatNumber(it.gradient_norm, 8);
      for (double v : it.theta)
        csv << "," << formatNumber(v, 10);
      csv << "," << it.evaluations << "," << it.gradients << "," << formatNumber(it.seconds, 6)
          << "\n";
      curves[it.stage].points.emplace_back(it.total, it.terms.total());
      const double per = it.total > start_total ? it.seconds / (it.total - start_total) : 0.0;
      ctx.log("infer: stage " + std::to_string(it.stage) + " (R " + formatNumber(it.smoothing, 4) +
              " Mpc/h) iteration " + std::to_string(it.iteration) + ": -log P " +
              formatNumber(it.terms.total(), 8) + " (chi2/2 " +
              formatNumber(it.terms.likelihood, 6) + ", |omega|^2/2 " +
              formatNumber(it.terms.noise_prior, 6) + ")" + parametersText(it.theta) + ", |g| " +
              formatNumber(it.gradient_norm, 3) + "; " + std::to_string(it.evaluations) +
              " evaluations; ETA <= " + durationText(per * (max_total - it.total)));
      stop_signal = agreedStopSignal(comm);
      const bool due = ip.checkpoint_every > 0 && it.iteration > 0 &&
                       it.total % ip.checkpoint_every == 0;
      if (due || stop_signal != 0) {
        writeMapCheckpoint(ctx, dir, it.checkpoint(), csv.str(), ip.hash(), generation);
        if (stop_signal != 0)
          ctx.log("infer: stopped by signal " + std::to_string(stop_signal) +
                  "; checkpoint written: continue with --resume");
      }
      return stop_signal == 0;
    }, resuming ? &resume_from : nullptr);
  }
  bool stopped = stop_signal != 0;

  // The MAP's fields and the posterior terms there.
  const FieldPosterior::Terms at_map = post.value(omega, theta);
  Field<double> model(cfg.mesh, "caustic::infer::model");
  {
    const double b = post.biasAt(theta);
    auto m = model.real(), d = post.model().real();
    Kokkos::parallel_for(
        "caustic::infer::biased", Kokkos::RangePolicy<>(0, m.extent(0)),
        KOKKOS_LAMBDA(std::size_t i) { m(i) = b * d(i); });
    Kokkos::fence();
  }
  const DiffParams map_params = post.paramsAt(theta);
  Field<double> lin(cfg.lattice, "caustic::infer::linear");
  LptModel(cfg, map_params).linearDensity(omega, lin);

  // Laplace and HMC around the MAP, on the last stage's posterior (its smoothing), in the
  // optimiser's variables u = (theta - theta_MAP) / s.
  // (With MUSE the parameters were held: Laplace and HMC are refused with it.)
  const bool fitted = !free.empty() && !ip.muse.enabled;
  std::vector<double> scales = opt_map.parameterScales();
  if (scales.empty() && fitted)
    scales = opt_map.measureScales(omega, theta, opt_map.preconditioner() != nullptr);
  PosteriorObjective around(post, theta, scales, fitted, opt_map.preconditioner());
  FieldVector xmap = around.makeVector();
  around.fromNoise(omega, xmap);
  nlohmann::json laplace_json, hmc_json;
  std::vector<std::vector<double>> laplace_cov;
  std::vector<double> hmc_mass;
  if (ip.laplace && !stopped) {
    PhaseTimer t(ctx, "laplace");
    const auto t0 = ctx.elapsed();
    LaplaceResult lr;
    bool ok = true;
    try {
      // The parameters' columns by differences of the gradient (they hold the bilinear
      // coupling of an amplitude and the noise, which Gauss-Newton drops); the noise block by
      // Gauss-Newton, positive definite (differences of the gradient jump where particles
      // cross the kinks of the CIC window).
      lr = laplaceCovariance(
          [&](const FieldVector& v, FieldVector& hv, long* gradients) {
            hessianVector(around, xmap, v, hv, 1e-4, gradients);
          },
          [&](const FieldVector& v, FieldVector& hv, long* gradients) {
            around.gaussNewtonVector(xmap, v, hv, gradients);
          },
          xmap);
    } catch (const std::runtime_error& e) {
      // Not a mode (an optimisation that ran out of iterations, or a parameter at the edge of
      // its domain): the MAP and its outputs still stand; the summary says why there is no
      // covariance. (Every rank meets the same reduced values, so all throw together.)
      ok = false;
      laplace_json["error"] = e.what();
      ctx.log(std::string("infer: no Laplace covariance: ") + e.what());
    }
    const std::size_t np = ok ? free.size() : 0;
    laplace_cov.assign(np, std::vector<double>(np, 0.0));
    for (std::size_t i = 0; i < np; ++i) {
      hmc_mass.push_back(lr.hessian[i][i]);
      for (std::size_t k = 0; k < np; ++k)
        laplace_cov[i][k] = scales[i] * scales[k] * lr.covariance[i][k];
    }
    if (ok)
      laplace_json["covariance"] = laplace_cov;
    for (std::size_t i = 0; i < np; ++i) {
      laplace_json["sigma"][free[i].name] = std::sqrt(laplace_cov[i][i]);
      for (std::size_t k = i + 1; k < np; ++k)
        laplace_json["correlation"][free[i].name + "," + free[k].name] =
            laplace_cov[i][k] / std::sqrt(laplace_cov[i][i] * laplace_cov[k][k]);
    }
    laplace_json["order"] = ip.fit;
    laplace_json["cg_iterations"] = lr.cg_iterations;
    laplace_json["cg_relative_residuals"] = lr.cg_residuals;
    laplace_json["gradients"] = lr.gradients;
    laplace_json["seconds"] = ctx.elapsed() - t0;
    std::string txt;
    for (std::size_t i = 0; i < np; ++i)
      txt += " " + free[i].name + " " + formatNumber(theta[i], 5) + " +- " +
             formatNumber(std::sqrt(laplace_cov[i][i]), 3);
    if (ok)
      ctx.log("infer: Laplace at the MAP:" + txt + " (" + std::to_string(lr.gradients) +
              " gradients, CG iterations " + formatNumber(lr.cg_iterations.front()) + ")");
  }
  std::ostringstream hmc_csv;
  if (ip.hmc.enabled && !stopped) {
    PhaseTimer t(ctx, "hmc");
    const auto t0 = ctx.elapsed();
    HmcSettings hs;
    hs.samples = ip.hmc.samples;
    hs.burn_in = ip.hmc.burn_in;
    hs.leapfrog_steps = ip.hmc.leapfrog_steps;
    hs.step_size = ip.hmc.step_size;
    hs.seed = ip.hmc.seed;
    // The parameters' momenta: masses 1 / sigma_u^2 in the sampler's variables u = (theta -
    // theta_MAP) / s from the widths the file gives, else the Laplace Hessian's diagonal, else 1.
    hs.parameter_mass = hmc_mass;
    if (!ip.hmc.parameter_sigma.empty() && fitted) {
      hs.parameter_mass.clear();
      for (std::size_t i = 0; i < free.size(); ++i)
        hs.parameter_mass.push_back(std::pow(scales[i] / ip.hmc.parameter_sigma[i], 2));
    }
    // With centring the sampler's z differs from the optimiser's (A(theta_MAP) = 1, so only
    // where the parameters move).
    std::vector<double> centring;
    if (ip.hmc.centring && fitted && opt_map.preconditioner())
      for (double c : opt_map.preconditioner()->curvature())
        centring.push_back(std::max(0.0, c) / (1.0 + std::max(0.0, c)));
    PosteriorObjective sampled(post, theta, scales, fitted, opt_map.preconditioner(), centring);
    FieldVector x = sampled.makeVector();
    sampled.fromNoise(omega, x);
    // The chain so far: its state, where it stands, the kept samples' theta and the table.
    HmcCheckpoint chain;
    long hmc_generation = 0;
    const bool resumed =
        opt.resume && readHmcCheckpoint(ctx, dir, ip.hash(), x, chain, hmc_generation);
    const long gradients_before = chain.gradients;
    const double seconds_before = chain.seconds;
    if (resumed) {
      hmc_csv << chain.csv;
      ctx.log("infer: HMC resumes after trajectory " + std::to_string(chain.start.trajectory));
    } else {
      hmc_csv << "# trajectory,accepted,energy_error,minus_log_posterior";
      for (const auto& f : free)
        hmc_csv << "," << f.name;
      hmc_csv << "\n";
    }
    auto thetaOf = [&](const std::vector<double>& u) {
      std::vector<double> th = theta;
      for (std::size_t i = 0; i < th.size(); ++i)
        th[i] += scales[i] * u[i];
      return th;
    };
    const HmcResult hr = hmcSample(sampled, x, hs, [&](const HmcSample& smp) {
      const std::vector<double> th = thetaOf(smp.params);
      hmc_csv << smp.trajectory << "," << (smp.accepted ? 1 : 0) << ","
              << formatNumber(smp.energy_error, 8) << ","
              << formatNumber(smp.minus_log_posterior, 12);
      for (double v : th)
        hmc_csv << "," << formatNumber(v, 10);
      hmc_csv << "\n";
      if (smp.trajectory >= hs.burn_in)
        chain.kept.push_back(th);
      if ((smp.trajectory + 1) % 10 == 0)
        ctx.log("infer: HMC trajectory " + std::to_string(smp.trajectory + 1) + " of " +
                std::to_string(hs.burn_in + hs.samples) + ", -log P " +
                formatNumber(smp.minus_log_posterior, 8) + ", energy error " +
                formatNumber(smp.energy_error, 3) + parametersText(th));
      const bool last = smp.trajectory + 1 == hs.burn_in + hs.samples;
      // A signal after the last trajectory finds the chain complete: it ends as one.
      stop_signal = last ? 0 : agreedStopSignal(comm);
      const bool due = ip.checkpoint_every > 0 && (smp.trajectory + 1) % ip.checkpoint_every == 0;
      if (!last && (due || stop_signal != 0)) {
        chain.start = {smp.trajectory + 1, smp.accepted_total};
        chain.csv = hmc_csv.str();
        chain.gradients = gradients_before + smp.gradients;
        chain.seconds = seconds_before + (ctx.elapsed() - t0);
        writeHmcCheckpoint(ctx, dir, x, chain, ip.hash(), hmc_generation);
        if (stop_signal != 0)
          ctx.log("infer: stopped by signal " + std::to_string(stop_signal) +
                  " during HMC; checkpoint written: continue with --resume");
      }
      return stop_signal == 0;
    }, chain.start);
    const std::size_t np = free.size(), ns = chain.kept.size();
    std::vector<double> mean(np, 0.0);
    std::vector<std::vector<double>> cov(np, std::vector<double>(np, 0.0));
    for (const auto& th : chain.kept)
      for (std::size_t i = 0; i < np; ++i)
        mean[i] += th[i] / ns;
    for (const auto& th : chain.kept)
      for (std::size_t i = 0; i < np; ++i)
        for (std::size_t k = 0; k < np; ++k)
          cov[i][k] += (th[i] - mean[i]) * (th[k] - mean[k]) / std::max<double>(1, ns - 1);
    hmc_json["acceptance"] = hr.acceptance;
    hmc_json["samples"] = ns;
    hmc_json["mean"] = mean;
    hmc_json["covariance"] = cov;
    hmc_json["order"] = ip.fit;
    hmc_json["gradients"] = gradients_before + hr.gradients; // over every run of the chain
    hmc_json["parameter_mass"] = hs.parameter_mass;
    hmc_json["centring"] = !centring.empty();
    hmc_json["parameter_scale"] = fitted ? scales : std::vector<double>{};
    hmc_json["seconds"] = seconds_before + (ctx.elapsed() - t0);
    ctx.log("infer: HMC: " + std::to_string(ns) + " samples, acceptance " +
            formatNumber(hr.acceptance, 3));
  }

  nlohmann::json summary = ctx.summary("caustic infer", ip.hash());
  nlohmann::json j;
  j["stopped_by_signal"] = stop_signal;
  j["complete"] = stop_signal == 0;
  j["stages"] = nlohmann::json::array();
  for (const auto& st : ms.stages)
    j["stages"].push_back({{"smoothing_mpc_h", st.smoothing},
                           {"max_iterations", st.max_iterations},
                           {"fit_parameters", st.fit_parameters && !free.empty()}});
  j["iterations"] = last.total;
  j["evaluations"] = last.evaluations;
  j["gradients"] = last.gradients;
  j["noise_variance_per_cell"] = variance;
  j["map"] = termsJson(at_map);
  // Why the last stage ended: "iteration limit" is a MAP that had not converged.
  j["map"]["last_stage_ended_at"] = lbfgsStopName(opt_map.lastStop());
  for (std::size_t i = 0; i < free.size(); ++i) {
    j["map"]["parameters"][free[i].name] = theta[i];
    if (!opt_map.parameterScales().empty())
      j["parameter_scales"][free[i].name] = opt_map.parameterScales()[i];
  }
  if (!laplace_json.is_null())
    j["laplace"] = laplace_json;
  if (!hmc_json.is_null())
    j["hmc"] = hmc_json;
  if (!muse_json.is_null())
    j["muse"] = muse_json;
  j["parameters_fixed"] = {{"Omega_m", map_params.cosmology.Omega_m},
                           {"sigma8", map_params.cosmology.sigma8},
                           {"bias", post.biasAt(theta)}};

  std::vector<std::string> lattice_names = {"noise", "linear_density"};
  std::vector<const Field<double>*> lattice_fields = {&omega, &lin};
  std::vector<std::string> mesh_names = {"data", "model"};
  std::vector<const Field<double>*> mesh_fields = {data.get(), &model};
  std::unique_ptr<Field<double>> lin_true;
  std::ostringstream rk;
  if (ip.mock) {
    // The truth's terms and the reconstruction against it.
    FieldPosterior at(cfg, base, {data, var, mask}, free, ip.bias);
    at.setCentredPrior(ip.centred_prior);
    at.setSmoothing(ms.stages.back().smoothing);
    std::vector<double> th_true;
    for (const auto& f : free)
      th_true.push_back(f.name == "Omega_m"  ? ip.truth.Omega_m
                        : f.name == "sigma8" ? ip.truth.sigma8
                                             : ip.truth.bias);
    const auto t_true = at.value(*omega_true, th_true);
    j["truth"] = termsJson(t_true);
    j["truth"]["parameters"] = {{"Omega_m", ip.truth.Omega_m},
                                {"sigma8", ip.truth.sigma8},
                                {"bias", ip.truth.bias},
                                {"seed", ip.truth.seed},
                                {"noise_seed", ip.truth.noise_seed}};
    j["map_over_truth_minus_log_posterior"] = at_map.total() / t_true.total();
    lin_true = std::make_unique<Field<double>>(cfg.lattice, "caustic::infer::linearTrue");
    LptModel(cfg, truth).linearDensity(*omega_true, *lin_true);
    lattice_names.push_back("noise_truth");
    lattice_fields.push_back(omega_true.get());
    lattice_names.push_back("linear_density_truth");
    lattice_fields.push_back(lin_true.get());
    mesh_names.push_back("truth");
    mesh_fields.push_back(truth_model.get());
    const CrossPower lc = crossPower(lin, *lin_true);
    const CrossPower fc = crossPower(model, *truth_model);
    rk << "# Reconstruction against the truth: linear density today (lattice) and the final "
          "matter field b delta (mesh)\n# k_h_mpc P_rec P_true r T modes | final: P_rec P_true r T\n";
    nlohmann::json table = nlohmann::json::array();
    PlotSeries r_lin{"r(k) linear", "#1f77b4", {}}, t_lin{"T(k) linear", "#ff7f0e", {}},
        r_fin{"r(k) final", "#2ca02c", {}};
    for (std::size_t i = 0; i < lc.ab.size(); ++i) {
      if (lc.a.modes[i] <= 0)
        continue;
      const double r = lc.ab[i] / std::sqrt(lc.a.power[i] * lc.b.power[i]);
      const double T = std::sqrt(lc.a.power[i] / lc.b.power[i]);
      double rf = NAN, Tf = NAN, pa = NAN, pb = NAN;
      // The mesh has more bins; the same bin index is the same k (both in units of k_F).
      if (i < fc.ab.size() && fc.a.modes[i] > 0) {
        pa = fc.a.power[i];
        pb = fc.b.power[i];
        rf = fc.ab[i] / std::sqrt(pa * pb);
        Tf = std::sqrt(pa / pb);
      }
      rk << formatNumber(lc.a.k[i], 6) << " " << formatNumber(lc.a.power[i], 6) << " "
         << formatNumber(lc.b.power[i], 6) << " " << formatNumber(r, 6) << " "
         << formatNumber(T, 6) << " " << formatNumber(lc.a.modes[i], 8) << " "
         << formatNumber(pa, 6) << " " << formatNumber(pb, 6) << " " << formatNumber(rf, 6)
         << " " << formatNumber(Tf, 6) << "\n";
      table.push_back({{"k", lc.a.k[i]}, {"r", r}, {"T", T}, {"r_final", rf}, {"T_final", Tf}});
      r_lin.points.emplace_back(lc.a.k[i], r);
      t_lin.points.emplace_back(lc.a.k[i], T);
      r_fin.points.emplace_back(lc.a.k[i], rf);
    }
    j["reconstruction"] = table;
    if (ctx.root()) {
      writeTextFile((fs::path(dir) / "inference_reconstruction.txt").string(), rk.str());
      writeSvgPlot((fs::path(dir) / "inference_reconstruction.svg").string(),
                   "Reconstruction against the truth", "k [h/Mpc]", "r(k), T(k)",
                   {r_lin, t_lin, r_fin}, false);
    }
  }
  {
    PhaseTimer t(ctx, "write");
    writeFields((fs::path(dir) / "inference_map_lattice.hdf5").string(), lattice_fields,
                lattice_names, "dimensionless", 1.0, params);
    writeFields((fs::path(dir) / "inference_map_mesh.hdf5").string(), mesh_fields, mesh_names,
                "dimensionless", sim.a_end, params);
  }
  if (ctx.root()) {
    writeTextFile((fs::path(dir) / "inference_loss.csv").string(), csv.str());
    if (ip.hmc.enabled && !hmc_json.is_null())
      writeTextFile((fs::path(dir) / "inference_hmc.csv").string(), hmc_csv.str());
    const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b"};
    for (std::size_t i = 0; i < curves.size(); ++i) {
      curves[i].label = "R = " + formatNumber(ms.stages[i].smoothing, 4) + " Mpc/h";
      curves[i].color = colors[i % 6];
    }
    writeSvgPlot((fs::path(dir) / "inference_loss.svg").string(),
                 "caustic infer: -log posterior", "iteration", "-log P", curves, true);
    const std::string method = ip.muse.enabled ? "MUSE" : "Laplace";
    const auto& param_cov = ip.muse.enabled ? muse_cov : laplace_cov;
    if (param_cov.size() == 2) {
      // The 1 and 2 sigma ellipses of the two parameters (Laplace at the MAP, or MUSE's), the
      // estimate and the truth.
      std::vector<PlotSeries> ell;
      const double a = param_cov[0][0], b = param_cov[0][1], c = param_cov[1][1];
      const double tr = 0.5 * (a + c), det = a * c - b * b;
      const double l1 = tr + std::sqrt(std::max(0.0, tr * tr - det)),
                   l2 = tr - std::sqrt(std::max(0.0, tr * tr - det));
      const double ang = 0.5 * std::atan2(2 * b, a - c);
      for (const auto& [key, level] : kIntervalLevels) {
        // The 68% and 95% regions: MUSE's joint bounds (Hotelling's T^2 for a covariance from
        // its simulations), or those of a 2D Gaussian, chi^2_2 = -2 ln(1 - level).
        const double bound = ip.muse.enabled
                                 ? muse_json.at("intervals").at(key).at("joint_bound").get<double>()
                                 : -2.0 * std::log(1.0 - level);
        const double q = std::sqrt(bound);
        PlotSeries e{method + " " + key + "%", level < 0.9 ? "#1f77b4" : "#aec7e8", {}};
        for (int k = 0; k <= 100; ++k) {
          const double t = 2 * M_PI * k / 100;
          const double u = q * std::sqrt(std::max(l1, 0.0)) * std::cos(t),
                       v = q * std::sqrt(std::max(l2, 0.0)) * std::sin(t);
          e.points.emplace_back(theta[0] + u * std::cos(ang) - v * std::sin(ang),
                                theta[1] + u * std::sin(ang) + v * std::cos(ang));
        }
        ell.push_back(e);
      }
      auto cross = [&](const std::string& label, const std::string& color, double x0, double y0) {
        const double dx = 0.15 * std::sqrt(a), dy = 0.15 * std::sqrt(c);
        return PlotSeries{label, color, {{x0 - dx, y0}, {x0 + dx, y0}, {x0, y0}, {x0, y0 - dy},
                                         {x0, y0 + dy}}};
      };
      ell.push_back(cross(ip.muse.enabled ? "MUSE" : "MAP", "#1f77b4", theta[0], theta[1]));
      if (ip.mock) {
        auto val = [&](const std::string& n) {
          return n == "Omega_m" ? ip.truth.Omega_m : n == "sigma8" ? ip.truth.sigma8 : ip.truth.bias;
        };
        ell.push_back(cross("truth", "#d62728", val(free[0].name), val(free[1].name)));
      }
      writeSvgPlot((fs::path(dir) / "inference_parameters.svg").string(),
                   ip.muse.enabled ? "MUSE estimate and covariance" : "Laplace posterior at the MAP",
                   free[0].name, free[1].name, ell, false);
    }
    summary["inference"] = j;
    summary["parameter_toml"] = ip.toml;
    writeTextFile((fs::path(dir) / "inference_summary.json").string(), summary.dump(2) + "\n");
  }
  ctx.log("infer: MAP -log P " + formatNumber(at_map.total(), 8) + " (the last stage ended at: " +
          lbfgsStopName(opt_map.lastStop()) + ")" +
          (ip.mock ? " (truth " + formatNumber(j["truth"]["minus_log_posterior"].get<double>(), 8) +
                         ")"
                   : std::string()) +
          "; outputs in " + dir);
  MPI_Barrier(comm);
  stopped = stop_signal != 0;
  if (!stopped && ctx.root()) {
    std::error_code ec;
    fs::remove_all(fs::path(dir) / kCheckpointDir, ec); // complete: nothing to resume
  }
  MPI_Barrier(comm);
  return stopped ? 128 + stop_signal : 0;
}

} // namespace caustic
