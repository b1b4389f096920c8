#include "commands.hpp"
#include "common.hpp"
#include "force_correction.hpp"
#include "signals.hpp"

#include "io/atomic_file.hpp"
#include "io/checkpoint.hpp"
#include "io/halos.hpp"
#include "io/observers.hpp"
#include "io/snapshot.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/stepping/run_handlers.hpp"
#include "pm/stepping/simulation.hpp"
#include "emulator_runtime.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <fstream>
#include <tuple>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>

namespace caustic {

namespace {

// A resumed run's summary lists the outputs the interrupted part wrote too: the files this
// run's parameters name at the output scale factors up to the resume point (and the initial
// conditions and linear spectrum), where they exist. Emulator outputs at every step are not
// listed again.
void recordEarlierOutputs(RunContext& ctx, const Params& params, double a_resume) {
  if (!ctx.root())
    return;
  namespace fs = std::filesystem;
  const auto& out = params.output;
  auto add = [&](const std::string& kind, const std::string& path) {
    std::error_code ec;
    if (fs::is_regular_file(path, ec))
      ctx.addOutput(kind, path);
  };
  if (out.initial_conditions)
    add("snapshot", (fs::path(out.directory) / "ic.hdf5").string());
  add("linear_power", (fs::path(out.directory) / "linear_power.txt").string());
  for (double a : out.a) {
    if (a > a_resume * (1.0 + 1e-12))
      continue;
    if (out.snapshots)
      add("snapshot", outputName(out.directory, "snapshot", a, ".hdf5"));
    if (out.power_spectrum)
      add("power_spectrum", outputName(out.directory, "power", a, ".txt"));
    if (out.density)
      add("density", outputName(out.directory, "density", a, ".hdf5"));
    if (params.halos.enabled && isOutputScaleFactor(a, params.halos.a)) {
      add("halos", (fs::path(out.directory) / haloCatalogueName(format("halos_a%.4f", a))).string());
      add("mass_function", outputName(out.directory, "mass_function", a, ".txt"));
    }
    for (const auto& e : params.emulators)
      if (isOutputScaleFactor(a, e.a)) {
        add("emulator", outputName(out.directory, e.name, a, ".hdf5"));
        // A halo surrogate's catalogue (a super-resolution hook's FoF: NAME_halos), mass
        // function and (per-group surrogate) candidates.
        for (const std::string& stem : {e.name, e.name + "_halos"})
          add("halos",
              (fs::path(out.directory) / haloCatalogueName(format("%s_a%.4f", stem.c_str(), a)))
                  .string());
        add("mass_function", outputName(out.directory, e.name + "_mass_function", a, ".txt"));
        add("halo_candidates", outputName(out.directory, e.name + "_candidates", a, ".hdf5"));
      }
  }
}

// FNV-1a hashes of every input file the run reads: the parameter file, the power table,
// emulator models and records, the force-correction record, the shared FFTW wisdom (rank 0,
// before the run; not collective).
nlohmann::json inputHashes(const Params& params) {
  nlohmann::json j = nlohmann::json::object();
  auto add = [&j](const std::string& path) {
    if (path.empty() || j.contains(path))
      return;
    std::ifstream in(path, std::ios::binary);
    if (!in)
      return;
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    j[path] = fnv1aHex(text);
  };
  add(params.source);
  if (params.power.type == PowerParams::Type::Tabulated)
    add(params.power.file);
  for (const auto& e : params.emulators) {
    add(e.model);
    add(e.metadata.empty() ? std::filesystem::path(e.model).replace_extension(".json").string()
                           : e.metadata);
  }
  add(params.gravity.correction.model);
  if (!params.fft.wisdom.empty())
    add(params.simulation.double_precision ? wisdomFile<double>(params.fft.wisdom)
                                           : wisdomFile<float>(params.fft.wisdom));
  return j;
}

// The newest readable checkpoint made with these parameters. Collective; ParamError if none.
template <class R>
BasicParticles<R> resumeState(RunContext& ctx, const Params& params, CheckpointInfo& info) {
  const std::string& dir = params.checkpoint.directory;
  const auto files = listCheckpoints(dir);
  if (files.empty())
    throw ParamError("--resume: no checkpoint in " + dir + " (checkpoint.directory)");
  for (const auto& f : files) {
    try {
      BasicParticles<R> parts = readCheckpoint<R>(f, ctx.comm(), info);
      if (info.parameter_hash != params.hash())
        throw ParamError("--resume: " + f + " was written with other parameters (hash " +
                         info.parameter_hash + ", these are " + params.hash() +
                         "); resume with the same file and --set options");
      return parts;
    } catch (const ParamError&) {
      throw;
    } catch (const std::runtime_error& e) {
      // Corrupt or truncated (e.g. killed while renaming on a file system without atomic
      // rename): fall back to the previous one.
      ctx.log(std::string("warning: skipping ") + e.what());
    }
  }
  throw ParamError("--resume: no readable checkpoint in " + dir);
}

// At an output, frees the workspace's mesh buffers that no one holds (the force's, the
// interlaced power spectrum's), so that the observers after it (FoF, emulator hooks) reuse that
// memory instead of adding to it; the next force evaluation allocates its buffer again (one
// allocation per output, not per step). Runs without such observers do not release.
template <class T> class ReleaseIdleMeshes : public Observer {
public:
  explicit ReleaseIdleMeshes(Workspace<T>& ws) : _ws(ws) {}
  std::string name() const override { return "release_meshes"; }
  void observe(Event, const SimulationState&) override { _ws.releaseIdle(); }

private:
  Workspace<T>& _ws;
};

// T: the mesh precision; R: the particles' (simulation.particle_precision).
template <class T, class R>
int runSim(RunContext& ctx, const Params& params, const RunOptions& opt) {
  const auto& sim = params.simulation;
  const auto& out = params.output;
  MPI_Comm comm = ctx.comm().get();
  Cosmology cosmo(params.cosmology);
  const LinearPower power = makeLinearPower(params);
  ctx.log("caustic run: " + std::to_string(sim.particles) + "^3 particles, " +
          std::to_string(sim.mesh) + "^3 mesh (" + (sim.double_precision ? "double" : "single") +
          "; particles " + (sim.single_particles ? "single" : "double") + "), box " +
          format("%g", sim.box) + " Mpc/h, a = " + format("%g", sim.a_start) + " -> " +
          format("%g", sim.a_end) + ", " + std::to_string(ctx.comm().size()) + " ranks");
  ctx.log("cosmology: Omega_m = " + format("%.4f", params.cosmology.Omega_m) + ", sigma8 = " +
          format("%.4f", power.sigma(8.0)) + "; gravity: " + params.gravity.window + ", " +
          params.gravity.kernel + " kernel" + (params.gravity.deconvolve ? ", deconvolved" : ""));

  // Emulator hooks load their models and check their validity domains before anything is written.
  // The emulator runtime (LibTorch) is loaded only when the run configures an emulator. Models
  // and records are read by every rank: a failure on some ranks only ends every rank together
  // with the lowest such rank's message (shareAnyError), not with the others waiting.
  std::vector<std::unique_ptr<Observer>> hooks;
  std::optional<RunForceCorrection> correction;
  {
    std::string err;
    try {
      for (const auto& e : params.emulators) {
        if (e.kind == "ldl") { // no LibTorch: an LDL painter record
          hooks.push_back(std::make_unique<LdlHook>(
              params, e, [&ctx](const std::string& kind, const std::string& path) {
                ctx.addOutput(kind, path);
                ctx.log("wrote " + path);
              }));
          continue;
        }
        const auto& rt = emulatorRuntime("[emulators." + e.name + "]");
        hooks.push_back(
            rt.makeHook(params, e, [&ctx](const std::string& kind, const std::string& path) {
              ctx.addOutput(kind, path);
              ctx.log("wrote " + path);
            }));
      }
      // The force correction is read and checked against its validity domain before anything
      // is written, like the emulators.
      correction = loadRunForceCorrection(params);
    } catch (const std::runtime_error& e) { // ParamError, ValidityError, unreadable files
      err = e.what();
    }
    shareAnyError(ctx, err, "run: emulators and force correction");
  }
  if (correction)
    ctx.log("force correction: " + correction->record.correction + " from " + correction->source +
            (!correction->pgd ? " (at every force evaluation)"
             : correction->record.base
                 ? " (PGD at the outputs, on top of " + correction->record.base->correction +
                       " at every force evaluation)"
                 : std::string(" (PGD at the outputs)")) +
            (correction->mismatch.empty()
                 ? std::string()
                 : "; outside its training domain (forced): " + correction->mismatch));
  // Every check before the first byte is written: paths, memory; then the directory is
  // claimed (locked against a second command) and what it holds is looked at.
  checkOutputPaths(ctx, params);
  const double memory_estimate = checkMemory(ctx, params);
  const Spacing spacing = stepSpacing(sim);
  const auto boundaries = timeSteps(sim.a_start, sim.a_end, sim.steps, spacing, out.a);
  const int steps_total = static_cast<int>(boundaries.size()) - 1;
  if (steps_total != sim.steps)
    ctx.log(format("time steps: %d (simulation.steps = %d; outputs fall on step boundaries, so "
                   "%d output time(s) between steps add a boundary each)",
                   steps_total, sim.steps, steps_total - sim.steps));
  OutputClaim claim = claimOutputDirectory(ctx, out.directory, "caustic run");
  // The inputs as they are read (rank 0; before this run rewrites a shared wisdom file).
  const nlohmann::json input_hashes = ctx.root() ? inputHashes(params) : nlohmann::json::object();
  {
    // Nothing of an earlier run is overwritten unless asked (or resumed); a complete run is
    // not resumed.
    int state = 0; // 1: outputs of an earlier run; 2: a complete run
    if (ctx.root() && hasRunOutputs(out.directory)) {
      state = 1;
      std::ifstream in((std::filesystem::path(out.directory) / "run_summary.json").string());
      try {
        nlohmann::json prev;
        if (in && (in >> prev, true) && prev.value("command", "") == "run" &&
            !prev.value("interrupted", true) &&
            prev.value("steps_done", -1) == prev.value("steps_total", -2))
          state = 2;
      } catch (const nlohmann::json::exception&) {
      }
    }
    mpiCheck(MPI_Bcast(&state, 1, MPI_INT, 0, comm), "run: output check");
    if (state > 0 && !opt.resume && !opt.overwrite)
      throw ParamError("output.directory = \"" + out.directory +
                       "\" holds the outputs of an earlier run; pass --overwrite to replace "
                       "them, --resume to continue it, or choose another directory");
    if (state == 2 && opt.resume)
      throw ParamError("--resume: output.directory = \"" + out.directory +
                       "\" holds a complete run (run_summary.json: every step done); nothing "
                       "to resume (--overwrite runs it again)");
  }
  CheckpointInfo resumed;
  BasicParticles<R> parts = opt.resume ? resumeState<R>(ctx, params, resumed)
                                       : makeRunInitialConditions<T, R>(ctx, params, cosmo, power);
  if (opt.resume)
    ctx.log("resuming from " + resumed.path + ": step " + std::to_string(resumed.step) + "/" +
            std::to_string(resumed.steps_total) + ", a = " + format("%.4f", resumed.state.a) +
            ", written by " + std::to_string(resumed.nranks) + " rank(s)");
  if (opt.resume && resumed.steps_total != steps_total)
    throw ParamError("--resume: the checkpoint has " + std::to_string(resumed.steps_total) +
                     " steps in all, these parameters " + std::to_string(steps_total));
  // A stop requested during the initial conditions (or the checkpoint read): nothing written.
  if (const int sig = agreedStopSignal(comm)) {
    ctx.log("stopped by signal " + std::to_string(sig) +
            " before the first step; nothing was written");
    return 128 + sig;
  }
  const double ntot = double(sim.particles) * sim.particles * sim.particles;
  if (opt.resume)
    recordEarlierOutputs(ctx, params, resumed.state.a);
  auto record = [&ctx](const std::string& kind, const std::string& path) {
    ctx.addOutput(kind, path);
    ctx.log("wrote " + path);
  };
  if (ctx.root() && !opt.resume) {
    // The run's own linear spectrum at a = 1 over a wide k range (for halofit, mass functions).
    const std::string path = (std::filesystem::path(out.directory) / "linear_power.txt").string();
    std::ostringstream t;
    t << "# caustic linear power spectrum at a = 1 (D1 = 1); P(k, a) = D1(a)^2 P(k)\n"
      << "# source: "
      << (params.power.type == PowerParams::Type::Tabulated ? params.power.file
                                                            : "Eisenstein & Hu 1998")
      << ", sigma8 = " << power.sigma(8.0) << ", Omega_m = " << params.cosmology.Omega_m << "\n"
      << "# columns: k [h/Mpc]  P(k) [(Mpc/h)^3]\n";
    const double lo = power.tabulated() ? power.kMin() : 1e-4,
                 hi = power.tabulated() ? power.kMax() : 1e2;
    for (int i = 0; i <= 600; ++i) {
      const double k = lo * std::pow(hi / lo, i / 600.0);
      t << format("%.8e %.8e\n", k, power(std::min(std::max(k, lo), hi)));
    }
    writeTextFile(path, t.str());
    record("linear_power", path);
  }
  if (out.initial_conditions && !opt.resume) {
    PhaseTimer t(ctx, "write_initial_conditions");
    const std::string path = (std::filesystem::path(out.directory) / "ic.hdf5").string();
    writeSnapshot(path, ctx.comm(), parts, {sim.a_start, particleMass(params), std::uint64_t(ntot)},
                  params);
    if (ctx.root())
      record("snapshot", path);
  }

  auto mesh = std::make_shared<const SlabDecomposition>(comm, sim.mesh, sim.box);
  GravityOptions go;
  go.window = windowFromName(params.gravity.window);
  go.kernel = gravityKernelFromName(params.gravity.kernel);
  go.deconvolve = params.gravity.deconvolve;
  // FFT plans: measured (fft.plan) once per run. The run keeps its wisdom in its output
  // directory and a resume plans from it first, so that the resumed run uses the interrupted
  // run's plans and repeats it bit for bit; fft.wisdom is shared between runs (a campaign's
  // members on one machine measure once).
  const std::string own_wisdom =
      wisdomFile<T>((std::filesystem::path(out.directory) / "fftw.wisdom").string());
  // Shared wisdom: fft.wisdom if given, else the per-user cache (one file per mesh, rank count
  // and precision), unless fft.cache = false.
  const std::string shared_wisdom = !params.fft.wisdom.empty() ? wisdomFile<T>(params.fft.wisdom)
                                    : params.fft.cache          ? wisdomCachePath(ctx, params)
                                                                : "";
  const std::string wisdom_name = params.fft.wisdom.empty() ? "the wisdom cache " + shared_wisdom
                                                            : "fft.wisdom = \"" + params.fft.wisdom + "\"";
  // A wisdom file that is not FFTW wisdom is neither read nor overwritten (it may be anything).
  std::vector<std::string> export_wisdom{own_wisdom};
  if (!shared_wisdom.empty()) {
    if (importWisdom<T>(shared_wisdom, comm) == WisdomImport::Invalid)
      ctx.log("warning: " + wisdom_name + ": " + shared_wisdom + " is not FFTW wisdom (" +
              (sim.double_precision ? "double" : "single") + " precision); ignored and left as it is");
    else
      export_wisdom.push_back(shared_wisdom);
  }
  if (opt.resume && importWisdom<T>(own_wisdom, comm) == WisdomImport::Invalid)
    ctx.log("warning: " + own_wisdom + " is not FFTW wisdom; planning afresh");
  std::shared_ptr<Workspace<T>> workspace;
  std::unique_ptr<NBody<T>> solver;
  {
    PhaseTimer t(ctx, "fft_planning");
    const auto t0 = std::chrono::steady_clock::now();
    // Plans came from wisdom when planning taught FFTW nothing new (rank 0's view).
    const std::string wisdom_before = ctx.root() ? wisdomText<T>() : std::string();
    // The run's meshes and FFT plans: the solver and the observers lease from it.
    workspace = std::make_shared<Workspace<T>>(mesh, fftPlannerFlags(params.fft.plan),
                                               Gravity<T>::meshBuffers(go));
    solver = std::make_unique<NBody<T>>(workspace, cosmo, go, ntot);
    const bool from_wisdom =
        ctx.root() && !wisdom_before.empty() && wisdomText<T>() == wisdom_before;
    ctx.log("FFT plans (" + params.fft.plan + "): " +
            format("%.2f",
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) +
            " s" +
            (from_wisdom ? ", from wisdom (" +
                               (shared_wisdom.empty() ? std::string("the run's own") : wisdom_name) + ")"
             : params.fft.plan == "estimate" ? std::string()
                                              : std::string(", measured")));
  }
  // Wisdom files are an optimisation: a failure to write one is reported, not fatal (rank 0
  // writes, nothing collective follows).
  for (const std::string& w : export_wisdom) {
    try {
      exportWisdom<T>(w, comm);
    } catch (const std::runtime_error& e) {
      ctx.log(std::string("warning: ") + e.what());
    }
  }
  NBody<T>& nbody = *solver;
  if (correction && correction->potential())
    nbody.gravity().setPotentialCorrection(makePotentialCorrection<T>(*correction->potential()));

  SnapshotWriter snapshots(params, record);
  PowerSpectrumWriter<T> spectra(
      params, *workspace, [&power](double k) { return power(k); }, record);
  DensityWriter<T> density(params, *workspace, record);
  HaloFinder halos(params, record);
  for (auto& h : hooks) // LDL painters with a halo layer read the catalogue of their output
    if (auto* ldl = dynamic_cast<LdlHook*>(h.get()))
      ldl->setHaloFinder(&halos);
  BaryonWriter baryons(
      params, halos, record,
      [&ctx](const std::string& phase, double sec) { ctx.addTime("baryons_" + phase, sec); },
      [&ctx](const std::string& m) { ctx.log("baryons: " + m); });
  std::vector<Observer*> observers;
  if (out.snapshots)
    observers.push_back(&snapshots);
  if (out.power_spectrum)
    observers.push_back(&spectra);
  if (out.density)
    observers.push_back(&density);
  ReleaseIdleMeshes<T> release_meshes(*workspace);
  if (params.halos.enabled) {
    observers.push_back(&release_meshes);
    observers.push_back(&halos);
    if (params.baryons.enabled)
      observers.push_back(&baryons);
  }
  for (auto& h : hooks)
    observers.push_back(h.get());
  // Hooks may lease meshes of their own: give them back after the output. A run with neither
  // FoF nor hooks keeps its buffers (the power spectrum's interlaced copy), so that an output
  // does not allocate and touch them again: nothing in it needs the memory.
  if (!params.halos.enabled && !hooks.empty())
    observers.push_back(&release_meshes);

  // PGD displaces a copy of the particles at each output; every output observer sees the copy.
  std::unique_ptr<PgdOutputs<T>> pgd_outputs;
  if (correction && correction->pgd) {
    pgd_outputs = std::make_unique<PgdOutputs<T>>(workspace, params.cosmology.Omega_m, go,
                                                  *correction->pgd, observers);
    observers = {pgd_outputs.get()};
  }
  // The spectra at outputs come from the closing force's painted density (no paint and FFT of
  // their own) unless PGD displaces what the outputs see.
  if (out.power_spectrum && !pgd_outputs &&
      spectra.measureAtForces(nbody.gravity(), opt.resume ? resumed.state.a : boundaries.front()))
    ctx.log("power spectra: measured from the force's density at the outputs");

  SimulationState base;
  base.mesh = mesh;
  base.cosmology = &cosmo;
  base.total_particles = ntot;
  base.particle_mass = particleMass(params);
  base.particle_grid = sim.particles;
  base.lattice_offset = latticeOffset(params);
  Checkpointing ckpt;
  ckpt.every_steps = params.checkpoint.every_steps;
  ckpt.every_seconds = 60.0 * params.checkpoint.every_minutes;
  ckpt.on_stop = params.checkpoint.on_signal;
  std::string last_checkpoint = opt.resume ? resumed.path : "";
  ckpt.write = [&](int step, const StepperState& st) {
    PhaseTimer t(ctx, "checkpoints");
    if (ctx.root())
      makeDirectories(params.checkpoint.directory);
    mpiCheck(MPI_Barrier(comm), "run: checkpoint directory");
    last_checkpoint = writeCheckpoint(params.checkpoint.directory, ctx.comm(), parts, step,
                                      steps_total, st, params, params.checkpoint.keep);
    ctx.log("wrote " + last_checkpoint);
  };
  // Fault injection for the tests: CAUSTIC_FAULT_NAN_AFTER_STEP=k puts a NaN into a momentum
  // after step k.
  const char* fault = std::getenv("CAUSTIC_FAULT_NAN_AFTER_STEP");
  const int nan_step = fault ? std::atoi(fault) : -1;
  // ... and CAUSTIC_FAULT_STOP_AFTER_STEP=k raises SIGUSR1 on rank 0 after step k (a stop
  // request at a known step, as SLURM's signal before a time limit makes one).
  const char* fault_stop = std::getenv("CAUSTIC_FAULT_STOP_AFTER_STEP");
  const int stop_step = fault_stop ? std::atoi(fault_stop) : -1;
  ResumePoint rp{resumed.step, resumed.state};
  // The run loop and what the command attaches to it: observers at events; handlers for stop
  // signals, the NaN check, step timing, checkpoints and the step line (in this order: the
  // step's time does not include the checkpoint; the line reports after it).
  RunLoop<T, R> loop(nbody, parts, boundaries, out.a, spacing, base);
  for (Observer* o : observers)
    loop.observe(o);
  StopRequest stop(stopRequested);
  NonFiniteCheck finite;
  StepTimer timer;
  CheckpointWriter checkpoints(ckpt);
  StepReporter reporter(timer, [&](const StepReport& r) {
    if (r.step == nan_step && ctx.root() && parts.size() > 0) {
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
      h(0, 0) = std::numeric_limits<R>::quiet_NaN();
      Kokkos::deep_copy(parts.p, h);
    }
    if (r.step == stop_step && ctx.root())
      std::raise(SIGUSR1);
    ctx.log(format("step %4d/%d  a = %.4f  z = %7.3f  %7.2f s  ETA %7.1f s", r.step, r.steps_total,
                   r.a, 1.0 / r.a - 1.0, r.seconds, r.eta_seconds));
  });
  for (RunHandler* h :
       std::initializer_list<RunHandler*>{&stop, &finite, &timer, &checkpoints, &reporter})
    loop.attach(h);
  RunResult result;
  try {
    PhaseTimer t(ctx, "time_stepping_total");
    result = loop.run(opt.resume ? &rp : nullptr);
  } catch (const NonFiniteState& e) {
    // Met on every rank alike: nothing more is written from this state.
    if (ctx.root())
      std::fprintf(stderr, "caustic: error: %s; the run stops. Last checkpoint: %s\n", e.what(),
                   last_checkpoint.empty() ? "none" : last_checkpoint.c_str());
    return 3;
  }
  const int stop_signal = result.interrupted ? agreedStopSignal(comm) : 0;
  for (const auto& [phase, s] : nbody.times().all())
    ctx.addTime("step:" + phase, s);
  if (pgd_outputs)
    ctx.addTime("pgd_outputs", pgd_outputs->seconds());
  auto summary = ctx.summary("run", params.hash());
  summary["memory_estimate_bytes_per_rank"] = memory_estimate;
  summary["inputs"] = input_hashes;
  if (correction)
    summary["force_correction"] = correction->summary();
  summary["steps_done"] = result.steps_done;
  summary["steps_total"] = static_cast<int>(boundaries.size()) - 1;
  summary["a_reached"] = result.a_reached;
  summary["interrupted"] = result.interrupted;
  if (result.interrupted)
    summary["stop_signal"] = stop_signal;
  summary["checkpoints_written"] = checkpoints.written();
  if (!last_checkpoint.empty())
    summary["last_checkpoint"] = last_checkpoint;
  if (opt.resume) {
    summary["resumed_from"] = resumed.path;
    summary["resumed_at_step"] = resumed.step;
  }
  summary["particles_migrated"] = static_cast<double>(nbody.migrated());
  if (ctx.root()) {
    const std::string path = (std::filesystem::path(out.directory) / "run_summary.json").string();
    writeTextFile(path, summary.dump(2) + "\n");
    ctx.log("wrote " + path);
  }
  if (result.interrupted) {
    const int sig = stop_signal;
    ctx.log("stopped by signal " + std::to_string(sig) + " after step " +
            std::to_string(result.steps_done) + " at a = " + format("%.4f", result.a_reached) +
            "; every file written is complete" +
            (last_checkpoint.empty() ? std::string()
                                     : "; continue with --resume (" + last_checkpoint + ")"));
    return 128 + sig;
  }
  ctx.log("done");
  return 0;
}

} // namespace

int runSimulationCommand(RunContext& ctx, const Params& params, const RunOptions& opt) {
  return withPrecisions(params.simulation, [&](auto t, auto r) {
    return runSim<decltype(t), decltype(r)>(ctx, params, opt);
  });
}

} // namespace caustic
