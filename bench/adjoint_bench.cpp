// caustic-adjoint-bench: cost and memory of the gradient of the differentiable PM model
// (pm/adjoint.hpp) against its forward run.
//
// One configuration per process (peak memory is a per-process high-water mark):
//   jobs/mpirun.sh 2 build/bench/caustic-adjoint-bench --particles 64 --mesh 128 --steps 20
// jobs/bench_adjoint.sh runs 5 and 20 steps and prints both. The loss is the chi-square of the
// final density against a field of zeros (sigma 1): sum of delta^2 over the mesh. Times are the
// maximum over ranks of wall-clock seconds, per (forward, gradient) pair; the ratio printed last
// is the median over the pairs (--repeats).
#include "bench_common.hpp"
#include "pm/core/memory.hpp"
#include "pm/grad/adjoint.hpp"

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <vector>

using namespace caustic;
using caustic::bench::maxOver;
using caustic::bench::sumOver;

namespace {

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Config {
  int particles = 64, mesh = 128, steps = 5, repeats = 3;
  double box = 128.0, a_start = 0.1;
};

void run(const Config& c) {
  int rank, size;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const double baseline = residentBytes();
  DiffConfig cfg;
  cfg.lattice = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, c.particles, c.box);
  cfg.mesh = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, c.mesh, c.box);
  cfg.a_start = c.a_start;
  cfg.a_end = 1.0;
  cfg.steps = c.steps;
  cfg.lattice_offset = 0.5 * cfg.mesh->cell();
  cfg.potential_correction = hatFilterCorrection({0.1, 0.5, 1.0});
  DiffParams params;
  params.correction = {0.0, 0.0, 0.0};

  Field<double> noise(cfg.lattice, "bench::noise");
  {
    FFT<double> fft(cfg.lattice);
    NoiseOptions opt;
    opt.seed = 42;
    whiteNoiseRealSpace(noise, fft, opt);
  }
  Field<double> zero(cfg.mesh, "bench::observed"), sigma(cfg.mesh, "bench::sigma");
  zero.setZero();
  Kokkos::deep_copy(sigma.real(), 1.0);
  const FieldChi2Loss loss(cfg.mesh, cfg.lattice, cfg.window, zero, sigma);

  // Pairs of (forward, loss, gradient), each timed on its own: this machine's speed can drift
  // within a minute, so ratios are taken per pair and the median reported. The first pair also
  // pays the one-time costs (the gradient's derivative tables and workspace meshes, first touch).
  DiffPM model(cfg);
  std::vector<double> t_forward, t_loss, t_gradient, ratio;
  double value = 0.0, rss_forward = 0.0, peak_forward = 0.0;
  DiffGradient g;
  for (int r = 0; r < c.repeats; ++r) {
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = now();
    model.forward(noise, params);
    t_forward.push_back(maxOver(now() - t0));
    if (r == 0) {
      rss_forward = residentBytes();
      peak_forward = peakResidentBytes();
    }
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = now();
    Particles cot;
    value = loss(model.state(), cot);
    t_loss.push_back(maxOver(now() - t0));
    MPI_Barrier(MPI_COMM_WORLD);
    t0 = now();
    g = model.gradient(cot);
    t_gradient.push_back(maxOver(now() - t0));
    ratio.push_back((t_forward.back() + t_gradient.back()) / t_forward.back());
  }
  const double peak = peakResidentBytes();
  const double peak_max = maxOver(peak), peak_sum = sumOver(peak);
  const double grown_sum = sumOver(peak - baseline);
  const auto& r = model.reconstruction();
  const double ntot = double(c.particles) * c.particles * c.particles;
  if (rank == 0) {
    std::printf("caustic-adjoint-bench: %d^3 particles, %d^3 mesh (double), %.0f Mpc/h, %d steps "
                "a = %.2f -> 1, %d rank(s)\n",
                c.particles, c.mesh, c.box, c.steps, c.a_start, size);
    for (int r = 0; r < c.repeats; ++r)
      std::printf("  pair %d: forward %6.3f s, loss + its cotangent %6.3f s, gradient %6.3f s, "
                  "(forward + gradient) / forward %.2f%s\n",
                  r + 1, t_forward[r], t_loss[r], t_gradient[r], ratio[r],
                  r == 0 ? "  (with one-time costs)" : "");
    std::printf("  chi2 = %.6e\n", value);
    std::printf("  (forward + gradient) / forward  %.2f (median of %d pairs; first pair %.2f)\n",
                bench::median(ratio), c.repeats, ratio.front());
    std::printf("  gradient:");
    for (const auto& [name, value] : g.params.named())
      std::printf(" dL/d%s = %.6e", name.c_str(), value);
    std::printf("\n");
    std::printf("  reconstruction of the initial state: max |dx| = %.3e Mpc/h = %.3e of the rms "
                "displacement (%.3f Mpc/h); max |dp| = %.3e = %.3e of the rms momentum\n",
                r.max_dx, r.max_dx / r.rms_displacement, r.rms_displacement, r.max_dp,
                r.max_dp / r.rms_momentum);
    std::printf("  RSS on rank 0 [MB]     start %.0f, after forward %.0f (peak %.0f), peak with "
                "gradient %.1f\n",
                baseline / 1e6, rss_forward / 1e6, peak_forward / 1e6, peak / 1e6);
    std::printf("  peak RSS per rank      %8.1f MB (max)\n", peak_max / 1e6);
    std::printf("  bytes per particle     %8.1f (peak RSS, all ranks)   %8.1f (above start-up)\n",
                peak_sum / ntot, grown_sum / ntot);
  }
}

} // namespace

int main(int argc, char** argv) {
  Config cfg;
  return bench::benchMain(
      argc, argv, "caustic-adjoint-bench", "the gradient of the PM model against its forward run",
      [&](CLI::App& app) {
        app.add_option("--particles", cfg.particles, "particles per side")
            ->check(CLI::Range(4, 1024));
        app.add_option("--mesh", cfg.mesh, "mesh cells per side")->check(CLI::Range(4, 2048));
        app.add_option("--box", cfg.box, "box side [Mpc/h]")->check(CLI::PositiveNumber);
        app.add_option("--steps", cfg.steps, "PM steps")->check(CLI::Range(1, 1000));
        app.add_option("--a-start", cfg.a_start, "initial scale factor")
            ->check(CLI::Range(0.01, 0.9));
        app.add_option("--repeats", cfg.repeats, "(forward, gradient) pairs timed")
            ->check(CLI::Range(1, 100));
        return [&cfg] {
          run(cfg);
          return 0;
        };
      });
}
