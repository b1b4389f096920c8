// The Distributor at 1, 2, 3 and 4 ranks against a serial reference: every rank generates the
// items and destinations of all ranks, computes what it must receive (and, for migrate, the
// order of holes filled from the end, then arrivals by rank), and compares. Forward then
// reverse, and migrate then unmigrate, restore the original arrays exactly. Columns of several
// types travel together, ranks hold no item, send nothing or receive nothing.
#include "helpers.hpp"
#include "pm/particles/distributor.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

using namespace caustic;
using namespace caustic::test;

namespace {

struct Pod {
  std::int32_t a;
  double b;
  char c[5];
};

// The value of item i of rank r: a key unique over all ranks.
std::uint64_t keyOf(int r, std::size_t i) {
  return static_cast<std::uint64_t>(r) * 1000003u + i;
}

// The items of every rank in a scenario: count and destinations (same on every rank).
struct Scenario {
  std::vector<std::vector<int>> dest; // [rank][item]
};

// Random destinations, with: rank 1 holding no item (3 ranks or more), rank 0 keeping all its
// items (it sends nothing to the others), and no item bound for the last rank (it receives
// nothing but its own, at 2 ranks or more).
Scenario randomScenario(int size, unsigned seed) {
  Scenario s;
  s.dest.resize(size);
  for (int r = 0; r < size; ++r) {
    std::mt19937 rng(seed * 131 + r);
    const std::size_t n = (size >= 3 && r == 1) ? 0 : 20 + rng() % 60;
    const int targets = size >= 2 ? size - 1 : 1; // ranks [0, size - 2], plus self
    for (std::size_t i = 0; i < n; ++i) {
      int d = static_cast<int>(rng() % (targets + 1));
      d = d == targets ? r : d; // some stay
      if (r == 0)
        d = 0;
      s.dest[r].push_back(d);
    }
  }
  return s;
}

// The columns of one rank's items, `rows` rows (>= its items, for room).
struct Table {
  Kokkos::View<double* [3]> x;
  Kokkos::View<double*> w;
  Kokkos::View<std::uint64_t*> key;
  Kokkos::View<int*> small;
  Kokkos::View<Pod*> pod;
  explicit Table(std::size_t rows)
      : x("x", rows), w("w", rows), key("key", rows), small("small", rows), pod("pod", rows) {}
  Distributor::Columns columns() const {
    return {Distributor::column(x), Distributor::column(w), Distributor::column(key),
            Distributor::column(small), Distributor::column(pod)};
  }
  void set(std::size_t row, std::uint64_t k) {
    for (int c = 0; c < 3; ++c)
      x(row, c) = double(k) + 0.25 * c;
    w(row) = std::sin(double(k));
    key(row) = k * 2654435761u;
    small(row) = static_cast<int>(k % 7) - 3;
    pod(row) =
        Pod{static_cast<std::int32_t>(k % 1000), -double(k), {'a', 'b', char(k % 100), 0, 1}};
  }
  // Whether row `row` holds the values of key k.
  bool holds(std::size_t row, std::uint64_t k) const {
    Table t(1);
    t.set(0, k);
    bool same = w(row) == t.w(0) && key(row) == t.key(0) && small(row) == t.small(0) &&
                pod(row).a == t.pod(0).a && pod(row).b == t.pod(0).b &&
                std::memcmp(pod(row).c, t.pod(0).c, 5) == 0;
    for (int c = 0; c < 3; ++c)
      same = same && x(row, c) == t.x(0, c);
    return same;
  }
  // Whether rows [0, n) equal those of `o`, byte for byte.
  bool sameRows(const Table& o, std::size_t n) const {
    return std::memcmp(x.data(), o.x.data(), n * sizeof(double) * 3) == 0 &&
           std::memcmp(w.data(), o.w.data(), n * sizeof(double)) == 0 &&
           std::memcmp(key.data(), o.key.data(), n * sizeof(std::uint64_t)) == 0 &&
           std::memcmp(small.data(), o.small.data(), n * sizeof(int)) == 0 &&
           std::memcmp(pod.data(), o.pod.data(), n * sizeof(Pod)) == 0;
  }
};

// A byte-exact copy (padding included).
Table copyOf(const Table& t) {
  Table c(t.key.extent(0));
  Kokkos::deep_copy(c.x, t.x);
  Kokkos::deep_copy(c.w, t.w);
  Kokkos::deep_copy(c.key, t.key);
  Kokkos::deep_copy(c.small, t.small);
  Kokkos::deep_copy(c.pod, t.pod);
  return c;
}

Table itemsOf(int rank, const Scenario& s, std::size_t rows) {
  Table t(std::max(rows, s.dest[rank].size()));
  for (std::size_t i = 0; i < s.dest[rank].size(); ++i)
    t.set(i, keyOf(rank, i));
  return t;
}

Kokkos::View<int*> destView(const std::vector<int>& d) {
  Kokkos::View<int*> v("dest", d.size());
  for (std::size_t i = 0; i < d.size(); ++i)
    v(i) = d[i];
  return v;
}

// The keys rank `me` receives, in order: by source rank, then by item (serial reference).
std::vector<std::uint64_t> expectedArrivals(const Scenario& s, int me, bool self) {
  std::vector<std::uint64_t> keys;
  for (int r = 0; r < static_cast<int>(s.dest.size()); ++r)
    for (std::size_t i = 0; i < s.dest[r].size(); ++i)
      if (s.dest[r][i] == me && (self || r != me))
        keys.push_back(keyOf(r, i));
  return keys;
}

// The keys of rank `me` after a migration that keeps its own items in place: the first
// `kept` rows hold the staying items, each hole taken by the staying items above `kept`, last
// first; then the arrivals.
std::vector<std::uint64_t> expectedAfterMigrate(const Scenario& s, int me) {
  const auto& d = s.dest[me];
  std::size_t kept = 0;
  for (int v : d)
    kept += v == me;
  std::vector<std::uint64_t> above; // staying items at rows >= kept, from the end
  for (std::size_t i = d.size(); i-- > kept;)
    if (d[i] == me)
      above.push_back(keyOf(me, i));
  std::vector<std::uint64_t> keys;
  std::size_t next = 0;
  for (std::size_t i = 0; i < kept; ++i)
    keys.push_back(d[i] == me ? keyOf(me, i) : above[next++]);
  for (auto k : expectedArrivals(s, me, false))
    keys.push_back(k);
  return keys;
}

} // namespace

TEST(Distributor, ForwardMatchesTheSerialReferenceAndReverseRestores) {
  const int me = worldRank(), size = worldSize();
  Distributor plan; // re-planned: buffers reused across rounds and modes
  for (unsigned seed : {1u, 2u, 3u})
    for (auto local : {Distributor::Local::Send, Distributor::Local::Stay}) {
      const bool self = local == Distributor::Local::Send;
      const Scenario s = randomScenario(size, seed);
      const std::size_t n = s.dest[me].size();
      const Table mine = itemsOf(me, s, n);
      plan.plan(MPI_COMM_WORLD, destView(s.dest[me]), n, local);
      const auto want = expectedArrivals(s, me, self);
      ASSERT_EQ(plan.imported(), want.size()) << "seed " << seed << " self " << self;
      std::size_t sent = 0;
      unsigned long long total = 0;
      for (int r = 0; r < size; ++r)
        for (std::size_t i = 0; i < s.dest[r].size(); ++i)
          if (self || s.dest[r][i] != r) {
            total += 1;
            sent += r == me;
          }
      EXPECT_EQ(plan.exported(), sent);
      EXPECT_EQ(plan.totalExported(), total);
      EXPECT_EQ(plan.size(), n);
      for (int r = 0; r < size; ++r) {
        int to_r = 0, from_r = 0;
        for (std::size_t i = 0; i < n; ++i)
          to_r += s.dest[me][i] == r && (self || r != me);
        for (std::size_t i = 0; i < s.dest[r].size(); ++i)
          from_r += s.dest[r][i] == me && (self || r != me);
        EXPECT_EQ(plan.sendCounts()[r], to_r) << "to rank " << r;
        EXPECT_EQ(plan.recvCounts()[r], from_r) << "from rank " << r;
      }
      if (size >= 2 && me == size - 1) {
        EXPECT_EQ(plan.imported(), self ? static_cast<std::size_t>(
                                              std::count(s.dest[me].begin(), s.dest[me].end(), me))
                                        : 0u);
      }

      Table got(want.size());
      plan.forward(mine.columns(), got.columns());
      int wrong = 0;
      for (std::size_t j = 0; j < want.size(); ++j)
        wrong += !got.holds(j, want[j]);
      EXPECT_EQ(wrong, 0) << "seed " << seed << " self " << self;

      // Back: the exported rows of a blank table get their original values; others stay blank.
      Table back(n);
      plan.reverse(got.columns(), back.columns());
      int restored = 0, untouched = 0;
      for (std::size_t i = 0; i < n; ++i) {
        if (self || s.dest[me][i] != me)
          restored += !back.holds(i, keyOf(me, i));
        else
          untouched += back.pod(i).a != 0 || back.pod(i).b != 0 || back.key(i) != 0 ||
                       back.w(i) != 0 || back.small(i) != 0 || back.x(i, 2) != 0;
      }
      EXPECT_EQ(restored, 0);
      EXPECT_EQ(untouched, 0);
    }
}

TEST(Distributor, MigrateMatchesTheSerialReferenceAndUnmigrateRestores) {
  const int me = worldRank(), size = worldSize();
  Distributor plan;
  for (unsigned seed : {4u, 5u, 6u}) {
    const Scenario s = randomScenario(size, seed);
    const std::size_t n = s.dest[me].size();
    const auto want = expectedAfterMigrate(s, me);
    Table t = itemsOf(me, s, std::max(n, want.size()) + 3);
    const Table original = copyOf(t);
    long leaving = 0;
    for (int d : s.dest[me])
      leaving += d != me;
    // With and without the announced number of leaving items: the same plan.
    plan.plan(MPI_COMM_WORLD, destView(s.dest[me]), n, Distributor::Local::Stay,
              seed % 2 ? leaving : -1);
    ASSERT_EQ(plan.kept() + plan.imported(), want.size());
    EXPECT_EQ(plan.exported(), static_cast<std::size_t>(leaving));
    plan.migrate(t.columns());
    int wrong = 0;
    for (std::size_t j = 0; j < want.size(); ++j)
      wrong += !t.holds(j, want[j]);
    EXPECT_EQ(wrong, 0) << "seed " << seed;
    plan.unmigrate(t.columns());
    EXPECT_TRUE(t.sameRows(original, n)) << "seed " << seed;
  }
  // Local::Send: everything travels, nothing is kept; unmigrate still brings it all back.
  const Scenario s = randomScenario(size, 7);
  const std::size_t n = s.dest[me].size();
  const auto want = expectedArrivals(s, me, true);
  Table t = itemsOf(me, s, std::max(n, want.size()));
  const Table original = copyOf(t);
  plan.plan(MPI_COMM_WORLD, destView(s.dest[me]), n, Distributor::Local::Send);
  EXPECT_EQ(plan.kept(), 0u);
  plan.migrate(t.columns());
  int wrong = 0;
  for (std::size_t j = 0; j < want.size(); ++j)
    wrong += !t.holds(j, want[j]);
  EXPECT_EQ(wrong, 0);
  plan.unmigrate(t.columns());
  EXPECT_TRUE(t.sameRows(original, n));
}

TEST(Distributor, NothingMovesWhenEveryItemStays) {
  const int me = worldRank();
  const std::vector<int> d(50, me);
  Table t(50);
  for (std::size_t i = 0; i < 50; ++i)
    t.set(i, keyOf(me, i));
  const Table original = copyOf(t);
  for (long announced : {-1L, 0L}) {
    Distributor plan(MPI_COMM_WORLD, destView(d), d.size(), Distributor::Local::Stay);
    plan.plan(MPI_COMM_WORLD, destView(d), d.size(), Distributor::Local::Stay, announced);
    EXPECT_EQ(plan.totalExported(), 0u);
    EXPECT_EQ(plan.kept(), 50u);
    EXPECT_EQ(plan.imported(), 0u);
    plan.migrate(t.columns());
    EXPECT_TRUE(t.sameRows(original, 50));
  }
}

TEST(Distributor, BadDestinationsThrowOnEveryRank) {
  const int me = worldRank(), size = worldSize();
  std::vector<int> d(10, 0);
  if (me == size - 1)
    d[3] = size; // outside the communicator
  EXPECT_THROW(Distributor(MPI_COMM_WORLD, destView(d), d.size()), CollectiveError);
  // A wrong number of leaving items announced (on rank 0 only).
  std::vector<int> e(10, (me + 1) % size);
  Distributor plan;
  const long leaving = size > 1 ? 10 : 0;
  if (size > 1) {
    EXPECT_THROW(plan.plan(MPI_COMM_WORLD, destView(e), e.size(), Distributor::Local::Stay,
                           me == 0 ? leaving - 1 : leaving),
                 CollectiveError);
  }
  // The plan is usable again afterwards.
  plan.plan(MPI_COMM_WORLD, destView(e), e.size(), Distributor::Local::Stay, leaving);
  EXPECT_EQ(plan.exported(), static_cast<std::size_t>(leaving));
  // Mismatched columns are refused before anything moves.
  Kokkos::View<double*> a("a", 10), b("b", 10);
  Kokkos::View<float*> f("f", 10);
  EXPECT_THROW(plan.forward({Distributor::column(a)}, {Distributor::column(f)}),
               std::invalid_argument);
  EXPECT_THROW(plan.forward({Distributor::column(a)}, {}), std::invalid_argument);
  Kokkos::View<double*> small("small", 3);
  EXPECT_THROW(plan.forward({Distributor::column(small)}, {Distributor::column(b)}),
               std::invalid_argument);
}
