// Particle attributes and the migration that carries them, at 1, 2, 3 (and 4) ranks: the
// registry's rules; attributes follow their particles through Migrator (with growth of the
// arrays) and toLattice, without changing the order of x, p and id; the migration order is
// the documented one (holes filled from the end, arrivals by rank), computed independently;
// a companion's x and p travel with their particles.
#include "helpers.hpp"
#include "pm/particles/migrate.hpp"

#include <gtest/gtest.h>

#include <cstring>

using namespace caustic;
using namespace caustic::test;

namespace {

constexpr double kBox = 20.0;

Particles sharedParticles(std::size_t count, unsigned seed) {
  Particles all = randomParticles(count, kBox, seed);
  for (std::size_t i = 0; i < all.size(); ++i)
    for (int c = 0; c < 3; ++c)
      all.p(i, c) = std::cos(0.1 * i + c);
  // Round-robin shares: not on their owners yet, and no spare room (arrivals grow the arrays).
  return share(all, worldRank(), worldSize());
}

// The attribute values of particle `id`.
std::int32_t species(std::uint64_t id) {
  return static_cast<std::int32_t>(id % 3);
}
double mass(std::uint64_t id) {
  return 1.0 + 1e-3 * double(id);
}
std::int64_t halo(std::uint64_t id) {
  return 7 * static_cast<std::int64_t>(id) - 5;
}
float output(std::uint64_t id, int c) {
  return c == 0 ? 0.5f * float(id) : -float(id);
}

void addAttributes(Particles& parts) {
  auto s = parts.addAttribute<std::int32_t>("Species");
  auto m = parts.addAttribute<double>("Masses", 1, "1e10 Msun/h");
  auto h = parts.addAttribute<std::int64_t>("HaloID");
  auto o = parts.addAttribute<float>("Outputs", 2);
  auto t = parts.addAttribute<std::uint64_t>("Tag", 3);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::uint64_t id = parts.id(i);
    s(i, 0) = species(id);
    m(i, 0) = mass(id);
    h(i, 0) = halo(id);
    for (int c = 0; c < 2; ++c)
      o(i, c) = output(id, c);
    for (int c = 0; c < 3; ++c)
      t(i, c) = id * 3 + c;
  }
}

// Particles whose attributes are not those of their IDs.
int wrongAttributes(const Particles& parts) {
  auto s = parts.attribute<std::int32_t>("Species");
  auto m = parts.attribute<double>("Masses");
  auto h = parts.attribute<std::int64_t>("HaloID");
  auto o = parts.attribute<float>("Outputs");
  auto t = parts.attribute<std::uint64_t>("Tag");
  int wrong = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::uint64_t id = parts.id(i);
    bool ok = s(i, 0) == species(id) && m(i, 0) == mass(id) && h(i, 0) == halo(id);
    for (int c = 0; c < 2; ++c)
      ok = ok && o(i, c) == output(id, c);
    for (int c = 0; c < 3; ++c)
      ok = ok && t(i, c) == id * 3 + c;
    wrong += !ok;
  }
  return wrong;
}

bool sameArrays(const Particles& a, const Particles& b) {
  const std::size_t n = a.size();
  return n == b.size() && std::memcmp(a.x.data(), b.x.data(), 3 * n * sizeof(double)) == 0 &&
         std::memcmp(a.p.data(), b.p.data(), 3 * n * sizeof(double)) == 0 &&
         std::memcmp(a.id.data(), b.id.data(), n * sizeof(std::uint64_t)) == 0;
}

// Every rank's IDs, in order, on every rank.
std::vector<std::vector<std::uint64_t>> allIds(const Particles& parts) {
  const int size = worldSize();
  int n = static_cast<int>(parts.size());
  std::vector<int> counts(size), displ(size, 0);
  MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, MPI_COMM_WORLD);
  for (int r = 1; r < size; ++r)
    displ[r] = displ[r - 1] + counts[r - 1];
  std::vector<std::uint64_t> flat(displ[size - 1] + counts[size - 1]);
  MPI_Allgatherv(parts.id.data(), n, MPI_UINT64_T, flat.data(), counts.data(), displ.data(),
                 MPI_UINT64_T, MPI_COMM_WORLD);
  std::vector<std::vector<std::uint64_t>> out(size);
  for (int r = 0; r < size; ++r)
    out[r].assign(flat.begin() + displ[r], flat.begin() + displ[r] + counts[r]);
  return out;
}

} // namespace

TEST(ParticleAttributes, RegistryRules) {
  Particles parts(10, 12);
  auto m = parts.addAttribute<double>("Masses");
  EXPECT_EQ(m.extent(0), 12u);
  EXPECT_EQ(m.extent(1), 1u);
  parts.addAttribute<std::int32_t>("Alpha", 4);
  // Sorted by name; typed lookups check the type.
  ASSERT_EQ(parts.attributes().size(), 2u);
  EXPECT_EQ(parts.attributes()[0].name(), "Alpha");
  EXPECT_EQ(parts.attributes()[0].rowBytes(), 16u);
  EXPECT_THROW(parts.attribute<float>("Masses"), std::invalid_argument);
  EXPECT_THROW(parts.attribute<double>("Mass"), std::invalid_argument);
  EXPECT_THROW(parts.addAttribute<double>("Masses"), std::invalid_argument);      // taken
  EXPECT_THROW(parts.addAttribute<double>("Coordinates"), std::invalid_argument); // reserved
  EXPECT_THROW(parts.addAttribute<double>("a/b"), std::invalid_argument);         // not a word
  EXPECT_THROW(parts.addAttribute<double>(""), std::invalid_argument);
  EXPECT_THROW(parts.addAttribute<double>("Zero", 0), std::invalid_argument);
  // Growth keeps the values.
  m(9, 0) = 4.5;
  parts.reserve(100);
  EXPECT_EQ(parts.attribute<double>("Masses").extent(0), 100u);
  EXPECT_EQ(parts.attribute<double>("Masses")(9, 0), 4.5);
  EXPECT_EQ(parts.attribute<std::int32_t>("Alpha").extent(0), 100u);
  const Particles like = parts.withSameAttributes(3);
  EXPECT_TRUE(like.hasAttribute("Alpha") && like.hasAttribute("Masses"));
  EXPECT_EQ(like.attribute<double>("Masses")(0, 0), 0.0);
  parts.removeAttribute("Alpha");
  EXPECT_FALSE(parts.hasAttribute("Alpha"));
}

TEST(ParticleAttributes, SurviveMigrationAndGrowthWithoutChangingTheOrder) {
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, 16, kBox);
  Particles plain = sharedParticles(3000, 3);
  Particles parts = sharedParticles(3000, 3);
  addAttributes(parts);
  Migrator withAttributes(d), without(d);
  const std::size_t left = withAttributes(parts);
  EXPECT_EQ(left, without(plain));
  EXPECT_TRUE(sameArrays(parts, plain)); // the attributes change nothing else
  EXPECT_EQ(wrongAttributes(parts), 0);
  int off = 0;
  for (std::size_t i = 0; i < parts.size(); ++i)
    off += d->ownerOfPosition(parts.x(i, 0)) != d->comm().rank();
  EXPECT_EQ(off, 0);
  unsigned long long n = parts.size(), total = 0;
  MPI_Allreduce(&n, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, MPI_COMM_WORLD);
  EXPECT_EQ(total, 3000u);
  // A drift that moves particles across slabs, the migration planned by it, and once more.
  for (int round = 0; round < 2; ++round) {
    withAttributes.drift(parts, 0.4, kBox);
    without.drift(plain, 0.4, kBox);
    EXPECT_EQ(withAttributes(parts), without(plain));
    EXPECT_TRUE(sameArrays(parts, plain));
    EXPECT_EQ(wrongAttributes(parts), 0);
  }
}

TEST(Migrator, OrderIsHolesFilledFromTheEndThenArrivalsByRank) {
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, 16, kBox);
  const int me = d->comm().rank(), size = d->comm().size();
  Particles parts = sharedParticles(2000, 5);
  // The reference, from every rank's particles before: staying particles keep their rows below
  // the new end, each hole there takes the staying particles above it, last first; arrivals
  // follow by source rank, in their order there.
  const auto before = allIds(parts);
  std::vector<std::vector<int>> dest(size);
  {
    const auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
    std::vector<double> mine(parts.size());
    for (std::size_t i = 0; i < parts.size(); ++i)
      mine[i] = x(i, 0);
    for (int r = 0; r < size; ++r) {
      std::vector<double> xs(before[r].size());
      if (r == me)
        xs = mine;
      MPI_Bcast(xs.data(), static_cast<int>(xs.size()), MPI_DOUBLE, r, MPI_COMM_WORLD);
      for (double v : xs)
        dest[r].push_back(d->ownerOfPosition(v));
    }
  }
  std::size_t kept = 0;
  for (int v : dest[me])
    kept += v == me;
  std::vector<std::uint64_t> above, want;
  for (std::size_t i = before[me].size(); i-- > kept;)
    if (dest[me][i] == me)
      above.push_back(before[me][i]);
  for (std::size_t i = 0, next = 0; i < kept; ++i)
    want.push_back(dest[me][i] == me ? before[me][i] : above[next++]);
  for (int r = 0; r < size; ++r)
    for (std::size_t i = 0; i < before[r].size(); ++i)
      if (r != me && dest[r][i] == me)
        want.push_back(before[r][i]);

  Migrator m(d);
  m(parts);
  ASSERT_EQ(parts.size(), want.size());
  int wrong = 0;
  for (std::size_t i = 0; i < want.size(); ++i)
    wrong += parts.id(i) != want[i];
  EXPECT_EQ(wrong, 0);
}

TEST(Migrator, CompanionAndAttributesFollowToTheLattice) {
  const int n = 8;
  auto lattice = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, n, kBox);
  Particles parts = sharedParticles(n * n * n, 9); // IDs 0 .. n^3 - 1, anywhere
  addAttributes(parts);
  Particles adj(parts.size(), parts.capacity());
  for (std::size_t i = 0; i < parts.size(); ++i)
    for (int c = 0; c < 3; ++c) {
      adj.x(i, c) = 10.0 * double(parts.id(i)) + c;
      adj.p(i, c) = -double(parts.id(i)) - c;
    }
  Migrator(lattice).toLattice(parts, &adj);
  const std::uint64_t first = static_cast<std::uint64_t>(lattice->xStart()) * n * n;
  ASSERT_EQ(parts.size(), static_cast<std::size_t>(lattice->localNx()) * n * n);
  ASSERT_EQ(adj.size(), parts.size());
  int wrong = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    bool ok = parts.id(i) == first + i && adj.id(i) == parts.id(i);
    for (int c = 0; c < 3; ++c)
      ok = ok && adj.x(i, c) == 10.0 * double(parts.id(i)) + c &&
           adj.p(i, c) == -double(parts.id(i)) - c;
    wrong += !ok;
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(wrongAttributes(parts), 0);
}

TEST(Migrator, CompanionTravelsWithItsParticles) {
  auto d = std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, 16, kBox);
  Particles parts = sharedParticles(1500, 11);
  Particles adj(parts.size(), parts.capacity());
  for (std::size_t i = 0; i < parts.size(); ++i)
    for (int c = 0; c < 3; ++c) {
      adj.x(i, c) = 3.0 * double(parts.id(i)) + c;
      adj.p(i, c) = 0.5 * double(parts.id(i)) - c;
    }
  Migrator m(d);
  m(parts, &adj);
  ASSERT_EQ(adj.size(), parts.size());
  int wrong = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    bool ok = adj.id(i) == parts.id(i);
    for (int c = 0; c < 3; ++c)
      ok = ok && adj.x(i, c) == 3.0 * double(parts.id(i)) + c &&
           adj.p(i, c) == 0.5 * double(parts.id(i)) - c;
    wrong += !ok;
  }
  EXPECT_EQ(wrong, 0);
}

TEST(ParticleAttributes, CopyParticlesIsDeepAndCarriesThem) {
  Particles a = sharedParticles(50, 9);
  auto m = a.addAttribute<double>("Mass");
  for (std::size_t i = 0; i < a.size(); ++i)
    m(i, 0) = mass(a.id(i));
  Particles b = copyParticles(a);
  ASSERT_EQ(b.size(), a.size());
  ASSERT_TRUE(b.hasAttribute("Mass"));
  auto mb = b.attribute<double>("Mass");
  for (std::size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(mb(i, 0), mass(b.id(i)));
    EXPECT_EQ(b.x(i, 0), a.x(i, 0));
  }
  // Deep: changing the copy leaves the original alone.
  if (b.size() > 0) {
    mb(0, 0) = -1.0;
    b.x(0, 0) = -1.0;
    EXPECT_EQ(m(0, 0), mass(a.id(0)));
    EXPECT_NE(a.x(0, 0), -1.0);
  }
}
