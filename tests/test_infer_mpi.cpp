// The MAP optimiser of field-level inference (infer/map_optimizer.hpp) on a small mock:
// the same iterates on every rank count as on one rank alone, a posterior that only decreases,
// and a MAP at least as probable as the truth that made the data.
#include "field_helpers.hpp"
#include "helpers.hpp"
#include "infer/field_vector.hpp"
#include "infer/map_optimizer.hpp"
#include "pm/grad/lpt_model.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>

using namespace caustic;

namespace {

constexpr double kBox = 128.0;
constexpr int kMesh = 16, kLattice = 8;

// A mock on `comm`: data = the matter field of seed 5 at the true cosmology + white noise of
// variance 0.05 per cell.
struct Mock {
  std::shared_ptr<const SlabDecomposition> lattice, mesh;
  DiffConfig cfg;
  DiffParams truth;
  FieldObservation obs;
  std::shared_ptr<Field<double>> omega_true;
  explicit Mock(MPI_Comm comm)
      : lattice(std::make_shared<SlabDecomposition>(comm, kLattice, kBox)),
        mesh(std::make_shared<SlabDecomposition>(comm, kMesh, kBox)) {
    cfg.lattice = lattice;
    cfg.mesh = mesh;
    cfg.a_start = 0.1;
    cfg.a_end = 1.0;
    cfg.steps = 3;
    cfg.lpt_order = 2;
    cfg.window = Window::CIC;
    cfg.lattice_offset = 0.5 * mesh->cell();
    truth.cosmology = test::planck();
    omega_true = std::make_shared<Field<double>>(lattice, "omega_true");
    {
      FFT<double> fft(lattice);
      NoiseOptions opt;
      opt.seed = 5;
      whiteNoiseRealSpace(*omega_true, fft, opt);
    }
    auto data = std::make_shared<Field<double>>(mesh, "data");
    auto var = std::make_shared<Field<double>>(mesh, "variance");
    Kokkos::deep_copy(var->real(), 0.05);
    {
      FieldPosterior p(cfg, truth, {data, var, nullptr}, {});
      p.value(*omega_true, {});
      Field<double> eps(mesh, "eps");
      test::randomField(eps, 6, 0.0, std::sqrt(3.0 * 0.05)); // uniform with variance 0.05
      test::fieldAxpy(*data, p.model(), 1.0, eps);
    }
    obs = {data, var, nullptr};
  }
  std::vector<PosteriorParameter> free() const {
    return {posteriorParameter("Omega_m"), posteriorParameter("sigma8")};
  }
};

MapSettings settings(int iterations) {
  MapSettings s;
  s.stages = {{20.0, iterations / 2, false}, {0.0, iterations - iterations / 2, true}};
  s.gradient_tolerance = 1e-12; // run every iteration
  return s;
}

struct Trace {
  std::vector<double> loss;
  std::vector<std::vector<double>> theta;
};

Trace runMap(const Mock& m, int iterations, Field<double>& omega, std::vector<double>& theta) {
  FieldPosterior post(m.cfg, m.truth, m.obs, m.free());
  MapOptimizer opt(post, settings(iterations));
  Trace t;
  opt.run(omega, theta, [&](const MapIteration& it) {
    t.loss.push_back(it.terms.total());
    t.theta.push_back(it.theta);
    return true;
  });
  return t;
}

} // namespace

// The distributed optimiser follows the serial one: rank 0 runs alone on MPI_COMM_SELF, then
// all ranks together; 20 iterations agree to rounding (the reductions differ in order only).
TEST(MapOptimizer, IteratesAgreeAcrossRankCounts) {
  const int iterations = 20;
  Trace serial;
  if (test::worldRank() == 0) {
    Mock m(MPI_COMM_SELF);
    Field<double> omega(m.lattice, "omega");
    std::vector<double> theta = {0.25, 0.9};
    serial = runMap(m, iterations, omega, theta);
  }
  Mock m(MPI_COMM_WORLD);
  Field<double> omega(m.lattice, "omega");
  std::vector<double> theta = {0.25, 0.9};
  const Trace dist = runMap(m, iterations, omega, theta);
  if (test::worldRank() == 0) {
    ASSERT_EQ(serial.loss.size(), dist.loss.size());
    ASSERT_GE(dist.loss.size(), std::size_t(iterations));
    double worst = 0.0;
    for (std::size_t i = 0; i < dist.loss.size(); ++i) {
      const double rel = std::abs(dist.loss[i] - serial.loss[i]) / std::abs(serial.loss[i]);
      worst = std::max(worst, rel);
      EXPECT_LT(rel, 1e-9) << "iterate " << i;
      for (std::size_t j = 0; j < 2; ++j)
        EXPECT_NEAR(dist.theta[i][j], serial.theta[i][j], 1e-9) << "iterate " << i;
    }
    std::printf("  %zu iterates at %d ranks: loss %.6e -> %.6e, worst relative difference to one "
                "rank %.2e\n",
                dist.loss.size(), test::worldSize(), dist.loss.front(), dist.loss.back(), worst);
  }
}

// From zero noise and a wrong cosmology the posterior only decreases, and the MAP is at least as
// probable as the truth (a MAP worse than the truth is a local minimum or a failed optimiser).
TEST(MapOptimizer, ReachesAPosteriorAtLeastAsHighAsTheTruth) {
  Mock m(MPI_COMM_WORLD);
  FieldPosterior post(m.cfg, m.truth, m.obs, m.free());
  const double at_truth = post.value(*m.omega_true,
                                     {m.truth.cosmology.Omega_m, m.truth.cosmology.sigma8})
                              .total();
  MapSettings s;
  s.stages = {{20.0, 15, false}, {0.0, 60, true}};
  s.gradient_tolerance = 1e-6;
  MapOptimizer opt(post, s);
  Field<double> omega(m.lattice, "omega");
  std::vector<double> theta = {0.25, 0.9};
  std::vector<double> losses;
  std::vector<int> stages;
  opt.run(omega, theta, [&](const MapIteration& it) {
    losses.push_back(it.terms.total());
    stages.push_back(it.stage);
    return true;
  });
  for (std::size_t i = 1; i < losses.size(); ++i) {
    if (stages[i] == stages[i - 1]) {
      EXPECT_LE(losses[i], losses[i - 1]) << "iterate " << i;
    }
  }
  const double at_map = post.value(omega, theta).total();
  if (test::worldRank() == 0)
    std::printf("  %zu iterates: -log posterior %.4f at the MAP, %.4f at the truth; Omega_m %.4f "
                "(true %.4f), sigma8 %.4f (true %.4f)\n",
                losses.size(), at_map, at_truth, theta[0], m.truth.cosmology.Omega_m, theta[1],
                m.truth.cosmology.sigma8);
  EXPECT_LE(at_map, at_truth);
}
