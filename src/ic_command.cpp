#include "commands.hpp"
#include "common.hpp"
#include "signals.hpp"

#include "io/atomic_file.hpp"
#include "io/snapshot.hpp"
#include "io/tables.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/analysis/power_spectrum.hpp"

#include <cstdio>
#include <filesystem>
#include <sstream>

namespace caustic {

namespace {

// T: the meshes' precision; R: the particles' (simulation.particle_precision).
template <class T, class R> int runIC(RunContext& ctx, const Params& params, bool overwrite) {
  const auto& sim = params.simulation;
  const auto& out = params.output;
  MPI_Comm comm = ctx.comm().get();
  Cosmology cosmo(params.cosmology);
  const LinearPower power = makeLinearPower(params);
  ctx.log("cosmology: Omega_m = " + format("%.4f", params.cosmology.Omega_m) +
          ", sigma8 = " + format("%.4f", power.sigma(8.0)) +
          ", D1(a_start) = " + format("%.6f", cosmo.D1(sim.a_start)));

  checkOutputPaths(ctx, params);
  checkMemory(ctx, params);
  OutputClaim claim = claimOutputDirectory(ctx, out.directory, "caustic ic");
  {
    int found = ctx.root() ? hasRunOutputs(out.directory) : 0;
    mpiCheck(MPI_Bcast(&found, 1, MPI_INT, 0, comm), "ic: output check");
    if (found && !overwrite)
      throw ParamError("output.directory = \"" + out.directory +
                       "\" holds the outputs of an earlier run or initial conditions; pass "
                       "--overwrite to replace them, or choose another directory");
  }
  BasicParticles<R> parts = makeRunInitialConditions<T, R>(ctx, params, cosmo, power);
  if (const int sig = agreedStopSignal(comm)) {
    ctx.log("stopped by signal " + std::to_string(sig) +
            " during the initial conditions; nothing was written");
    return 128 + sig;
  }
  const double ntot = static_cast<double>(sim.particles) * sim.particles * sim.particles;
  ctx.log("initial conditions: " + std::to_string(sim.particles) + "^3 particles, " +
          (sim.lpt_order == 2 ? "2LPT" : "Zel'dovich") + " at a = " + format("%.4f", sim.a_start));

  const std::filesystem::path dir(out.directory);
  if (out.initial_conditions) {
    PhaseTimer t(ctx, "write_snapshot");
    const std::string path = (dir / "ic.hdf5").string();
    writeSnapshot(path, ctx.comm(), parts, {sim.a_start, particleMass(params), std::uint64_t(ntot)},
                  params);
    ctx.addOutput("snapshot", path);
    ctx.log("wrote " + path);
  }
  if (out.power_spectrum) {
    PhaseTimer t(ctx, "power_spectrum");
    auto mesh = std::make_shared<const SlabDecomposition>(comm, sim.mesh, sim.box);
    FFT<T> fft(mesh);
    migrate(parts, *mesh);
    PowerOptions po;
    po.window = windowFromName(out.window);
    po.interlace = out.interlace;
    po.subtract_shot_noise = out.subtract_shot_noise;
    const PowerSpectrum ps = measurePower<T>(parts, ntot, mesh, fft, po);
    if (ctx.root()) {
      const std::string path = (dir / "power_ic.txt").string();
      const double g = cosmo.D1(sim.a_start);
      std::ostringstream h1;
      h1 << "caustic initial-condition power spectrum at a = " << sim.a_start
         << " (z = " << 1.0 / sim.a_start - 1.0 << ")";
      std::ostringstream h2;
      h2 << "box " << sim.box << " Mpc/h, " << sim.particles << "^3 particles, mesh " << sim.mesh
         << "^3, window " << out.window << (out.interlace ? ", interlaced" : "")
         << ", compensated; parameter hash " << params.hash();
      std::ostringstream h3;
      h3 << "k_nyquist_particles = " << M_PI * sim.particles / sim.box << " h/Mpc";
      writePowerTable(
          path, ps,
          {h1.str(), h2.str(), h3.str(), "P_lin: linear theory at the same a, D1(a)^2 P(k)"},
          [&](double k) { return g * g * power(k); });
      ctx.addOutput("power_spectrum", path);
      ctx.log("wrote " + path);
    }
  }
  const auto summary = ctx.summary("ic", params.hash());
  if (ctx.root()) {
    const std::string path = (dir / "ic_summary.json").string();
    writeTextFile(path, summary.dump(2) + "\n");
    ctx.log("wrote " + path);
  }
  return 0;
}

} // namespace

int runInitialConditions(RunContext& ctx, const Params& params, bool overwrite) {
  return withPrecisions(params.simulation, [&](auto t, auto r) {
    return runIC<decltype(t), decltype(r)>(ctx, params, overwrite);
  });
}

} // namespace caustic
