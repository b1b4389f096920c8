// Distributed inference: a convolutional TorchScript model applied to slab-distributed fields
// equals the single-rank application, which equals the model on the periodically padded field
// computed directly with torch.
#include "emulators/inference/adapters.hpp"
#include "emulators/inference/distributed_inference.hpp"
#include "emulators/inference/halo_field.hpp"
#include "emulators/inference/superres.hpp"
#include "helpers.hpp"
#include "io/fields.hpp"
#include "pm/particles/migrate.hpp"
#include "small_params.hpp"

#include <filesystem>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

using namespace caustic;
using namespace caustic::test;

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
  auto r = f.real();
  f.decomp().forEachPoint(
      "test::fill", KOKKOS_LAMBDA(const MeshPoint& p) {
        r(p.index) = float(km::sin(0.7 * p.x + 1.3 * p.y * (channel + 1)) +
                           km::cos(0.4 * p.z - 0.9 * p.x * p.y) + channel);
      });
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

// The two channels of `fill` on the whole n^3 field as one (1, 2, n, n, n) tensor.
torch::Tensor wholeField(int n) {
  auto x = torch::empty({1, 2, n, n, n});
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
  return x;
}

} // namespace

TEST(DistributedInference, EqualsSingleRankAndDirectTorch) {
  const Model model = convModel();
  // n = 6 at 3 ranks: slabs of 2 planes, thinner than the radius 3 (ghosts from 2 ranks away).
  for (int n : {6, 12}) {
    const int R = 3;
    const auto serial = apply(model, MPI_COMM_SELF, n, R, 1000);
    // Direct: periodic padding by R with torch, the model, crop.
    const auto x = wholeField(n);
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

namespace {
Model unetModel(int depth) {
  torch::manual_seed(3);
  UNetConfig cfg;
  cfg.in_channels = 2;
  cfg.out_channels = 1;
  cfg.depth = depth;
  cfg.width = 4;
  ModelMetadata meta;
  meta.kind = "test_unet";
  meta.inputs = {{"a", 0.0, 1.0}, {"b", 0.5, 2.0}};
  meta.outputs = {{"c", 0.1, 3.0}};
  meta.receptive_field = cfg.receptiveField();
  meta.cell_size = 1.0;
  return Model(UNet3d(cfg), meta);
}

// The model on the whole periodic field of `fill` (one tensor, no padding: the U-Net pads
// periodically itself).
torch::Tensor direct(const Model& model, int n) {
  return model.forward(wholeField(n));
}
} // namespace

TEST(DistributedInference, UNetEqualsTheWholeFieldApplication) {
  // Slabs of 16/3 planes at 3 ranks start off the U-Net's pooling grid; tiles of 3 planes too;
  // the ghost width (28 + 3 planes at depth 2) exceeds the box.
  for (int depth : {1, 2}) {
    const Model model = unetModel(depth);
    const int n = 16;
    const auto ref = direct(model, n);
    auto racc = ref.accessor<float, 5>();
    for (int tile : {6, 1000}) {
      const auto dist = apply(model, MPI_COMM_WORLD, n, model.metadata().receptive_field, tile);
      double worst = 0, scale = 0;
      int compared = 0;
      for (int i = 0; i < n; ++i)
        for (int y = 0; y < n; ++y)
          for (int z = 0; z < n; ++z) {
            const float v = dist[(std::size_t(i) * n + y) * n + z];
            if (std::isnan(v))
              continue;
            worst = std::max(worst, double(std::abs(v - racc[0][0][i][y][z])));
            scale = std::max(scale, double(std::abs(racc[0][0][i][y][z])));
            ++compared;
          }
      EXPECT_GT(compared, 0);
      EXPECT_LT(worst, 1e-5 * std::max(1.0, scale)) << "depth " << depth << ", tile " << tile;
    }
  }
}

TEST(DistributedInference, UNetReceptiveFieldBound) {
  // A change of one input cell changes no output cell farther than the declared radius.
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank != 0)
    GTEST_SKIP() << "serial check, done on rank 0";
  const Model model = unetModel(1);
  const int n = 32, R = model.metadata().receptive_field;
  auto x = torch::randn({1, 2, n, n, n});
  const auto y0 = model.forward(x);
  auto x1 = x.clone();
  x1[0][0][5][7][9] += 10.0f;
  const auto diff = (model.forward(x1) - y0).abs();
  auto acc = diff.accessor<float, 5>();
  int reach = 0;
  for (int i = 0; i < n; ++i)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z)
        if (acc[0][0][i][y][z] > 0) {
          auto dist = [n](int a, int b) { return std::min(std::abs(a - b), n - std::abs(a - b)); };
          reach = std::max({reach, dist(i, 5), dist(y, 7), dist(z, 9)});
        }
  std::printf("U-Net depth 1: one changed cell reaches %d cells; declared radius %d\n", reach, R);
  EXPECT_GT(reach, 0);
  EXPECT_LE(reach, R);
}

// ---- Adapters between particles and model fields -------------------------------------------

namespace {
// n^3 lattice particles (IDs = lattice index) displaced by an analytic field, with momenta
// p = (2 + sin, id-dependent, ...), dealt round-robin and then moved to their slab owners.
Particles latticeParticles(int n, double L, const SlabDecomposition& mesh) {
  const std::size_t N = std::size_t(n) * n * n;
  Particles all(N);
  auto x = Kokkos::create_mirror_view(all.x);
  auto p = Kokkos::create_mirror_view(all.p);
  auto id = Kokkos::create_mirror_view(all.id);
  const double h = L / n;
  for (std::size_t s = 0; s < N; ++s) {
    const int i = int(s / (n * n)), j = int((s / n) % n), k = int(s % n);
    const double q[3] = {i * h + 0.25, j * h + 0.25, k * h + 0.25};
    const double dsp[3] = {1.7 * std::sin(2 * M_PI * j / n), -0.9 * std::cos(2 * M_PI * i / n),
                           0.4 * std::sin(2 * M_PI * (i + k) / n)};
    for (int c = 0; c < 3; ++c) {
      x(s, c) = periodicWrap(q[c] + dsp[c], L);
      p(s, c) = (c + 1) * std::cos(0.3 * s) + 0.5;
    }
    id(s) = s;
  }
  Kokkos::deep_copy(all.x, x);
  Kokkos::deep_copy(all.p, p);
  Kokkos::deep_copy(all.id, id);
  Particles mine = share(all, mesh.comm().rank(), mesh.comm().size());
  migrate(mine, mesh);
  return mine;
}
} // namespace

TEST(Adapters, LagrangianExchangeRoundTripAndSites) {
  const int n = 12;
  const double L = 24.0;
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 2 * n, L);
  auto lattice = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Particles parts = latticeParticles(n, L, *mesh);
  LagrangianExchange ex(lattice, parts);
  std::vector<std::vector<double>> v;
  for (const char* ch : {"displacement_x", "displacement_y", "momentum_z"})
    v.push_back(lagrangianValues(ch, parts, n, L, 0.25));
  Field<float> fx(lattice, "fx"), fy(lattice, "fy"), fz(lattice, "fz");
  ex.toLattice(v, {&fx, &fy, &fz});
  // Each lattice site holds the analytic displacement of its own particle.
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fx.real());
  auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fy.real());
  auto hz = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), fz.real());
  double err = 0;
  for (int lx = 0; lx < lattice->localNx(); ++lx)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) {
        const int i = lattice->xStart() + lx;
        const std::size_t s = (std::size_t(i) * n + j) * n + k,
                          f = Field<float>::realIndex(lx, j, k, n);
        err = std::max(err, std::abs(hx(f) - 1.7 * std::sin(2 * M_PI * j / n)));
        err = std::max(err, std::abs(hy(f) + 0.9 * std::cos(2 * M_PI * i / n)));
        err = std::max(err, std::abs(hz(f) - (3 * std::cos(0.3 * s) + 0.5)));
      }
  EXPECT_LT(err, 1e-5);
  // And back: every particle gets its own value (float precision of the fields).
  const auto back = ex.fromLattice({&fx, &fy, &fz});
  double rt = 0;
  for (int c = 0; c < 3; ++c)
    for (std::size_t i = 0; i < parts.size(); ++i)
      rt = std::max(rt, std::abs(back[c][i] - v[c][i]));
  EXPECT_LT(rt, 1e-5);
}

TEST(Adapters, LagrangianExchangeRefusesAnIncompleteLattice) {
  const int n = 8;
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, 8.0);
  Particles parts = latticeParticles(n, 8.0, *mesh);
  int rank = mesh->comm().rank();
  if (rank == 0)
    parts.setSize(parts.size() - 1); // one particle lost
  EXPECT_THROW(LagrangianExchange(mesh, parts), std::runtime_error);
}

TEST(Adapters, MomentumDensityIsTheMassWeightedMomentum) {
  // Uniform p: the painted momentum density is p (1 + delta). Varying p: the field sums to
  // (n^3 / N) sum p, and equals the serial painting.
  const int n = 16;
  const double L = 32.0;
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Particles all = randomParticles(3000, L, 17);
  {
    auto p = Kokkos::create_mirror_view(all.p);
    for (std::size_t i = 0; i < all.size(); ++i)
      for (int c = 0; c < 3; ++c)
        p(i, c) = c == 1 ? 2.5 : std::sin(1.0 * i + c);
    Kokkos::deep_copy(all.p, p);
  }
  Particles parts = share(all, mesh->comm().rank(), mesh->comm().size());
  migrate(parts, *mesh);
  const Painter<float> painter(mesh, Window::CIC);
  Field<float> delta(mesh, "delta"), my(mesh, "my"), mx(mesh, "mx");
  paintEulerian("density", delta, painter, parts, double(all.size()));
  paintEulerian("momentum_y", my, painter, parts, double(all.size()));
  paintEulerian("momentum_x", mx, painter, parts, double(all.size()));
  auto hd = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), delta.real());
  auto hy = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), my.real());
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mx.real());
  double err = 0, sum = 0;
  for (int lx = 0; lx < mesh->localNx(); ++lx)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z) {
        const auto f = Field<float>::realIndex(lx, y, z, n);
        err = std::max(err, std::abs(hy(f) - 2.5 * (1.0 + hd(f))));
        sum += hx(f);
      }
  double total = 0;
  MPI_Allreduce(&sum, &total, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  double expect = 0;
  for (std::size_t i = 0; i < all.size(); ++i)
    expect += std::sin(1.0 * i);
  expect *= double(n) * n * n / all.size();
  EXPECT_LT(err, 1e-4);
  EXPECT_NEAR(total, expect, 1e-3 * std::abs(expect) + 1e-3);
  EXPECT_THROW(paintEulerian("velocity_x", mx, painter, parts, 1.0), std::invalid_argument);
}

TEST(Adapters, FofCountPaintsTheGroupMembersAtTheNearestMeshPoint) {
  // Two tight clumps of 30 and 25 particles (the first across the periodic face in z), one of
  // 12 (below min_particles = 20) and 400 scattered particles: fof_count is 30 and 25 at the
  // mesh points nearest the clumps' centres and 0 everywhere else, at any rank count.
  const int n = 16;
  const double L = 32.0;
  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  const double centre[3][3] = {{5.1, 7.9, 31.98}, {17.3, 3.1, 10.8}, {25.0, 25.0, 25.0}};
  const int members[3] = {30, 25, 12};
  Particles all = randomParticles(400 + 30 + 25 + 12, L, 29);
  {
    auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.x);
    std::size_t i = 400;
    for (int g = 0; g < 3; ++g)
      for (int m = 0; m < members[g]; ++m, ++i)
        for (int c = 0; c < 3; ++c) { // within 0.05 Mpc/h of the centre, wrapped into the box
          const double v = centre[g][c] + 0.05 * std::sin(7.0 * m + 3.0 * c + g);
          x(i, c) = v - L * std::floor(v / L);
        }
    Kokkos::deep_copy(all.x, x);
  }
  Particles parts = share(all, mesh->comm().rank(), mesh->comm().size());
  migrate(parts, *mesh);
  const Painter<float> painter(mesh, Window::CIC);
  Field<float> f(mesh, "fof_count");
  FofChannel fof;
  fof.mean_separation = 2.0; // linking length 0.4 Mpc/h
  fof.options.min_particles = 20;
  paintEulerian("fof_count", f, painter, parts, double(all.size()), &fof);
  const int expect_at[2][3] = {{3, 4, 0}, {9, 2, 5}}; // round(centre / 2) mod 16
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f.real());
  double total = 0;
  int wrong = 0;
  for (int lx = 0; lx < mesh->localNx(); ++lx)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z) {
        const int gx = mesh->xStart() + lx;
        float want = 0;
        for (int g = 0; g < 2; ++g)
          if (gx == expect_at[g][0] && y == expect_at[g][1] && z == expect_at[g][2])
            want = float(members[g]);
        const float got = h(Field<float>::realIndex(lx, y, z, n));
        wrong += got != want;
        total += got;
      }
  double sum = 0;
  int bad = 0;
  MPI_Allreduce(&total, &sum, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  MPI_Allreduce(&wrong, &bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(sum, 55.0);
  // The channel cannot be painted without the FoF settings.
  EXPECT_THROW(paintEulerian("fof_count", f, painter, parts, double(all.size())), std::logic_error);
}

TEST(Outputs, AFieldWithNaNIsNotWritten) {
  const Params params = parseParams(smallParamsToml(16.0, 8, 8, 2), {}, 3);
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 8, 16.0);
  Field<float> f(d, "f");
  fill(f, 0);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  const std::string path = ::testing::TempDir() + "caustic_nan_field.hdf5";
  if (rank == 0)
    std::remove(path.c_str());
  MPI_Barrier(MPI_COMM_WORLD);
  writeField(path, f, "ok", "", 1.0, params); // finite: written
  EXPECT_TRUE(std::filesystem::exists(path));
  MPI_Barrier(MPI_COMM_WORLD);
  if (rank == 0)
    std::remove(path.c_str());
  MPI_Barrier(MPI_COMM_WORLD);
  if (d->localNx() > 0) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f.real());
    h(Field<float>::realIndex(0, 3, 4, 8)) = NAN;
    Kokkos::deep_copy(f.real(), h);
  }
  EXPECT_THROW(writeField(path, f, "bad", "", 1.0, params), CollectiveError);
  MPI_Barrier(MPI_COMM_WORLD);
  EXPECT_FALSE(std::filesystem::exists(path));
}

namespace {
// A (1, 1, n, n, n) tensor holding f(i, j, k) in cell (i, j, k).
template <class F> torch::Tensor cellTensor(int n, const F& f) {
  auto t = torch::empty({1, 1, n, n, n});
  auto acc = t.accessor<float, 5>();
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k)
        acc[0][0][i][j][k] = f(i, j, k);
  return t;
}

// The weights of the VJP: a smooth pattern, one value per cell.
float weightAt(int x, int y, int z) {
  return float(std::cos(0.3 * x - 0.5 * y) + 0.25 * std::sin(0.8 * z + 0.1 * x * y));
}

// The distributed VJP gathered on every rank: (2, n, n, n) values, NaN where not held.
std::vector<float> distributedVjp(const Model& model, int n, int tile) {
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, double(n));
  Field<float> a(d, "a"), b(d, "b"), w(d, "w"), ga(d, "ga"), gb(d, "gb");
  fill(a, 0);
  fill(b, 1);
  auto wr = w.real();
  d->forEachPoint("test::weights", KOKKOS_LAMBDA(const MeshPoint& p) {
    wr(p.index) = weightAt(p.x, p.y, p.z);
  });
  applyDistributedVjp(model, {&a, &b}, {&w}, {&ga, &gb},
                      {model.metadata().receptive_field, tile});
  std::vector<float> out(2 * std::size_t(n) * n * n, NAN);
  for (int c = 0; c < 2; ++c) {
    auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), (c ? gb : ga).real());
    for (int lx = 0; lx < d->localNx(); ++lx)
      for (int y = 0; y < n; ++y)
        for (int z = 0; z < n; ++z)
          out[((std::size_t(c) * n + d->xStart() + lx) * n + y) * n + z] =
              h(Field<float>::realIndex(lx, y, z, n));
  }
  return out;
}

// F(x) = sum_y w(y) model(x)(y) on the whole periodic field, with `pad` periodic cells around it
// (0 for the U-Net, which pads itself).
torch::Tensor wholeFieldObjective(const Model& model, const torch::Tensor& x, int pad) {
  const int n = static_cast<int>(x.size(2));
  const auto w = cellTensor(n, weightAt);
  torch::Tensor xp = x;
  if (pad > 0)
    xp = torch::nn::functional::pad(
        x, torch::nn::functional::PadFuncOptions({pad, pad, pad, pad, pad, pad})
               .mode(torch::kCircular));
  auto y = model.forwardWithGrad(xp);
  if (pad > 0)
    y = y.narrow(2, pad, n).narrow(3, pad, n).narrow(4, pad, n);
  return (y * w).sum();
}
} // namespace

TEST(DistributedInference, VjpEqualsTheWholeFieldGradientAndFiniteDifferences) {
  // The two-convolution model (wrap padding by its radius) and a depth-2 U-Net (the ghost width
  // exceeds the box at 3 ranks); tiles of 3 and 1000 planes.
  const int n = 16;
  for (int which : {0, 1}) {
    const Model model = which == 0 ? convModel() : unetModel(2);
    const int pad = which == 0 ? model.metadata().receptive_field : 0;
    const auto x = wholeField(n).set_requires_grad(true);
    wholeFieldObjective(model, x, pad).backward();
    const auto g = x.grad();
    auto gacc = g.accessor<float, 5>();
    for (int tile : {3, 1000}) {
      const auto dist = distributedVjp(model, n, tile);
      double worst = 0, scale = 0;
      int compared = 0;
      for (int c = 0; c < 2; ++c)
        for (int i = 0; i < n; ++i)
          for (int y = 0; y < n; ++y)
            for (int z = 0; z < n; ++z) {
              const float v = dist[((std::size_t(c) * n + i) * n + y) * n + z];
              if (std::isnan(v))
                continue;
              worst = std::max(worst, double(std::abs(v - gacc[0][c][i][y][z])));
              scale = std::max(scale, double(std::abs(gacc[0][c][i][y][z])));
              ++compared;
            }
      EXPECT_GT(compared, 0);
      EXPECT_GT(scale, 0.0);
      EXPECT_LT(worst, 1e-5 * scale) << "model " << which << ", tile " << tile;
    }
    // The whole-field gradient against a centred finite difference along a smooth direction
    // (the smooth two-convolution model; the U-Net's ReLU kinks and float32 sums of 4096 cells
    // leave its difference quotient 3% off).
    if (which == 1)
      continue;
    torch::NoGradGuard ng;
    const auto v = torch::sin(torch::arange(2 * n * n * n, torch::kFloat32) * 0.37f)
                       .view({1, 2, n, n, n});
    const float eps = 1e-2f;
    const double fd = (wholeFieldObjective(model, x + eps * v, pad).item<double>() -
                       wholeFieldObjective(model, x - eps * v, pad).item<double>()) /
                      (2.0 * eps);
    const double ad = (g * v).sum().item<double>();
    EXPECT_NEAR(fd, ad, 2e-3 * std::abs(ad) + 1e-3) << "model " << which;
  }
}

namespace {
// A halo surrogate: one 3x3x3 convolution from the log1p density to a presence logit and ln M.
Model haloModel() {
  torch::manual_seed(21);
  torch::jit::Module m("HaloConv");
  m.register_parameter("w", torch::randn({2, 1, 3, 3, 3}) * 0.3, false);
  m.register_parameter("b", torch::tensor({-0.5, 0.2}), false);
  m.define(R"(
def forward(self, x):
    return torch.conv3d(x, self.w, self.b, [1, 1, 1], [1, 1, 1])
)");
  return Model(m, ModelMetadata::fromJson(nlohmann::json::parse(R"({
    "kind": "halo_surrogate",
    "inputs": [{"name": "density", "mean": 0.1, "std": 0.8, "transform": "log1p"}],
    "outputs": [{"name": "halo_presence", "mean": -1.0, "std": 1.5, "transform": "logit",
                 "floor": 1e-6},
                {"name": "halo_mass", "mean": 30.0, "std": 0.4, "transform": "log", "floor": 1.0}],
    "receptive_field": 1, "cell_size": {"value": 1.0},
    "halo": {"presence": "halo_presence", "mass": "halo_mass", "log_mass_scatter": 0.35,
             "min_mass": 1e12}})"),
                                                 "test"));
}

// A density contrast above -1 on the global point (i, j, k).
float densityAt(int i, int j, int k) {
  return float(0.6 * std::sin(0.5 * i + 0.3 * j) * std::cos(0.7 * k - 0.2 * i) + 0.1 * j / 16.0);
}
} // namespace

TEST(HaloMassField, ValueAndVjpEqualTheWholeFieldAutograd) {
  const Model model = haloModel();
  const int n = 16;
  // The whole field with torch: E = sigmoid(..) exp(..) exp(s^2/2), sum w E, its gradient.
  auto x = cellTensor(n, densityAt);
  x.set_requires_grad(true);
  const auto xp = torch::nn::functional::pad(
      x, torch::nn::functional::PadFuncOptions({1, 1, 1, 1, 1, 1}).mode(torch::kCircular));
  const auto y = model.forwardWithGrad(xp).narrow(2, 1, n).narrow(3, 1, n).narrow(4, 1, n);
  const auto e = y.select(1, 0) * y.select(1, 1) * std::exp(0.5 * 0.35 * 0.35);
  const auto w = cellTensor(n, weightAt).select(1, 0);
  (e * w).sum().backward();
  const auto g = x.grad();
  auto gacc = g.accessor<float, 5>();
  const auto e_values = e.detach().contiguous();
  auto eacc = e_values.accessor<float, 4>();

  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, double(n));
  Field<float> delta(d, "delta"), wf(d, "w"), out(d, "E"), grad(d, "g");
  auto dr = delta.real(), wr = wf.real();
  d->forEachPoint("test::halo_inputs", KOKKOS_LAMBDA(const MeshPoint& p) {
    dr(p.index) = densityAt(p.x, p.y, p.z);
    wr(p.index) = weightAt(p.x, p.y, p.z);
  });
  for (int tile : {3, 1000}) {
    const HaloMassField field(model, {1, tile});
    field.value(delta, out);
    field.vjp(delta, wf, grad);
    auto ho = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), out.real());
    auto hg = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), grad.real());
    double we = 0, se = 0, wg = 0, sg = 0;
    for (int lx = 0; lx < d->localNx(); ++lx)
      for (int j = 0; j < n; ++j)
        for (int k = 0; k < n; ++k) {
          const int i = d->xStart() + lx;
          const std::size_t q = Field<float>::realIndex(lx, j, k, n);
          we = std::max(we, double(std::abs(ho(q) - eacc[0][i][j][k])));
          se = std::max(se, double(std::abs(eacc[0][i][j][k])));
          wg = std::max(wg, double(std::abs(hg(q) - gacc[0][0][i][j][k])));
          sg = std::max(sg, double(std::abs(gacc[0][0][i][j][k])));
        }
    if (d->localNx() > 0) {
      EXPECT_GT(se, 0.0);
      EXPECT_GT(sg, 0.0);
    }
    EXPECT_LE(we, 1e-5 * se) << "tile " << tile;
    EXPECT_LE(wg, 1e-5 * sg) << "tile " << tile;
  }
  // Not a halo surrogate: refused.
  EXPECT_THROW(HaloMassField(convModel(), {2, 4}), std::invalid_argument);
}

// ---- Particle super-resolution -------------------------------------------------------------

// A factor-2 super-resolution U-Net (random weights, residual outputs) applied in-situ to an
// n^3 lattice at 1, 2, 3 ranks: every high-resolution particle equals the model applied with
// torch to the whole periodic lattice on one process, read at its site, and the particle set is
// the complete (2n)^3 lattice once.
TEST(SuperResolution, ParticlesEqualTheModelOnTheWholeLattice) {
  const int n = 16, f = 2, f3 = 8;
  const double L = 32.0, offset = 0.25;
  torch::manual_seed(5);
  UNetConfig cfg;
  cfg.in_channels = 6;
  cfg.out_channels = 6 * f3;
  cfg.depth = 1;
  cfg.width = 4;
  ModelMetadata meta;
  meta.kind = "particle_super_resolution";
  const auto& names = superResolutionChannels();
  for (int c = 0; c < 6; ++c)
    meta.inputs.push_back({names[c], 0.0, c < 3 ? 1.5 : 3.0});
  for (int c = 0; c < 6; ++c)
    for (int o = 0; o < f3; ++o) {
      Channel out(superResolutionOutput(names[c], o / 4, (o / 2) % 2, o % 2), 0.0, 0.3);
      out.residual_of = names[c];
      meta.outputs.push_back(out);
    }
  meta.receptive_field = cfg.receptiveField();
  meta.cell_size = L / n;
  meta.super_resolution = SuperResolutionInfo{f};
  // Through JSON, as a model file would come: the record is checked there.
  meta = ModelMetadata::fromJson(meta.toJson(), "test");
  const Model model(UNet3d(cfg), meta);

  auto mesh = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 2 * n, L);
  auto lattice = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, L);
  Particles parts = latticeParticles(n, L, *mesh);
  const Particles hr =
      superResolveParticles(model, parts, lattice, offset, {meta.receptive_field, 3});

  // The reference: the analytic fields of latticeParticles on the whole lattice.
  auto x = torch::zeros({1, 6, n, n, n});
  auto acc = x.accessor<float, 5>();
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      for (int k = 0; k < n; ++k) {
        const std::size_t s = (std::size_t(i) * n + j) * n + k;
        // latticeParticles puts q at i h + 0.25: the same offset.
        acc[0][0][i][j][k] = float(1.7 * std::sin(2 * M_PI * j / n));
        acc[0][1][i][j][k] = float(-0.9 * std::cos(2 * M_PI * i / n));
        acc[0][2][i][j][k] = float(0.4 * std::sin(2 * M_PI * (i + k) / n));
        for (int c = 0; c < 3; ++c)
          acc[0][3 + c][i][j][k] = float((c + 1) * std::cos(0.3 * s) + 0.5);
      }
  const auto ref = model.forward(x);
  auto racc = ref.accessor<float, 5>();
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), hr.x);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), hr.p);
  auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), hr.id);
  const long nh = f * n;
  const double dq = L / nh;
  double ex = 0, ep = 0, scale = 0;
  double id_sum = 0;
  for (std::size_t m = 0; m < hr.size(); ++m) {
    const long id = long(hid(m));
    const long I = id / (nh * nh), J = (id / nh) % nh, K = id % nh;
    const int o = int((I % f) * 4 + (J % f) * 2 + K % f);
    const long site[3] = {I, J, K};
    for (int d = 0; d < 3; ++d) {
      const int cd = meta.outputIndex(superResolutionOutput(names[d], o / 4, (o / 2) % 2, o % 2));
      const int cp =
          meta.outputIndex(superResolutionOutput(names[3 + d], o / 4, (o / 2) % 2, o % 2));
      const double want = periodicWrap(site[d] * dq + offset + racc[0][cd][I / f][J / f][K / f], L);
      double dx = hx(m, d) - want;
      dx -= L * std::round(dx / L);
      ex = std::max(ex, std::abs(dx));
      ep = std::max(ep, std::abs(hp(m, d) - racc[0][cp][I / f][J / f][K / f]));
      scale = std::max(scale, double(std::abs(racc[0][cp][I / f][J / f][K / f])));
      EXPECT_GE(hx(m, d), 0.0);
      EXPECT_LT(hx(m, d), L);
    }
    id_sum += double(id);
  }
  EXPECT_LT(ex, 1e-5 * L);
  EXPECT_LT(ep, 1e-5 * std::max(1.0, scale));
  // The whole (2n)^3 lattice, each site once (count and sum of IDs over the ranks).
  double counts[2] = {double(hr.size()), id_sum}, tot[2];
  MPI_Allreduce(counts, tot, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  const double N = double(nh) * nh * nh;
  EXPECT_EQ(tot[0], N);
  EXPECT_EQ(tot[1], N * (N - 1) / 2);
  // The residual is not trivially zero: the model moved the particles off their parents'
  // displacements (else the test would not see the network at all).
  EXPECT_GT((ref.view({6, f3, n, n, n}) - x.view({6, 1, n, n, n})).abs().max().item<double>(),
            1e-3);
  // Not a super-resolution model: refused.
  EXPECT_THROW(superResolveParticles(convModel(), parts, lattice, offset, {2, 4}),
               std::invalid_argument);
}
