#include "commands.hpp"
#include "common.hpp"
#include "signals.hpp"

#include "io/atomic_file.hpp"
#include "io/observers.hpp"
#include "io/snapshot.hpp"
#include "pm/initial_conditions.hpp"
#include "pm/simulation.hpp"
#ifdef CAUSTIC_WITH_TORCH
#include "emulators/hooks.hpp"
#endif

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace caustic {

namespace {

template <class T> int runSim(RunContext& ctx, const Params& params) {
  const auto& sim = params.simulation;
  const auto& out = params.output;
  MPI_Comm comm = ctx.comm().get();
  Cosmology cosmo(params.cosmology);
  const LinearPower power = makeLinearPower(params);
  ctx.log("caustic run: " + std::to_string(sim.particles) + "^3 particles, " +
          std::to_string(sim.mesh) + "^3 mesh (" + (sim.double_precision ? "double" : "single") +
          "), box " + format("%g", sim.box) + " Mpc/h, a = " + format("%g", sim.a_start) + " -> " +
          format("%g", sim.a_end) + ", " + std::to_string(ctx.comm().size()) + " ranks");
  ctx.log("cosmology: Omega_m = " + format("%.4f", params.cosmology.Omega_m) + ", sigma8 = " +
          format("%.4f", power.sigma(8.0)) + "; gravity: " + params.gravity.window + ", " +
          params.gravity.kernel + " kernel" + (params.gravity.deconvolve ? ", deconvolved" : ""));

  // Emulator hooks load their models and check their validity domains before anything is written.
#ifdef CAUSTIC_WITH_TORCH
  std::vector<std::unique_ptr<EmulatorHook>> hooks;
  try {
    for (const auto& e : params.emulators)
      hooks.push_back(std::make_unique<EmulatorHook>(
          params, e, [&ctx](const std::string& kind, const std::string& path) {
            ctx.addOutput(kind, path);
            ctx.log("wrote " + path);
          }));
  } catch (const std::runtime_error& e) {
    throw ParamError(e.what()); // the same on every rank: an input error
  }
#else
  if (!params.emulators.empty())
    throw ParamError("[emulators." + params.emulators.front().name +
                     "]: this caustic was built without LibTorch (CAUSTIC_ENABLE_TORCH=OFF)");
#endif
  Particles parts = makeRunInitialConditions<T>(ctx, params, cosmo, power);
  const double ntot = double(sim.particles) * sim.particles * sim.particles;
  prepareOutput(ctx, out.directory);
  auto record = [&ctx](const std::string& kind, const std::string& path) {
    ctx.addOutput(kind, path);
    ctx.log("wrote " + path);
  };
  if (ctx.root()) {
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
      char line[64];
      std::snprintf(line, sizeof line, "%.8e %.8e\n", k, power(std::min(std::max(k, lo), hi)));
      t << line;
    }
    writeTextFile(path, t.str());
    record("linear_power", path);
  }
  if (out.initial_conditions) {
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
  NBody<T> nbody(mesh, cosmo, go, ntot);

  SnapshotWriter snapshots(params, record);
  PowerSpectrumWriter<T> spectra(
      params, nbody.gravity(), [&power](double k) { return power(k); }, record);
  DensityWriter<T> density(params, nbody.gravity(), record);
  HaloFinder halos(params, record);
  std::vector<Observer*> observers;
  if (out.snapshots)
    observers.push_back(&snapshots);
  if (out.power_spectrum)
    observers.push_back(&spectra);
  if (out.density)
    observers.push_back(&density);
  if (params.halos.enabled)
    observers.push_back(&halos);
#ifdef CAUSTIC_WITH_TORCH
  for (auto& h : hooks)
    observers.push_back(h.get());
#endif

  const Spacing spacing =
      sim.spacing == SimulationParams::Spacing::Log ? Spacing::Log : Spacing::Linear;
  const auto boundaries = timeSteps(sim.a_start, sim.a_end, sim.steps, spacing, out.a);
  SimulationState base;
  base.mesh = mesh;
  base.cosmology = &cosmo;
  base.total_particles = ntot;
  base.particle_mass = particleMass(params);
  base.particle_grid = sim.particles;
  base.lattice_offset = latticeOffset(params);
  installStopHandlers();
  RunResult result;
  {
    PhaseTimer t(ctx, "time_stepping_total");
    result = runSimulation(
        nbody, parts, boundaries, out.a, spacing, base, observers,
        [&ctx](const StepReport& r) {
          char line[160];
          std::snprintf(line, sizeof line, "step %4d/%d  a = %.4f  z = %7.3f  %7.2f s  ETA %7.1f s",
                        r.step, r.steps_total, r.a, 1.0 / r.a - 1.0, r.seconds, r.eta_seconds);
          ctx.log(line);
        },
        stopRequested);
  }
  for (const auto& [phase, s] : nbody.times().all())
    ctx.addTime("step:" + phase, s);
  auto summary = ctx.summary("run", params.hash());
  summary["steps_done"] = result.steps_done;
  summary["steps_total"] = static_cast<int>(boundaries.size()) - 1;
  summary["a_reached"] = result.a_reached;
  summary["interrupted"] = result.interrupted;
  summary["particles_migrated"] = static_cast<double>(nbody.migrated());
  if (ctx.root()) {
    const std::string path = (std::filesystem::path(out.directory) / "run_summary.json").string();
    writeTextFile(path, summary.dump(2) + "\n");
    ctx.log("wrote " + path);
  }
  if (result.interrupted) {
    ctx.log("stopped by signal " + std::to_string(stopSignal()) + " after step " +
            std::to_string(result.steps_done) + " at a = " + format("%.4f", result.a_reached) +
            "; every file written is complete");
    return 128 + stopSignal();
  }
  ctx.log("done");
  return 0;
}

} // namespace

int runSimulationCommand(RunContext& ctx, const Params& params) {
  return params.simulation.double_precision ? runSim<double>(ctx, params)
                                            : runSim<float>(ctx, params);
}

} // namespace caustic
