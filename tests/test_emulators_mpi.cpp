// Distributed inference: a convolutional TorchScript model applied to slab-distributed fields
// equals the single-rank application, which equals the model on the periodically padded field
// computed directly with torch.
#include "emulators/distributed_inference.hpp"
#include "helpers.hpp"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

using namespace caustic;

namespace {

// Two 'same' 3x3x3 convolutions with a tanh between: receptive-field radius 2.
Model convModel() {
  torch::manual_seed(11);
  torch::jit::Module m("TwoConv");
  m.register_parameter("w1", torch::randn({3, 2, 3, 3, 3}) * 0.2, false);
  m.register_parameter("b1", torch::randn({3}) * 0.1, false);
  m.register_parameter("w2", torch::randn({1, 3, 3, 3, 3}) * 0.2, false);
  m.register_parameter("b2", torch::randn({1}) * 0.1, false);
  m.define(R"(
def forward(self, x):
    h = torch.tanh(torch.conv3d(x, self.w1, self.b1, [1, 1, 1], [1, 1, 1]))
    return torch.conv3d(h, self.w2, self.b2, [1, 1, 1], [1, 1, 1])
)");
  ModelMetadata meta = ModelMetadata::fromJson(nlohmann::json::parse(R"({
    "kind": "test_conv", "inputs": [{"name": "a"}, {"name": "b", "mean": 0.5, "std": 2.0}],
    "outputs": [{"name": "c"}], "receptive_field": 2, "cell_size": {"value": 1.0}})"),
                                               "test");
  return Model(m, meta);
}

void fill(Field<float>& f, int channel) {
  const auto& d = f.decomp();
  const int n = d.n();
  auto h = Kokkos::create_mirror_view(f.real());
  for (int lx = 0; lx < d.localNx(); ++lx)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z) {
        const int x = d.xStart() + lx;
        h(Field<float>::realIndex(lx, y, z, n)) =
            float(std::sin(0.7 * x + 1.3 * y * (channel + 1)) + std::cos(0.4 * z - 0.9 * x * y) +
                  channel);
      }
  Kokkos::deep_copy(f.real(), h);
}

// Applies the model with `comm` and returns the field on the planes of `ref` (all planes).
std::vector<float> apply(const Model& model, MPI_Comm comm, int n, int radius, int tile) {
  auto d = std::make_shared<const SlabDecomposition>(comm, n, double(n));
  Field<float> a(d, "a"), b(d, "b"), c(d, "c");
  fill(a, 0);
  fill(b, 1);
  applyDistributed(model, {&a, &b}, {&c}, {radius, tile});
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), c.real());
  std::vector<float> out(std::size_t(n) * n * n, NAN);
  for (int lx = 0; lx < d->localNx(); ++lx)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z)
        out[(std::size_t(d->xStart() + lx) * n + y) * n + z] =
            h(Field<float>::realIndex(lx, y, z, n));
  return out;
}

} // namespace

TEST(DistributedInference, EqualsSingleRankAndDirectTorch) {
  const Model model = convModel();
  // n = 6 at 3 ranks: slabs of 2 planes, thinner than the radius 3 (ghosts from 2 ranks away).
  for (int n : {6, 12}) {
    const int R = 3;
    const auto serial = apply(model, MPI_COMM_SELF, n, R, 1000);
    // Direct: periodic padding by R with torch, the model, crop.
    auto x = torch::empty({1, 2, n, n, n});
    {
      auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_SELF, n, double(n));
      Field<float> a(d, "a"), b(d, "b");
      fill(a, 0);
      fill(b, 1);
      auto acc = x.accessor<float, 5>();
      for (int c = 0; c < 2; ++c) {
        auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), (c ? b : a).real());
        for (int i = 0; i < n; ++i)
          for (int y = 0; y < n; ++y)
            for (int z = 0; z < n; ++z)
              acc[0][c][i][y][z] = h(Field<float>::realIndex(i, y, z, n));
      }
    }
    namespace F = torch::nn::functional;
    const auto padded = F::pad(x, F::PadFuncOptions({R, R, R, R, R, R}).mode(torch::kCircular));
    const auto direct =
        model.forward(padded).slice(2, R, R + n).slice(3, R, R + n).slice(4, R, R + n);
    auto dacc = direct.accessor<float, 5>();
    double worst_direct = 0;
    for (int i = 0; i < n; ++i)
      for (int y = 0; y < n; ++y)
        for (int z = 0; z < n; ++z)
          worst_direct = std::max(
              worst_direct,
              double(std::abs(dacc[0][0][i][y][z] - serial[(std::size_t(i) * n + y) * n + z])));
    EXPECT_LT(worst_direct, 1e-5) << "n = " << n;
    // Distributed, in tiles of one plane, against the serial result.
    const auto dist = apply(model, MPI_COMM_WORLD, n, R, 1);
    double worst = 0;
    int compared = 0;
    for (std::size_t i = 0; i < dist.size(); ++i)
      if (!std::isnan(dist[i])) {
        worst = std::max(worst, double(std::abs(dist[i] - serial[i])));
        ++compared;
      }
    EXPECT_GT(compared, 0);
    EXPECT_LT(worst, 1e-5) << "n = " << n;
  }
}

TEST(DistributedInference, RefusesARadiusBelowTheReceptiveField) {
  const Model model = convModel();
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 6, 6.0);
  Field<float> a(d, "a"), b(d, "b"), c(d, "c");
  EXPECT_THROW(applyDistributed(model, {&a, &b}, {&c}, {1, 4}), std::invalid_argument);
}
