// caustic-bench: the cost of a PM step, phase by phase, against the cost of its four FFTs.
//
// One configuration per process (peak memory is a per-process high-water mark), e.g.
//   jobs/mpirun.sh 2 build/bench/caustic-bench --particles 128 --mesh 256 --box 256 --precision
//   single
// jobs/bench.sh runs the standard set at 1 and 2 ranks. Particles start from 2LPT at a = 0.5 (a
// clustered, mid-run distribution) and take --steps FastPM steps; times are max over ranks.
#include "bench_common.hpp"
#include "pm/core/memory.hpp"
#include "pm/force/radial_correction.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/stepping/stepping.hpp"

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

using namespace caustic;
using caustic::bench::maxOver;
using caustic::bench::sumOver;

namespace {

double rssBytes() {
  return residentBytes();
}
double peakRssBytes() {
  return peakResidentBytes();
}

struct Config {
  int particles = 64, mesh = 128, steps = 5, fft_repeats = 5;
  double box = 128.0;
  std::string precision = "single", plan = "measure", wisdom;
  std::string correction = "none"; // none | hat_ka: a potential correction at every force
};

template <class T> void run(const Config& cfg) {
  MPI_Comm comm = MPI_COMM_WORLD;
  int rank, size;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  const double baseline = rssBytes();
  if (!cfg.wisdom.empty())
    importWisdom<T>(wisdomFile<T>(cfg.wisdom), comm);
  const unsigned flags = fftPlannerFlags(cfg.plan);

  CosmologyParams cp;
  const Cosmology cosmo(cp);
  const LinearPower power = LinearPower::eisensteinHu(cp);
  const double a0 = 0.5;
  auto lattice = std::make_shared<const SlabDecomposition>(comm, cfg.particles, cfg.box);
  ICOptions ico;
  ico.noise = {1, false, false};
  ico.a_start = a0;
  ico.lattice_offset = 0.5 * cfg.box / cfg.mesh;
  Particles parts = makeInitialConditions<T>(lattice, cosmo, power, ico);
  const double rss_ic = rssBytes(), peak_ic = peakRssBytes();
  const double ntot = double(cfg.particles) * cfg.particles * cfg.particles;

  auto mesh = std::make_shared<const SlabDecomposition>(comm, cfg.mesh, cfg.box);
  const auto tp0 = std::chrono::steady_clock::now();
  NBody<T> nbody(mesh, cosmo, GravityOptions{}, ntot, flags);
  if (cfg.correction == "hat_ka") {
    // 5 x 3 nodes, small nonzero parameters: the cost of a tabulated (k, a) correction (the
    // neural correction applies its table the same way; its table costs one network evaluation
    // per force, see the run summaries' step:potential_correction).
    std::vector<double> theta(15);
    for (std::size_t i = 0; i < theta.size(); ++i)
      theta[i] = 0.01 * double(i % 5);
    nbody.gravity().setPotentialCorrection(
        std::make_shared<const HatKCorrection<T>>(std::vector<double>{0.25, 0.5, 0.75, 1.0, 1.25},
                                                  std::vector<double>{0.3, 0.6, 1.0}, theta));
  }
  const double plan_s =
      maxOver(std::chrono::duration<double>(std::chrono::steady_clock::now() - tp0).count(), comm);
  if (!cfg.wisdom.empty())
    exportWisdom<T>(wisdomFile<T>(cfg.wisdom), comm);
  const double rss_solver = rssBytes();
  // One untimed step first: it computes the force at its start too, which later steps take
  // from the previous one (fused half-kicks).
  const auto steps = timeSteps(a0, a0 + 0.02 * (cfg.steps + 1), cfg.steps + 1, Spacing::Linear);
  nbody.start(parts, a0);
  nbody.step(parts, steps[1], Spacing::Linear, steps[2]);
  const double rss_start = rssBytes();
  nbody.times().clear();
  MPI_Barrier(comm);
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t s = 2; s < steps.size(); ++s) {
    nbody.step(parts, steps[s], Spacing::Linear, s + 1 < steps.size() ? steps[s + 1] : 0.0);
    if (std::getenv("CAUSTIC_BENCH_RSS") && rank == 0)
      std::printf("  [rss after step %zu: %.0f MB]\n", s, rssBytes() / 1e6);
  }
  MPI_Barrier(comm);
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double per_step = maxOver(total, comm) / cfg.steps;

  // Four FFTs of the same mesh (1 forward, 3 inverse) with the solver's own plans and buffer.
  auto& fft = nbody.gravity().fft();
  const auto lease = nbody.gravity().workspace().lease("bench");
  Field<T>& f = *lease;
  f.setZero();
  MPI_Barrier(comm);
  const auto tf = std::chrono::steady_clock::now();
  for (int r = 0; r < cfg.fft_repeats; ++r) {
    fft.forward(f);
    for (int c = 0; c < 3; ++c)
      fft.backward(f);
  }
  MPI_Barrier(comm);
  const double four_fft =
      maxOver(std::chrono::duration<double>(std::chrono::steady_clock::now() - tf).count(), comm) /
      cfg.fft_repeats;

  const double peak = peakRssBytes();
  const double peak_sum = sumOver(peak, comm), grown_sum = sumOver(peak - baseline, comm);
  const double peak_max = maxOver(peak, comm);
  std::map<std::string, double> phases;
  // Phases: mean over ranks (their sum can then be compared with the step, a max over ranks;
  // the difference, 'other', includes load imbalance).
  for (const auto& [k, v] : nbody.times().all())
    phases[k] = sumOver(v, comm) / size / cfg.steps;
  if (rank != 0)
    return;
  double accounted = 0;
  std::printf(
      "config: %d^3 particles, %d^3 mesh, %.0f Mpc/h, %s precision, %d rank%s, %d steps, FFTW %s, "
      "force correction %s\n",
      cfg.particles, cfg.mesh, cfg.box, cfg.precision.c_str(), size, size > 1 ? "s" : "", cfg.steps,
      cfg.plan.c_str(), cfg.correction.c_str());
  std::printf("  step                   %8.4f s\n", per_step);
  for (const char* k : {"paint", "fft_forward", "kernels", "potential_correction", "fft_inverse",
                        "readout", "migrate", "drift"}) {
    const double v = phases.count(k) ? phases[k] : 0.0;
    if (!phases.count(k) && std::string(k) == "potential_correction")
      continue;
    accounted += v;
    std::printf("    %-20s %8.4f s  %5.1f%%\n", k, v, 100 * v / per_step);
  }
  std::printf("    %-20s %8.4f s  %5.1f%%\n", "other", per_step - accounted,
              100 * (per_step - accounted) / per_step);
  std::printf("  four FFTs            %8.4f s   step / four FFTs = %.2f\n", four_fft,
              per_step / four_fft);
  std::printf("  particles/s/core     %.3e\n", ntot / per_step / size);
  std::printf("  FFT planning         %8.2f s\n", plan_s);
  std::printf("  peak RSS per rank    %8.1f MB (max)\n", peak_max / 1e6);
  std::printf("  RSS on rank 0 [MB]   start-up %.0f, after ICs %.0f (peak during ICs %.0f), with "
              "solver %.0f, "
              "after the first step %.0f, end %.0f\n",
              baseline / 1e6, rss_ic / 1e6, peak_ic / 1e6, rss_solver / 1e6, rss_start / 1e6,
              rssBytes() / 1e6);
  std::printf("  bytes per particle   %8.1f (peak RSS, all ranks)   %8.1f (above the %0.f MB/rank "
              "start-up baseline)\n",
              peak_sum / ntot, grown_sum / ntot, baseline / 1e6);
  std::fflush(stdout);
}

} // namespace

int main(int argc, char** argv) {
  Config cfg;
  return bench::benchMain(
      argc, argv, "caustic-bench", "cost of a PM step against its four FFTs", [&](CLI::App& app) {
        app.add_option("--particles", cfg.particles, "particles per side")
            ->check(CLI::Range(4, 4096));
        app.add_option("--mesh", cfg.mesh, "mesh cells per side")->check(CLI::Range(4, 8192));
        app.add_option("--box", cfg.box, "box side [Mpc/h]")->check(CLI::PositiveNumber);
        app.add_option("--steps", cfg.steps, "timed steps")->check(CLI::Range(1, 1000));
        app.add_option("--precision", cfg.precision, "mesh precision")
            ->check(CLI::IsMember({"single", "double"}));
        app.add_option("--plan", cfg.plan, "FFTW planner")
            ->check(CLI::IsMember({"estimate", "measure", "patient"}));
        app.add_option("--correction", cfg.correction, "potential correction at every force")
            ->check(CLI::IsMember({"none", "hat_ka"}));
        app.add_option("--wisdom", cfg.wisdom,
                       "FFTW wisdom file (read if present, written after planning)");
        return [&cfg] {
          if (cfg.precision == "double")
            run<double>(cfg);
          else
            run<float>(cfg);
          return 0;
        };
      });
}
