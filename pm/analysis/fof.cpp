#include "pm/analysis/fof.hpp"

#include "pm/core/profiling.hpp"
#include "pm/particles/distributor.hpp"

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <numeric>
#include <stdexcept>

namespace caustic {

namespace {

// Lock-free union-find over the points sorted by cell, in a View so that the linking runs as a
// Kokkos kernel on any backend. A root is its own parent. unite hooks the larger root under the
// smaller with a compare-and-swap, so the trees never form a cycle whatever the order of the
// unions; find halves the path with relaxed atomic stores, which is safe concurrently: only
// roots are ever re-hooked (by the compare-and-swap), and a non-root's parent is only ever
// replaced by one of its ancestors.
struct AtomicForest {
  Kokkos::View<std::uint32_t*> parent;

  KOKKOS_INLINE_FUNCTION std::uint32_t load(std::uint32_t i) const {
    return Kokkos::Impl::atomic_load(&parent(i), Kokkos::Impl::memory_order_relaxed);
  }
  KOKKOS_INLINE_FUNCTION std::uint32_t find(std::uint32_t i) const {
    while (true) {
      const std::uint32_t p = load(i);
      if (p == i)
        return i;
      const std::uint32_t gp = load(p);
      if (gp == p)
        return p;
      Kokkos::Impl::atomic_store(&parent(i), gp, Kokkos::Impl::memory_order_relaxed);
      i = gp;
    }
  }
  // Unites the trees of a and b; returns the root of the union.
  KOKKOS_INLINE_FUNCTION std::uint32_t unite(std::uint32_t a, std::uint32_t b) const {
    while (true) {
      a = find(a);
      b = find(b);
      if (a == b)
        return a;
      if (a < b) {
        const std::uint32_t t = a;
        a = b;
        b = t;
      }
      if (Kokkos::atomic_compare_exchange(&parent(a), a, b) == a)
        return b;
    }
  }
};

using HostInts = Kokkos::View<const int*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>;

// The nearest periodic image of a separation d: d - L round(d / L). Separations of positions in
// [0, L) take the branches (no division; the same result, ties at +-L/2 included).
double minImage(double d, double L) {
  if (std::abs(d) >= L)
    return d - L * std::round(d / L);
  return d >= 0.5 * L ? d - L : (d <= -0.5 * L ? d + L : d);
}

} // namespace

namespace {
using HostIds = Kokkos::View<std::uint64_t*>::HostMirror;

// Copies of the local particles within ell (periodically) of another rank's slab, sent there
// (to several ranks if slabs are thin). Item k of the plan is the copy of local particle sent[k],
// ordered by rank, then particle; the received copies are the ghosts.
struct Ghosts {
  std::vector<std::uint32_t> sent;
  std::unique_ptr<Distributor> plan;
  std::vector<double> pos; // 3 per ghost
  std::vector<std::uint64_t> id;
  std::size_t count() const { return id.size(); }
};

template <class HostPositions>
Ghosts exchangeGhosts(const HostPositions& hx, const HostIds& hid, std::size_t nloc,
                      const SlabDecomposition& decomp, double ell) {
  const auto& comm = decomp.comm();
  const int size = comm.size(), me = comm.rank();
  const double L = decomp.box(), H = decomp.cell();
  Ghosts g;
  std::vector<int> dests;
  for (int r = 0; r < size; ++r) {
    if (r == me || decomp.localNxOf(r) == 0)
      continue;
    const double lo = decomp.xStartOf(r) * H, hi = (decomp.xStartOf(r) + decomp.localNxOf(r)) * H;
    const double centre = 0.5 * (lo + hi), half = 0.5 * (hi - lo) + ell;
    for (std::size_t i = 0; i < nloc; ++i)
      if (std::abs(minImage(hx(i, 0) - centre, L)) < half) {
        g.sent.push_back(static_cast<std::uint32_t>(i));
        dests.push_back(r);
      }
  }
  const std::size_t nsent = g.sent.size();
  std::vector<double> gxout(3 * nsent);
  std::vector<std::uint64_t> gidout(nsent);
  for (std::size_t k = 0; k < nsent; ++k) {
    for (int c = 0; c < 3; ++c)
      gxout[3 * k + c] = hx(g.sent[k], c);
    gidout[k] = hid(g.sent[k]);
  }
  g.plan = std::make_unique<Distributor>(comm.get(), HostInts(dests.data(), nsent), nsent);
  const std::size_t nghost = g.plan->imported();
  g.pos.resize(3 * nghost);
  g.id.resize(nghost);
  g.plan->forward({Distributor::column(gxout, 3), Distributor::column(gidout)},
                  {Distributor::column(g.pos, 3), Distributor::column(g.id)});
  return g;
}

// The cell grid of the linking: nc cells per side, of side L / nc <= ell / sqrt(3), with nc even
// so that coarse columns of 2 x 2 cell columns tile the box. Keys order the cells by coarse
// column (X, Y) = (cx / 2, cy / 2), then cz, then (cx % 2, cy % 2):
// key = ((X nc/2 + Y) nc + cz) 4 + 2 (cx % 2) + cy % 2, so that a coarse column is a run of keys
// in which cz ascends.
struct CellGrid {
  int nc;
  double L;
  double inv; // nc / L
  CellGrid(double box, double ell)
      : nc(2 *
           std::max(1, static_cast<int>(std::ceil(0.5 * box * std::sqrt(3.0) / ell * (1 + 1e-9))))),
        L(box), inv(nc / box) {}
  int coord(double x) const { return std::min(nc - 1, std::max(0, static_cast<int>(x * inv))); }
  std::uint64_t key(double x, double y, double z) const {
    const int cx = coord(x), cy = coord(y), cz = coord(z);
    const std::uint64_t column = static_cast<std::uint64_t>(cx / 2) * (nc / 2) + cy / 2;
    return (column * nc + cz) * 4 + 2 * (cx % 2) + cy % 2;
  }
  std::uint64_t maxKey() const { // the key of cell (nc - 1, nc - 1, nc - 1)
    return static_cast<std::uint64_t>(nc) * nc * nc - 1;
  }
};

// Sorts keys ascending (in place) and returns the order: order[s] is the index the s-th key had
// (equal keys in index order). LSD radix sort in 11-bit digits over the bits kmax needs (3
// passes for the cell keys of a 1000^3 cell grid): no comparisons, sequential passes, the
// histograms of all digits from one read of the keys.
template <class Key> std::vector<std::uint32_t> sortByKey(std::vector<Key>& keys, Key kmax) {
  const std::size_t n = keys.size();
  constexpr int kBits = 11;
  constexpr std::size_t kBuckets = std::size_t(1) << kBits;
  int digits = 0;
  while (digits * kBits < int(8 * sizeof(Key)) && (kmax >> (digits * kBits)) != 0)
    ++digits;
  std::vector<std::size_t> count(digits * kBuckets, 0);
  for (std::size_t i = 0; i < n; ++i)
    for (int d = 0; d < digits; ++d)
      ++count[d * kBuckets + ((keys[i] >> (d * kBits)) & (kBuckets - 1))];
  std::vector<std::uint32_t> order(n), o2(n);
  std::vector<Key> k2(n);
  for (int d = 0; d < digits; ++d) {
    std::size_t* c = &count[d * kBuckets];
    std::size_t sum = 0;
    for (std::size_t b = 0; b < kBuckets; ++b) {
      const std::size_t t = c[b];
      c[b] = sum;
      sum += t;
    }
    const int shift = d * kBits;
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t dst = c[(keys[i] >> shift) & (kBuckets - 1)]++;
      k2[dst] = keys[i];
      o2[dst] = d == 0 ? static_cast<std::uint32_t>(i) : order[i];
    }
    keys.swap(k2);
    order.swap(o2);
  }
  if (digits == 0)
    std::iota(order.begin(), order.end(), 0u);
  return order;
}

// Links the points `sx` (sorted by cell key, see CellGrid) in a periodic box L. Cells have side
// at most ell / sqrt(3): all points of a cell are friends, so each cell is linked internally at
// once, and two cells need only one linking pair (the search stops there, and is skipped when
// they are already joined). Friends lie at most 2 cells apart on every axis, so within one
// coarse column (2 x 2 cell columns) or its 8 neighbours. Gives the root (a sorted index) of
// every point in point order (order[s] is the point at sorted index s) and the size of every
// root's component.
//
// The coarse columns are what make this fast: at the density of a z = 0 run most occupied
// cells hold one point and most of their 124 neighbour cells are empty, so the work is the
// search of the neighbour columns, not the distance tests. A cell of a coarse column searches 5
// columns (itself and 4 of its neighbours: each pair of columns once) instead of the 13 of a
// column of single cells.
template <class Key>
void linkSortedPoints(const Kokkos::View<double* [3]>& sx, std::vector<Key> keys,
                      std::vector<std::uint32_t>& order, const CellGrid& grid, double ell,
                      std::vector<std::uint32_t>& root_out, std::vector<std::uint32_t>& size_out) {
  const std::size_t ntot = keys.size();
  if (ntot == 0) {
    root_out.clear();
    size_out.clear();
    return;
  }
  const int nc = grid.nc, NC = grid.nc / 2;
  const double L = grid.L;
  using Memory = Kokkos::DefaultExecutionSpace::memory_space;
  auto hostArray = [ntot](auto zero, const char* label) {
    using T = decltype(zero);
    return Kokkos::View<T*, Kokkos::HostSpace>(
        Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)), ntot + 1);
  };
  // Cells (runs of equal keys) and coarse columns (runs of equal key / (4 nc)), on the host in
  // one pass. A cell's key less its column's first key is its zs: 4 cz + its place in the
  // coarse column (2 (cx % 2) + cy % 2). The cell keys end with a sentinel above every key.
  auto cell_start = hostArray(std::uint32_t(0), "caustic::fof::cell_start");
  auto cell_key = hostArray(Key(0), "caustic::fof::cell_key");
  auto col_start = hostArray(std::uint32_t(0), "caustic::fof::column_start");
  auto col_x = hostArray(int(0), "caustic::fof::column_x");
  auto col_y = hostArray(int(0), "caustic::fof::column_y");
  // Per column, the z bins (64 of them) that hold a cell; per cz, the bins of cz - 2 to cz + 2
  // (periodically): a column without any of those bins has no cell within reach in z.
  auto col_zbins = hostArray(std::uint64_t(0), "caustic::fof::column_zbins");
  auto zbin = [nc](int cz) { return static_cast<int>(static_cast<std::uint64_t>(cz) * 64 / nc); };
  Kokkos::View<std::uint64_t*, Kokkos::HostSpace> near_zbins(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::fof::near_zbins"), nc);
  for (int cz = 0; cz < nc; ++cz) {
    std::uint64_t m = 0;
    for (int d = -2; d <= 2; ++d)
      m |= std::uint64_t(1) << zbin(((cz + d) % nc + nc) % nc);
    near_zbins(cz) = m;
  }
  const std::uint64_t per_col = 4 * static_cast<std::uint64_t>(nc);
  std::size_t ncells = 0, ncols = 0;
  std::uint64_t col_lo = 0, col_hi = 0; // the current column's keys: [col_lo, col_hi)
  for (std::size_t s = 0; s < ntot;) {
    std::size_t e = s;
    const std::uint64_t k = keys[s];
    while (e < ntot && keys[e] == k)
      ++e;
    if (ncols == 0 || k >= col_hi) { // a new column (one division per column)
      const std::uint64_t col = k / per_col;
      col_lo = col * per_col;
      col_hi = col_lo + per_col;
      col_x(ncols) = static_cast<int>(col / NC);
      col_y(ncols) = static_cast<int>(col - static_cast<std::uint64_t>(col_x(ncols)) * NC);
      col_zbins(ncols) = 0;
      col_start(ncols++) = static_cast<std::uint32_t>(ncells);
    }
    col_zbins(ncols - 1) |= std::uint64_t(1) << zbin(static_cast<int>((k - col_lo) >> 2));
    cell_start(ncells) = static_cast<std::uint32_t>(s);
    cell_key(ncells++) = static_cast<Key>(k);
    s = e;
  }
  cell_start(ncells) = static_cast<std::uint32_t>(ntot);
  cell_key(ncells) = std::numeric_limits<Key>::max();
  col_start(ncols) = static_cast<std::uint32_t>(ncells);
  std::vector<Key>().swap(keys);
  // Occupied columns by (X, Y): a dense table over the X range present (a slab and its ghosts;
  // 4 B per coarse column) instead of a hash map.
  const int X0 = col_x(0), X1 = col_x(ncols - 1); // columns ascend in (X, Y)
  constexpr std::uint32_t kNone = ~std::uint32_t(0);
  Kokkos::View<std::uint32_t*, Kokkos::HostSpace> col_at(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::fof::column_at"),
      static_cast<std::size_t>(X1 - X0 + 1) * NC);
  Kokkos::deep_copy(col_at, kNone);
  for (std::size_t c = 0; c < ncols; ++c)
    col_at(static_cast<std::size_t>(col_x(c) - X0) * NC + col_y(c)) = static_cast<std::uint32_t>(c);
  // On a host backend these are the same arrays, not copies.
  auto toDevice = [](const auto& h, std::size_t n) {
    return Kokkos::create_mirror_view_and_copy(
        Memory(), Kokkos::subview(h, std::make_pair(std::size_t(0), n)));
  };
  const auto cellStart = toDevice(cell_start, ncells + 1);
  const auto cellKey = toDevice(cell_key, ncells + 1);
  const auto colStart = toDevice(col_start, ncols + 1);
  const auto colX = toDevice(col_x, ncols);
  const auto colY = toDevice(col_y, ncols);
  const auto colAt = Kokkos::create_mirror_view_and_copy(Memory(), col_at);
  const auto colZbins = toDevice(col_zbins, ncols);
  const auto nearZbins = Kokkos::create_mirror_view_and_copy(Memory(), near_zbins);

  // The points of a cell hang from its first point.
  AtomicForest f{Kokkos::View<std::uint32_t*>(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::fof::parent"), ntot)};
  Kokkos::parallel_for(
      "caustic::fof::cells", Kokkos::RangePolicy<>(0, ncells), KOKKOS_LAMBDA(std::size_t c) {
        for (std::uint32_t i = cellStart(c); i < cellStart(c + 1); ++i)
          f.parent(i) = cellStart(c);
      });
  // Coarse column by coarse column (in parallel): the up to 9 neighbouring columns are looked up
  // once; each pair of columns is visited from the lower key, each pair of cells once.
  const double ell2 = ell * ell, half = 0.5 * L;
  const bool windowed = nc >= 5; // else the z images overlap: every cell of a column is visited
  Kokkos::parallel_for(
      "caustic::fof::link", Kokkos::RangePolicy<>(0, ncols), KOKKOS_LAMBDA(std::size_t ci) {
        const int X = colX(ci), Y = colY(ci);
        const std::uint64_t col = static_cast<std::uint64_t>(X) * NC + Y;
        std::uint32_t n0[9], n1[9];
        std::uint64_t zbins[9];
        std::uint64_t seen[9];
        int rx[9], ry[9]; // the neighbour's first cell column less this one's (2 dX, 2 dY)
        int nn = 0;
        for (int dX = -1; dX <= 1; ++dX) {
          const int nX = X + dX < 0 ? X + dX + NC : (X + dX >= NC ? X + dX - NC : X + dX);
          if (nX < X0 || nX > X1)
            continue;
          for (int dY = -1; dY <= 1; ++dY) {
            const int nY = Y + dY < 0 ? Y + dY + NC : (Y + dY >= NC ? Y + dY - NC : Y + dY);
            const std::uint64_t ncol = static_cast<std::uint64_t>(nX) * NC + nY;
            if (ncol < col)
              continue;          // each pair of columns once
            bool repeat = false; // the 9 neighbours repeat when NC < 3
            for (int q = 0; q < nn && NC < 3; ++q)
              repeat = repeat || seen[q] == ncol;
            const std::uint32_t nci = colAt(static_cast<std::size_t>(nX - X0) * NC + nY);
            if (repeat || nci == kNone)
              continue;
            seen[nn] = ncol;
            n0[nn] = colStart(nci);
            zbins[nn] = colZbins(nci);
            n1[nn] = colStart(nci + 1);
            rx[nn] = 2 * dX;
            ry[nn] = 2 * dY;
            ++nn;
          }
        }
        auto wrapd = [L, half](double d) { return d > half ? d - L : (d < -half ? d + L : d); };
        auto near = [nc](int d) { // cell offset to its nearest periodic image
          return 2 * d > nc ? d - nc : (2 * d < -nc ? d + nc : d);
        };
        auto close = [&](std::uint32_t i, std::uint32_t j) {
          const double ddx = wrapd(sx(i, 0) - sx(j, 0)), ddy = wrapd(sx(i, 1) - sx(j, 1)),
                       ddz = wrapd(sx(i, 2) - sx(j, 2));
          return ddx * ddx + ddy * ddy + ddz * ddz < ell2;
        };
        // Links cell a (points a0 to a1, root ra or kUnknown) with cell b within reach unless
        // they are one group already; returns a's root (or kUnknown if it was not needed).
        constexpr std::uint32_t kUnknown = ~std::uint32_t(0);
        auto link = [&](std::uint32_t a0, std::uint32_t a1, std::uint32_t ra, std::uint32_t b) {
          const std::uint32_t b0 = cellStart(b), b1 = cellStart(b + 1);
          if (a1 - a0 == 1 && b1 - b0 == 1) // two single points (most cells): distance first
            return close(a0, b0) ? f.unite(ra == kUnknown ? a0 : ra, b0) : ra;
          if (ra == kUnknown)
            ra = f.find(a0);
          if (f.find(b0) == ra)
            return ra; // already one group
          for (std::uint32_t i = a0; i < a1; ++i)
            for (std::uint32_t j = b0; j < b1; ++j)
              if (close(i, j))
                return f.unite(ra, b0);
          return ra;
        };
        // Whether cells a and b (zs codes, b in column q) are within reach: at most 2 cells
        // apart on every axis, periodically (rx, ry are the column offsets up to a period).
        auto reach = [&](int q, int zsa, int zsb) {
          const int dx = near(rx[q] + ((zsb >> 1) & 1) - ((zsa >> 1) & 1)),
                    dy = near(ry[q] + (zsb & 1) - (zsa & 1)), dz = near((zsb >> 2) - (zsa >> 2));
          return dx >= -2 && dx <= 2 && dy >= -2 && dy <= 2 && dz >= -2 && dz <= 2;
        };
        // Column by neighbouring column, both read in order. Each pair of cells once: in a's
        // own column only the cells after a.
        const Key abase = static_cast<Key>(col * per_col); // the column's first key
        for (int q = 0; q < nn; ++q) {
          const bool same = seen[q] == col;
          const std::uint32_t lo = n0[q], hi = n1[q];
          const Key qbase = static_cast<Key>(seen[q] * per_col);
          const int qx = rx[q], qy = ry[q];
          std::uint32_t win = lo;
          for (std::uint32_t a = colStart(ci); a < colStart(ci + 1); ++a) {
            const int zsa = static_cast<int>(cellKey(a) - abase), cza = zsa >> 2;
            if (!(zbins[q] & nearZbins(cza)))
              continue; // nothing in column q within reach in z (most cells of a sparse column)
            const std::uint32_t a0 = cellStart(a), a1 = cellStart(a + 1);
            std::uint32_t ra = kUnknown;
            if (!windowed) {
              for (std::uint32_t b = same ? a + 1 : lo; b < hi; ++b)
                if (reach(q, zsa, static_cast<int>(cellKey(b) - qbase)))
                  ra = link(a0, a1, ra, b);
              continue;
            }
            // The column's cells ascend in key (in cz), so those within reach of a in z form a
            // window that only moves up as a does: keys in [first, last]. One comparison per
            // cell ends the window, as the next column's keys (or the sentinel) are above it.
            // In it, cells 3 apart in x or y are out of reach (in the neighbouring columns); with
            // nc >= 6 the offsets need no periodic wrap.
            const Key first = qbase + 4 * static_cast<Key>(cza >= 2 ? cza - 2 : 0);
            const Key last = qbase + 4 * static_cast<Key>(cza + 2 < nc ? cza + 2 : nc - 1) + 3;
            while (cellKey(win) < first)
              ++win;
            const int ax = qx - ((zsa >> 1) & 1), ay = qy - (zsa & 1);
            for (std::uint32_t b = same && win <= a ? a + 1 : win; cellKey(b) <= last; ++b) {
              const int sub = static_cast<int>(cellKey(b) & 3);
              const int dx = ax + (sub >> 1), dy = ay + (sub & 1);
              if (dx >= -2 && dx <= 2 && dy >= -2 && dy <= 2)
                ra = link(a0, a1, ra, b);
            }
            // The periodic images across z = 0: the few cells at the other end of the column
            // (those above z = L, seen from a cell of the same column, come before it and have
            // visited it already).
            auto zsOf = [&](std::uint32_t b) { return static_cast<int>(cellKey(b) - qbase); };
            if (cza < 2)
              for (std::uint32_t b = hi; b > lo && (zsOf(b - 1) >> 2) >= cza - 2 + nc; --b)
                if (reach(q, zsa, zsOf(b - 1)))
                  ra = link(a0, a1, ra, b - 1);
            if (cza > nc - 3 && !same)
              for (std::uint32_t b = lo; b < hi && (zsOf(b) >> 2) <= cza + 2 - nc; ++b)
                if (reach(q, zsa, zsOf(b)))
                  ra = link(a0, a1, ra, b);
          }
        }
      });
  // Every point's root, in point order (order[s] is the point at sorted index s), and the
  // components' sizes. On a host backend the kernel writes into the output vectors.
  root_out.resize(ntot);
  size_out.assign(ntot, 0);
  using HostU32 = Kokkos::View<std::uint32_t*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>;
  const HostU32 hroot(root_out.data(), ntot), hsize(size_out.data(), ntot);
  const auto pointOf = Kokkos::create_mirror_view_and_copy(Memory(), HostU32(order.data(), ntot));
  const auto root = Kokkos::create_mirror_view_and_copy(Memory(), hroot);
  const auto size = Kokkos::create_mirror_view_and_copy(Memory(), hsize);
  Kokkos::parallel_for(
      "caustic::fof::roots", Kokkos::RangePolicy<>(0, ntot), KOKKOS_LAMBDA(std::size_t i) {
        const std::uint32_t r = f.find(static_cast<std::uint32_t>(i));
        root(pointOf(i)) = r;
        Kokkos::atomic_increment(&size(r));
      });
  Kokkos::deep_copy(hroot, root);
  Kokkos::deep_copy(hsize, size);
}

// Labels agreed across ranks: ghost holders tell owners their label, owners answer with theirs,
// until nothing changes. lab is indexed by union-find root; root(i) of point i (local points
// first, then ghosts).
template <class Root>
void agreeLabels(const Ghosts& g, std::size_t nloc, const Root& root,
                 std::vector<std::uint64_t>& lab, const Comm& comm) {
  const std::size_t nghost = g.count(), nsent = g.sent.size();
  for (int iter = 0;; ++iter) {
    if (iter > 4 * comm.size() + 8)
      throw std::logic_error("fofLabels: labels did not converge");
    int changed = 0;
    // ghosts -> owners: the ghost plan in reverse, onto the items of `sent`
    std::vector<std::uint64_t> up(nghost), got(nsent);
    for (std::size_t k = 0; k < nghost; ++k)
      up[k] = lab[root(nloc + k)];
    g.plan->reverse({Distributor::column(up)}, {Distributor::column(got)});
    for (std::size_t k = 0; k < nsent; ++k) {
      auto& l = lab[root(g.sent[k])];
      if (got[k] < l) {
        l = got[k];
        changed = 1;
      }
    }
    // owners -> ghost holders: forward again
    std::vector<std::uint64_t> down(nsent), back(nghost);
    for (std::size_t k = 0; k < nsent; ++k)
      down[k] = lab[root(g.sent[k])];
    g.plan->forward({Distributor::column(down)}, {Distributor::column(back)});
    for (std::size_t k = 0; k < nghost; ++k) {
      auto& l = lab[root(nloc + k)];
      if (back[k] < l) {
        l = back[k];
        changed = 1;
      }
    }
    int any = 0;
    mpiCheck(MPI_Allreduce(&changed, &any, 1, MPI_INT, MPI_MAX, comm.get()), "fofLabels");
    if (!any)
      break;
  }
}

// The points pos(i, c), i < ntot, sorted by cell (keys of type Key, which must hold
// grid.maxKey()) and linked: the root of every point (a sorted index) and the size of every
// root's component.
template <class Key, class Pos>
void sortAndLink(std::size_t ntot, const Pos& pos, const CellGrid& grid, double ell,
                 std::vector<std::uint32_t>& root, std::vector<std::uint32_t>& size) {
  std::vector<Key> keys(ntot);
  Key kmax = 0;
  for (std::size_t i = 0; i < ntot; ++i) {
    keys[i] = static_cast<Key>(grid.key(pos(i, 0), pos(i, 1), pos(i, 2)));
    kmax = std::max(kmax, keys[i]);
  }
  std::vector<std::uint32_t> order = sortByKey(keys, kmax);
  // Sorted positions: contiguous per cell.
  Kokkos::View<double* [3]> sx(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::fof::sorted_positions"), ntot);
  auto h = Kokkos::create_mirror_view(sx);
  for (std::size_t s = 0; s < ntot; ++s)
    for (int c = 0; c < 3; ++c)
      h(s, c) = pos(order[s], c);
  Kokkos::deep_copy(sx, h);
  linkSortedPoints(sx, std::move(keys), order, grid, ell, root, size);
}

// Labels of the local particles. With `group`, also each local particle's local component (a
// compact index, in order of first appearance) when it may belong to a group of at least
// `min_size` (its local component is that large, or reaches another rank), else -1.
template <class R>
std::vector<std::uint64_t> linkAndLabel(const BasicParticles<R>& parts,
                                        const SlabDecomposition& decomp, double ell,
                                        std::size_t min_size, std::vector<std::int32_t>* group) {
  const double L = decomp.box();
  if (!(ell > 0 && ell < L / 2))
    throw std::invalid_argument("fofLabels: linking length " + std::to_string(ell) +
                                " Mpc/h outside (0, L/2)");
  const std::size_t nloc = parts.size();
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  const Ghosts g = exchangeGhosts(hx, hid, nloc, decomp, ell);
  const std::size_t nghost = g.count(), ntot = nloc + nghost;
  auto pos = [&](std::size_t i, int c) {
    return i < nloc ? double(hx(i, c)) : g.pos[3 * (i - nloc) + c];
  };
  auto idOf = [&](std::size_t i) { return i < nloc ? hid(i) : g.id[i - nloc]; };

  // Points sorted by cell and linked. The temporaries are freed as soon as they are done with,
  // so that the peak is that of the linking (sorted positions, order, union-find, cells and
  // columns: about 60 B per point) rather than the sum of every array.
  const CellGrid grid(L, ell);
  std::vector<std::uint32_t> proot, ssize; // per point: its root (a sorted index); per root: size
  if (grid.maxKey() <= std::numeric_limits<std::uint32_t>::max())
    sortAndLink<std::uint32_t>(ntot, pos, grid, ell, proot, ssize);
  else
    sortAndLink<std::uint64_t>(ntot, pos, grid, ell, proot, ssize);

  // Local component labels: the smallest member ID (ghosts included).
  std::vector<std::uint64_t> lab(ntot, ~std::uint64_t(0));
  auto root = [&](std::size_t i) { return proot[i]; };
  for (std::size_t i = 0; i < ntot; ++i) {
    const auto r = root(i);
    lab[r] = std::min(lab[r], idOf(i));
  }
  agreeLabels(g, nloc, root, lab, decomp.comm());

  std::vector<std::uint64_t> out(nloc);
  for (std::size_t i = 0; i < nloc; ++i)
    out[i] = lab[root(i)];
  if (group) {
    // Per root: -1 unless kept, -2 kept (reaches another rank), then its compact index.
    std::vector<std::int32_t> index(ntot, -1);
    for (std::size_t k = nloc; k < ntot; ++k)
      index[root(k)] = -2;
    for (std::uint32_t i : g.sent)
      index[root(i)] = -2;
    group->assign(nloc, -1);
    std::int32_t n = 0;
    for (std::size_t i = 0; i < nloc; ++i) {
      const auto r = root(i);
      std::int32_t& k = index[r];
      if (k == -1 && ssize[r] >= min_size)
        k = -2;
      if (k == -2)
        k = n++;
      (*group)[i] = k;
    }
  }
  return out;
}
} // namespace

template <class R>
std::vector<std::uint64_t> fofLabels(const BasicParticles<R>& parts,
                                     const SlabDecomposition& decomp, double ell) {
  ScopedRegion region("caustic::fofLabels");
  return linkAndLabel(parts, decomp, ell, 0, nullptr);
}

namespace {
// label bits, n, ref[3], sdx[3], sdx2, sv[3], sv2, qref[3], sdq[3], pad
constexpr int kPartialWidth = 20;
constexpr int kRowWidth = 13; // label bits, n, pos[3], vel[3], sigma, radius, lattice_pos[3]

// The lattice position of particle `id` on an N^3 lattice of spacing dq (without the offset).
void latticeOf(std::uint64_t id, std::uint64_t n, double dq, double q[3]) {
  q[0] = static_cast<double>(id / (n * n)) * dq;
  q[1] = static_cast<double>((id / n) % n) * dq;
  q[2] = static_cast<double>(id % n) * dq;
}

double labelBits(std::uint64_t label) {
  double b;
  std::memcpy(&b, &label, sizeof b);
  return b;
}
std::uint64_t labelOf(const double* bits) {
  std::uint64_t l;
  std::memcpy(&l, bits, sizeof l);
  return l;
}

// Partial sums of the particles that may belong to a kept group, per local component (see
// linkAndLabel), relative to its first member, in order of first appearance; dests: the
// label's home rank (label mod ranks). A label has one local component unless its particles
// here are joined only through another rank. With lattice_grid > 0, also the members' lattice
// positions relative to the first member's.
template <class R>
void partialSums(const BasicParticles<R>& parts, const std::vector<std::uint64_t>& labels,
                 const std::vector<std::int32_t>& group, double L, int ranks, int lattice_grid,
                 std::vector<double>& out, std::vector<int>& dests) {
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  const auto nq = static_cast<std::uint64_t>(std::max(lattice_grid, 1));
  const double dq = L / static_cast<double>(nq);
  struct Partial {
    std::uint64_t label = 0;
    double n = 0, ref[3], sdx[3] = {0, 0, 0}, sdx2 = 0, sv[3] = {0, 0, 0}, sv2 = 0;
    double qref[3] = {0, 0, 0}, sdq[3] = {0, 0, 0};
  };
  std::vector<Partial> part;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::int32_t k = group[i];
    if (k < 0)
      continue;
    if (static_cast<std::size_t>(k) == part.size()) { // the component's first member
      part.emplace_back();
      part.back().label = labels[i];
      for (int c = 0; c < 3; ++c)
        part.back().ref[c] = hx(i, c);
      if (lattice_grid > 0)
        latticeOf(hid(i), nq, dq, part.back().qref);
    }
    Partial& p = part[k];
    p.n += 1;
    if (lattice_grid > 0) {
      double q[3];
      latticeOf(hid(i), nq, dq, q);
      for (int c = 0; c < 3; ++c)
        p.sdq[c] += minImage(q[c] - p.qref[c], L);
    }
    for (int c = 0; c < 3; ++c) {
      const double d = minImage(hx(i, c) - p.ref[c], L);
      p.sdx[c] += d;
      p.sdx2 += d * d;
      const double v = hp(i, c);
      p.sv[c] += v;
      p.sv2 += v * v;
    }
  }
  out.reserve(kPartialWidth * part.size());
  for (const Partial& p : part) {
    dests.push_back(static_cast<int>(p.label % ranks));
    out.insert(out.end(),
               {labelBits(p.label), p.n,       p.ref[0], p.ref[1], p.ref[2], p.sdx[0], p.sdx[1],
                p.sdx[2],           p.sdx2,    p.sv[0],  p.sv[1],  p.sv[2],  p.sv2,    p.qref[0],
                p.qref[1],          p.qref[2], p.sdq[0], p.sdq[1], p.sdq[2], 0.0});
  }
}

struct GroupSums {
  double n = 0, ref[3], sx[3] = {0, 0, 0}, sx2 = 0, sv[3] = {0, 0, 0}, sv2 = 0;
  double qref[3] = {0, 0, 0}, sq[3] = {0, 0, 0};
  bool init = false;
};

// The partials of each label merged on its home rank, in a fixed order (by source rank, then
// in the source's order): each partial shifted to the group's reference, x = ref_g + s + dx with
// s = minimg(ref_p - ref_g).
std::map<std::uint64_t, GroupSums> mergePartials(const std::vector<double>& in, double L) {
  std::map<std::uint64_t, GroupSums> home;
  for (std::size_t r = 0; r < in.size() / kPartialWidth; ++r) {
    const double* v = &in[kPartialWidth * r];
    GroupSums& g = home[labelOf(&v[0])];
    if (!g.init) {
      for (int c = 0; c < 3; ++c) {
        g.ref[c] = v[2 + c];
        g.qref[c] = v[13 + c];
      }
      g.init = true;
    }
    double s[3], sdot = 0, s2 = 0;
    for (int c = 0; c < 3; ++c) {
      s[c] = minImage(v[2 + c] - g.ref[c], L);
      sdot += s[c] * v[5 + c];
      s2 += s[c] * s[c];
    }
    g.n += v[1];
    for (int c = 0; c < 3; ++c) {
      g.sx[c] += v[5 + c] + v[1] * s[c];
      g.sv[c] += v[9 + c];
      g.sq[c] += v[16 + c] + v[1] * minImage(v[13 + c] - g.qref[c], L);
    }
    g.sx2 += v[8] + 2 * sdot + v[1] * s2;
    g.sv2 += v[12];
  }
  return home;
}

// Catalogue rows of the groups with at least min_particles members (lattice_pos: the mean of q
// plus the lattice's offset, wrapped; meaningful only with a lattice).
std::vector<double> groupRows(const std::map<std::uint64_t, GroupSums>& home, int min_particles,
                              double L, double lattice_offset) {
  std::vector<double> rows;
  for (const auto& [label, g] : home) {
    if (g.n < min_particles)
      continue;
    double com[3], c2 = 0, v2 = 0;
    for (int c = 0; c < 3; ++c) {
      com[c] = g.sx[c] / g.n;
      c2 += com[c] * com[c];
      v2 += (g.sv[c] / g.n) * (g.sv[c] / g.n);
    }
    const double r2 = std::max(0.0, g.sx2 / g.n - c2);
    const double sig2 = std::max(0.0, (g.sv2 / g.n - v2) / 3.0);
    rows.insert(rows.end(),
                {labelBits(label), g.n, periodicWrap(g.ref[0] + com[0], L),
                 periodicWrap(g.ref[1] + com[1], L), periodicWrap(g.ref[2] + com[2], L),
                 g.sv[0] / g.n, g.sv[1] / g.n, g.sv[2] / g.n, std::sqrt(sig2), std::sqrt(r2),
                 periodicWrap(g.qref[0] + g.sq[0] / g.n + lattice_offset, L),
                 periodicWrap(g.qref[1] + g.sq[1] / g.n + lattice_offset, L),
                 periodicWrap(g.qref[2] + g.sq[2] / g.n + lattice_offset, L)});
  }
  return rows;
}

// The catalogue from every rank's rows, sorted by label.
HaloCatalogue catalogueOf(const std::vector<double>& all, double ell, bool lattice) {
  const std::size_t ng = all.size() / kRowWidth;
  std::vector<std::size_t> sorted(ng);
  std::iota(sorted.begin(), sorted.end(), 0);
  auto labelAt = [&](std::size_t g) { return labelOf(&all[kRowWidth * g]); };
  std::sort(sorted.begin(), sorted.end(),
            [&](std::size_t a, std::size_t b) { return labelAt(a) < labelAt(b); });
  HaloCatalogue cat;
  cat.linking_length = ell;
  for (std::size_t g : sorted) {
    const double* v = &all[kRowWidth * g];
    cat.label.push_back(labelAt(g));
    cat.count.push_back(static_cast<std::uint64_t>(v[1]));
    cat.pos.insert(cat.pos.end(), {v[2], v[3], v[4]});
    cat.vel.insert(cat.vel.end(), {v[5], v[6], v[7]});
    cat.sigma_v.push_back(v[8]);
    cat.radius.push_back(v[9]);
    if (lattice)
      cat.lattice_pos.insert(cat.lattice_pos.end(), {v[10], v[11], v[12]});
  }
  return cat;
}

// The member IDs of the catalogue's groups: (label, id) pairs gathered and sorted.
template <class R>
void addMembers(HaloCatalogue& cat, const BasicParticles<R>& parts,
                const std::vector<std::uint64_t>& labels, const Comm& comm) {
  auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  std::vector<std::uint64_t> pairs;
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (std::binary_search(cat.label.begin(), cat.label.end(), labels[i]))
      pairs.insert(pairs.end(), {labels[i], hid(i)});
  const std::vector<std::uint64_t> allp = allGathered(pairs, comm, "findHalos");
  std::vector<std::pair<std::uint64_t, std::uint64_t>> pp(allp.size() / 2);
  for (std::size_t k = 0; k < pp.size(); ++k)
    pp[k] = {allp[2 * k], allp[2 * k + 1]};
  std::sort(pp.begin(), pp.end());
  std::size_t g = 0;
  for (std::size_t k = 0; k < pp.size(); ++k) {
    while (cat.label[g] != pp[k].first) {
      cat.member_offset.push_back(cat.members.size());
      ++g;
    }
    if (cat.member_offset.size() == g)
      cat.member_offset.push_back(cat.members.size());
    cat.members.push_back(pp[k].second);
  }
  while (cat.member_offset.size() < cat.size())
    cat.member_offset.push_back(cat.members.size());
}
} // namespace

template <class R>
HaloCatalogue findHalos(const BasicParticles<R>& parts, const SlabDecomposition& decomp,
                        double mean_separation, const FofOptions& opt) {
  ScopedRegion region("caustic::findHalos");
  if (opt.lattice_grid < 0)
    throw std::invalid_argument("findHalos: lattice_grid = " + std::to_string(opt.lattice_grid) +
                                "; expected 0 (no lattice) or the particle lattice's N");
  const auto& comm = decomp.comm();
  const double L = decomp.box();
  const double ell = opt.b * mean_separation;
  std::vector<std::int32_t> group;
  const auto labels =
      linkAndLabel(parts, decomp, ell, static_cast<std::size_t>(opt.min_particles), &group);
  // Partial sums per local component, to its label's home rank (arriving by source rank, then
  // in the source's order).
  std::vector<double> out;
  std::vector<int> dests;
  partialSums(parts, labels, group, L, comm.size(), opt.lattice_grid, out, dests);
  Distributor toHome(comm.get(), HostInts(dests.data(), dests.size()), dests.size());
  std::vector<double> in(kPartialWidth * toHome.imported());
  toHome.forward({Distributor::column(out, kPartialWidth)},
                 {Distributor::column(in, kPartialWidth)});
  const auto rows = groupRows(mergePartials(in, L), opt.min_particles, L, opt.lattice_offset);
  HaloCatalogue cat = catalogueOf(allGathered(rows, comm, "findHalos"), ell, opt.lattice_grid > 0);
  if (opt.member_ids)
    addMembers(cat, parts, labels, comm);
  return cat;
}

template std::vector<std::uint64_t> fofLabels(const Particles&, const SlabDecomposition&, double);
template std::vector<std::uint64_t> fofLabels(const SingleParticles&, const SlabDecomposition&,
                                              double);
template HaloCatalogue findHalos(const Particles&, const SlabDecomposition&, double,
                                 const FofOptions&);
template HaloCatalogue findHalos(const SingleParticles&, const SlabDecomposition&, double,
                                 const FofOptions&);

} // namespace caustic
