// The halo-surrogate sampler (pm/analysis/halo_sampler): the catalogue does not depend on the
// decomposition (the same as on one rank, to the bit), its statistics follow the fields (a
// binomial occupation, the truncated lognormal masses), positions stay within their voxel, the
// momentum is the voxel's, and bad options are refused.
#include "helpers.hpp"
#include "pm/analysis/halo_sampler.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <memory>

using namespace caustic;

namespace {

constexpr int kN = 24;
constexpr double kBox = 48.0, kMp = 1e11;

// presence p(x) = 0.05 + 0.4 * (global x-plane % 3 == 0), mass 10^(12 + y / N) Msun/h,
// momentum (x, -y, z + 0.5): every value a function of the global point.
struct Fields {
  std::shared_ptr<const SlabDecomposition> d;
  Field<float> presence, mass, px, py, pz;
  explicit Fields(MPI_Comm comm)
      : d(std::make_shared<SlabDecomposition>(comm, kN, kBox)), presence(d, "p"), mass(d, "m"),
        px(d, "px"), py(d, "py"), pz(d, "pz") {
    const auto p = presence.real(), m = mass.real(), a = px.real(), b = py.real(), c = pz.real();
    d->forEachPoint("test::fields", KOKKOS_LAMBDA(const MeshPoint& q) {
      p(q.index) = q.x % 3 == 0 ? 0.45f : 0.05f;
      m(q.index) = static_cast<float>(km::pow(10.0, 12.0 + double(q.y) / kN));
      a(q.index) = float(q.x);
      b(q.index) = -float(q.y);
      c(q.index) = float(q.z) + 0.5f;
    });
  }
  HaloCatalogue sample(const HaloSamplerOptions& o) const {
    return sampleHalos(presence, mass, {&px, &py, &pz}, o);
  }
};

HaloSamplerOptions options(double scatter, double min_mass) {
  HaloSamplerOptions o;
  o.seed = 77;
  o.output = 10000;
  o.log_mass_scatter = scatter;
  o.min_mass = min_mass;
  o.particle_mass = kMp;
  return o;
}

} // namespace

TEST(HaloSampler, TheSameCatalogueAtEveryRankCountAsOnOneRank) {
  const auto o = options(0.3, 2e11);
  const HaloCatalogue cat = Fields(MPI_COMM_WORLD).sample(o);
  const HaloCatalogue ref = Fields(MPI_COMM_SELF).sample(o);
  ASSERT_EQ(cat.size(), ref.size());
  ASSERT_GT(cat.size(), 100u);
  EXPECT_EQ(cat.label, ref.label);
  EXPECT_EQ(cat.count, ref.count);
  EXPECT_EQ(cat.pos, ref.pos);
  EXPECT_EQ(cat.vel, ref.vel);
  // Another output stream or seed gives another catalogue.
  auto o2 = o;
  o2.output = 5000;
  const HaloCatalogue other = Fields(MPI_COMM_WORLD).sample(o2);
  EXPECT_NE(other.label, cat.label);
}

TEST(HaloSampler, OccupationPositionsMomentaAndMassesFollowTheFields) {
  const auto o = options(0.0, 1.0);
  const HaloCatalogue cat = Fields(MPI_COMM_WORLD).sample(o);
  const double h = kBox / kN;
  // Expected counts: planes x % 3 == 0 hold 0.45 per voxel, the others 0.05 (binomial).
  double n_hi = 0, n_lo = 0;
  for (std::size_t g = 0; g < cat.size(); ++g) {
    const std::uint64_t lab = cat.label[g];
    const int x = int(lab / (kN * kN)), y = int(lab / kN % kN), z = int(lab % kN);
    if (g > 0) {
      EXPECT_LT(cat.label[g - 1], lab) << "sorted by label";
    }
    (x % 3 == 0 ? n_hi : n_lo) += 1;
    const int idx[3] = {x, y, z};
    for (int a = 0; a < 3; ++a) {
      // Within half a cell of the mesh point, periodically.
      double dx = cat.pos[3 * g + a] - idx[a] * h;
      dx -= kBox * std::round(dx / kBox);
      EXPECT_LE(std::abs(dx), 0.5 * h + 1e-12);
      EXPECT_GE(cat.pos[3 * g + a], 0.0);
      EXPECT_LT(cat.pos[3 * g + a], kBox);
    }
    EXPECT_EQ(cat.vel[3 * g + 0], double(x));
    EXPECT_EQ(cat.vel[3 * g + 1], -double(y));
    EXPECT_EQ(cat.vel[3 * g + 2], double(z) + 0.5);
    // No scatter: the count is the rounded mass over the particle mass.
    const double m = std::pow(10.0, 12.0 + double(y) / kN);
    EXPECT_EQ(double(cat.count[g]), std::max(1.0, std::floor(double(float(m)) / kMp + 0.5)));
  }
  const double v_hi = 8.0 * kN * kN, v_lo = 16.0 * kN * kN; // voxels on each kind of plane
  EXPECT_NEAR(n_hi, 0.45 * v_hi, 5 * std::sqrt(0.45 * 0.55 * v_hi));
  EXPECT_NEAR(n_lo, 0.05 * v_lo, 5 * std::sqrt(0.05 * 0.95 * v_lo));
}

TEST(HaloSampler, MassesAreTruncatedLognormals) {
  // Scatter 0.5 in ln M about ln m(y), truncated at 10^12: below it nothing; for y where
  // m(y) is 3 sigma above the cut (y >= 16) the draws have the mean and width of the normal.
  const double sigma = 0.5, cut = 1e12;
  const HaloCatalogue cat = Fields(MPI_COMM_WORLD).sample(options(sigma, cut));
  double s1 = 0, s2 = 0, n = 0;
  for (std::size_t g = 0; g < cat.size(); ++g) {
    const int y = int(cat.label[g] / kN % kN);
    const double m = double(cat.count[g]) * kMp;
    EXPECT_GE(m, cut * (1 - 0.5 * kMp / cut) - 1.0); // rounding to whole particles
    if (12.0 + double(y) / kN >= 12.0 + 3 * sigma / std::log(10.0)) {
      const double r = std::log(m) - std::log(double(float(std::pow(10.0, 12.0 + double(y) / kN))));
      s1 += r;
      s2 += r * r;
      n += 1;
    }
  }
  ASSERT_GT(n, 0);
  ASSERT_GT(n, 300); // 8 rows of 24 x 24 voxels, 0.18 halos per voxel on average
  const double mean = s1 / n, sd = std::sqrt(s2 / n - mean * mean);
  EXPECT_NEAR(mean, 0.0, 5 * sigma / std::sqrt(n) + 0.01); // +0.01: whole-particle rounding
  EXPECT_NEAR(sd, sigma, 5 * sigma / std::sqrt(2 * n) + 0.01);
}

TEST(HaloSampler, RefusesBadOptions) {
  Fields f(MPI_COMM_WORLD);
  EXPECT_THROW(f.sample(options(-1.0, 1e12)), std::invalid_argument);
  EXPECT_THROW(f.sample(options(0.1, 0.0)), std::invalid_argument);
  auto o = options(0.1, 1e12);
  o.particle_mass = 0.0;
  EXPECT_THROW(f.sample(o), std::invalid_argument);
}

TEST(HaloSampler, TopSelectionTakesTheMostProbableVoxels) {
  // A presence with distinct values: p = 0.9 (x + N y + N^2 z + 1) / (N^3 + 1) squared, so the
  // top round(sum p) voxels are the last ones of that order, at every rank count.
  auto make = [&](MPI_Comm comm) {
    auto dd = std::make_shared<SlabDecomposition>(comm, kN, kBox);
    auto p = std::make_unique<Field<float>>(dd, "p");
    auto m = std::make_unique<Field<float>>(dd, "m");
    const auto pr = p->real(), mr = m->real();
    dd->forEachPoint("test::top", KOKKOS_LAMBDA(const MeshPoint& q) {
      const double u = double(q.x + kN * q.y + kN * kN * q.z + 1) / (kN * kN * kN + 1);
      pr(q.index) = float(0.9 * u * u);
      mr(q.index) = 5e12f;
    });
    return std::make_pair(std::move(p), std::move(m));
  };
  auto o = options(0.2, 1e12);
  o.top = true;
  const auto [p, m] = make(MPI_COMM_WORLD);
  const HaloCatalogue cat = sampleHalos(*p, *m, {nullptr, nullptr, nullptr}, o);
  const auto [ps, ms] = make(MPI_COMM_SELF);
  const HaloCatalogue ref = sampleHalos(*ps, *ms, {nullptr, nullptr, nullptr}, o);
  // sum p = 0.9 sum u^2 over the N^3 voxels, computed here in double.
  double sum = 0;
  for (long i = 1; i <= long(kN) * kN * kN; ++i) {
    const double u = double(i) / (kN * kN * kN + 1);
    sum += double(float(0.9 * u * u));
  }
  const auto expected = static_cast<std::size_t>(std::round(sum));
  EXPECT_EQ(cat.size(), expected);
  EXPECT_EQ(cat.label, ref.label);
  EXPECT_EQ(cat.pos, ref.pos);
  EXPECT_EQ(cat.count, ref.count);
  // Every selected voxel's order index x + N y + N^2 z is among the `expected` largest.
  const long first = long(kN) * kN * kN - long(expected);
  for (std::uint64_t lab : cat.label) {
    const long x = long(lab / (kN * kN)), y = long(lab / kN % kN), z = long(lab % kN);
    EXPECT_GE(x + kN * y + kN * kN * z, first);
  }
  // No momentum fields: zero velocities.
  for (double v : cat.vel)
    EXPECT_EQ(v, 0.0);
}

TEST(HaloSampler, RefusesNonsenseFields) {
  // A NaN presence on one rank's plane, then a zero mass: refused on every rank alike.
  for (int which : {0, 1}) {
    Fields f(MPI_COMM_WORLD);
    auto& field = which == 0 ? f.presence : f.mass;
    const auto r = field.real();
    f.d->forEachPoint("test::poison", KOKKOS_LAMBDA(const MeshPoint& q) {
      if (q.x == kN - 1 && q.y == 3 && q.z == 5)
        r(q.index) = which == 0 ? std::nanf("") : 0.0f;
    });
    EXPECT_THROW(f.sample(options(0.1, 1e12)), std::runtime_error) << which;
  }
}
