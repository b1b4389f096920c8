#include "pm/analysis/fof.hpp"

#include "pm/core/profiling.hpp"
#include "pm/particles/distributor.hpp"

#include <Kokkos_Core.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
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

double minImage(double d, double L) {
  return d - L * std::round(d / L);
}

} // namespace

namespace {
using HostPositions = Kokkos::View<double* [3]>::HostMirror;
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

// Friends-of-friends links among the points `sx` (3 per point, sorted so that each cell's points
// are contiguous; keys[s] the cell key of sorted point s) in a periodic box L.
//
// Cells of side at most ell / sqrt(3): all points of a cell are friends, so each cell is linked
// internally at once, and two cells need only one linking pair (the search stops there, and is
// skipped when they are already joined). Friends lie at most 2 cells apart. Cells are ordered
// by (cx, cy, cz), so a column (cx, cy) is contiguous. (Just over 80 lines: the cell table, the
// column index and the linking loop share their arrays; issue 21 replaces it with a Kokkos
// kernel.)
// Points ordered by key: sorted_keys ascending and order[s] the point at rank s (equal keys in
// point order). LSD radix sort in 11-bit digits over the bits kmax needs (3 passes for the cell
// keys of a 1000^3 cell grid): no comparisons, sequential passes.
void sortByKey(const std::vector<std::uint64_t>& keys, std::uint64_t kmax,
               std::vector<std::uint64_t>& sorted_keys, std::vector<std::uint32_t>& order) {
  const std::size_t n = keys.size();
  constexpr int kBits = 11;
  constexpr std::size_t kBuckets = std::size_t(1) << kBits;
  sorted_keys = keys;
  order.resize(n);
  std::iota(order.begin(), order.end(), 0u);
  std::vector<std::uint64_t> k2(n);
  std::vector<std::uint32_t> o2(n);
  std::vector<std::size_t> count(kBuckets);
  for (int shift = 0; shift < 64 && (kmax >> shift) != 0; shift += kBits) {
    std::fill(count.begin(), count.end(), 0);
    for (std::size_t i = 0; i < n; ++i)
      ++count[(sorted_keys[i] >> shift) & (kBuckets - 1)];
    std::size_t sum = 0;
    for (auto& c : count) {
      const std::size_t t = c;
      c = sum;
      sum += t;
    }
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t d = count[(sorted_keys[i] >> shift) & (kBuckets - 1)]++;
      k2[d] = sorted_keys[i];
      o2[d] = order[i];
    }
    sorted_keys.swap(k2);
    order.swap(o2);
  }
}

// Links the points (sorted by cell, cells of side <= ell / sqrt(3), keys by (cx, cy, cz)): the
// points of a cell are all within ell of each other, and two cells within reach (at most two
// cells apart on every axis) are linked when any pair of their points is closer than ell.
// Returns the root of every sorted point and the size of every root's component.
void linkSortedPoints(const Kokkos::View<double* [3]>& sx, std::vector<std::uint64_t> keys, int nc,
                      double L, double ell, std::vector<std::uint32_t>& root_out,
                      std::vector<std::uint32_t>& size_out) {
  const std::size_t ntot = keys.size();
  root_out.assign(ntot, 0);
  size_out.assign(ntot, 0);
  if (ntot == 0)
    return;
  // Cells (runs of equal keys) and columns (runs of equal (cx, cy)), on the host: one pass.
  std::vector<std::uint32_t> cell_start, col_start;
  std::vector<int> cell_cz, col_cx, col_cy;
  std::uint64_t col_lo = 0, col_hi = 0; // the current column's keys: [col_lo, col_hi)
  for (std::size_t s = 0; s < ntot;) {
    std::size_t e = s;
    const std::uint64_t k = keys[s];
    while (e < ntot && keys[e] == k)
      ++e;
    if (col_cx.empty() || k >= col_hi) { // a new column (one division per column)
      const std::uint64_t col = k / nc;
      col_lo = col * nc;
      col_hi = col_lo + nc;
      col_cx.push_back(static_cast<int>(col / nc));
      col_cy.push_back(static_cast<int>(col - static_cast<std::uint64_t>(col_cx.back()) * nc));
      col_start.push_back(static_cast<std::uint32_t>(cell_start.size()));
    }
    cell_start.push_back(static_cast<std::uint32_t>(s));
    cell_cz.push_back(static_cast<int>(k - col_lo));
    s = e;
  }
  cell_start.push_back(static_cast<std::uint32_t>(ntot));
  col_start.push_back(static_cast<std::uint32_t>(cell_cz.size()));
  std::vector<std::uint64_t>().swap(keys);
  // Occupied columns by (cx, cy): a dense table over the x-range of columns present (a slab and
  // its ghosts; 4 B per column) instead of a hash map (about 40 B per occupied column, nearly
  // one per point with cells this small).
  const int cx0 = col_cx.front(), cx1 = col_cx.back(); // columns ascend in (cx, cy)
  constexpr std::uint32_t kNone = ~std::uint32_t(0);
  std::vector<std::uint32_t> col_at(static_cast<std::size_t>(cx1 - cx0 + 1) * nc, kNone);
  for (std::size_t c = 0; c < col_cx.size(); ++c)
    col_at[static_cast<std::size_t>(col_cx[c] - cx0) * nc + col_cy[c]] =
        static_cast<std::uint32_t>(c);

  auto toDevice = [](const auto& v, const char* label) {
    using T = typename std::decay_t<decltype(v)>::value_type;
    Kokkos::View<T*> d(Kokkos::view_alloc(Kokkos::WithoutInitializing, std::string(label)),
                       v.size());
    Kokkos::deep_copy(
        d, Kokkos::View<const T*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(v.data(), v.size()));
    return d;
  };
  const auto cellStart = toDevice(cell_start, "caustic::fof::cell_start");
  const auto cellCz = toDevice(cell_cz, "caustic::fof::cell_cz");
  const auto colStart = toDevice(col_start, "caustic::fof::column_start");
  const auto colCx = toDevice(col_cx, "caustic::fof::column_cx");
  const auto colCy = toDevice(col_cy, "caustic::fof::column_cy");
  const auto colAt = toDevice(col_at, "caustic::fof::column_at");
  const int ncells = static_cast<int>(cell_cz.size()), ncols = static_cast<int>(col_cx.size());
  std::vector<std::uint32_t>().swap(cell_start);
  std::vector<int>().swap(cell_cz);
  std::vector<std::uint32_t>().swap(col_start);
  std::vector<int>().swap(col_cx);
  std::vector<int>().swap(col_cy);
  std::vector<std::uint32_t>().swap(col_at);

  // The points of a cell hang from its first point.
  AtomicForest f{Kokkos::View<std::uint32_t*>(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::fof::parent"), ntot)};
  Kokkos::parallel_for(
      "caustic::fof::cells", Kokkos::RangePolicy<>(0, ncells), KOKKOS_LAMBDA(int c) {
        for (std::uint32_t i = cellStart(c); i < cellStart(c + 1); ++i)
          f.parent(i) = cellStart(c);
      });
  // Column by column (in parallel): the up to 25 neighbouring columns are looked up once; each
  // pair of columns is visited from the lower key, each pair of cells once.
  const double ell2 = ell * ell, half = 0.5 * L;
  Kokkos::parallel_for(
      "caustic::fof::link", Kokkos::RangePolicy<>(0, ncols), KOKKOS_LAMBDA(int ci) {
        const int cx = colCx(ci), cy = colCy(ci);
        const std::uint64_t col = static_cast<std::uint64_t>(cx) * nc + cy;
        std::uint32_t n0[25], n1[25];
        std::uint64_t seen[25];
        int nn = 0;
        for (int dx = -2; dx <= 2; ++dx) {
          const int ncx = cx + dx < 0 ? cx + dx + nc : (cx + dx >= nc ? cx + dx - nc : cx + dx);
          if (ncx < cx0 || ncx > cx1)
            continue;
          for (int dy = -2; dy <= 2; ++dy) {
            const int ncy = cy + dy < 0 ? cy + dy + nc : (cy + dy >= nc ? cy + dy - nc : cy + dy);
            const std::uint64_t ncol = static_cast<std::uint64_t>(ncx) * nc + ncy;
            if (ncol < col)
              continue;          // each pair of columns once
            bool repeat = false; // the 25 neighbours repeat when nc < 5
            for (int q = 0; q < nn && nc < 5; ++q)
              repeat = repeat || seen[q] == ncol;
            const std::uint32_t nci = colAt(static_cast<std::size_t>(ncx - cx0) * nc + ncy);
            if (repeat || nci == kNone)
              continue;
            seen[nn] = ncol;
            n0[nn] = colStart(nci);
            n1[nn] = colStart(nci + 1);
            ++nn;
          }
        }
        auto wrapd = [L, half](double d) { return d > half ? d - L : (d < -half ? d + L : d); };
        for (std::uint32_t a = colStart(ci); a < colStart(ci + 1); ++a) {
          const int cza = cellCz(a);
          const std::uint32_t a0 = cellStart(a), a1 = cellStart(a + 1);
          std::uint32_t ra = f.find(a0);
          for (int q = 0; q < nn; ++q) {
            const bool same = seen[q] == col;
            const std::uint32_t lo = same ? a + 1 : n0[q], hi = n1[q];
            // Cell b of the column: linked to a when within reach and not yet one group.
            auto visit = [&](std::uint32_t b) {
              int dz = cellCz(b) - cza; // periodic: the nearest image
              if (2 * dz > nc)
                dz -= nc;
              else if (2 * dz < -nc)
                dz += nc;
              if (dz < -2 || dz > 2)
                return;
              const std::uint32_t b0 = cellStart(b), b1 = cellStart(b + 1);
              if (f.find(b0) == ra)
                return; // already one group
              for (std::uint32_t i = a0; i < a1; ++i)
                for (std::uint32_t j = b0; j < b1; ++j) {
                  const double ddx = wrapd(sx(i, 0) - sx(j, 0)), ddy = wrapd(sx(i, 1) - sx(j, 1)),
                               ddz = wrapd(sx(i, 2) - sx(j, 2));
                  if (ddx * ddx + ddy * ddy + ddz * ddz < ell2) {
                    ra = f.unite(ra, b0);
                    return;
                  }
                }
            };
            for (std::uint32_t b = lo; b < hi; ++b)
              visit(b);
          }
        }
      });
  // Every point's root, and the components' sizes.
  Kokkos::View<std::uint32_t*> root("caustic::fof::root", ntot), size("caustic::fof::size", ntot);
  Kokkos::parallel_for(
      "caustic::fof::roots", Kokkos::RangePolicy<>(0, ntot), KOKKOS_LAMBDA(std::size_t i) {
        const std::uint32_t r = f.find(static_cast<std::uint32_t>(i));
        root(i) = r;
        Kokkos::atomic_increment(&size(r));
      });
  Kokkos::deep_copy(Kokkos::View<std::uint32_t*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
                        root_out.data(), ntot),
                    root);
  Kokkos::deep_copy(Kokkos::View<std::uint32_t*, Kokkos::HostSpace, Kokkos::MemoryUnmanaged>(
                        size_out.data(), ntot),
                    size);
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

// Labels of the local particles; with `keep`, also whether each may belong to a group of at
// least `min_size` (its local component is that large, or reaches another rank).
std::vector<std::uint64_t> linkAndLabel(const Particles& parts, const SlabDecomposition& decomp,
                                        double ell, std::size_t min_size, std::vector<char>* keep) {
  const double L = decomp.box();
  if (!(ell > 0 && ell < L / 2))
    throw std::invalid_argument("fofLabels: linking length " + std::to_string(ell) +
                                " Mpc/h outside (0, L/2)");
  const std::size_t nloc = parts.size();
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  const Ghosts g = exchangeGhosts(hx, hid, nloc, decomp, ell);
  const std::size_t nghost = g.count(), ntot = nloc + nghost;
  auto pos = [&](std::size_t i, int c) { return i < nloc ? hx(i, c) : g.pos[3 * (i - nloc) + c]; };
  auto idOf = [&](std::size_t i) { return i < nloc ? hid(i) : g.id[i - nloc]; };

  // Points sorted by cell (cells of side <= ell / sqrt(3), keys by (cx, cy, cz)).
  const int nc = std::max(1, static_cast<int>(std::ceil(L * std::sqrt(3.0) / ell * (1 + 1e-9))));
  const double inv = nc / L;
  auto cellCoord = [&](double x) {
    return std::min(nc - 1, std::max(0, static_cast<int>(x * inv)));
  };
  // The temporaries are freed as soon as they are done with (std::vector<T>().swap), so that
  // the peak is that of the linking (sorted positions, order, union-find, cells and columns:
  // about 60 B per point) rather than the sum of every array (about 110 B per point before).
  std::vector<std::uint32_t> order(ntot);
  std::vector<std::uint64_t> sorted_keys(ntot);
  {
    std::vector<std::uint64_t> keys(ntot);
    std::uint64_t kmax = 0;
    for (std::size_t i = 0; i < ntot; ++i) {
      keys[i] =
          (static_cast<std::uint64_t>(cellCoord(pos(i, 0))) * nc + cellCoord(pos(i, 1))) * nc +
          cellCoord(pos(i, 2));
      kmax = std::max(kmax, keys[i]);
    }
    sortByKey(keys, kmax, sorted_keys, order);
  }
  // Sorted positions: contiguous per cell.
  Kokkos::View<double* [3]> sx(
      Kokkos::view_alloc(Kokkos::WithoutInitializing, "caustic::fof::sorted_positions"), ntot);
  {
    auto h = Kokkos::create_mirror_view(sx);
    for (std::size_t s = 0; s < ntot; ++s)
      for (int c = 0; c < 3; ++c)
        h(s, c) = pos(order[s], c);
    Kokkos::deep_copy(sx, h);
  }
  std::vector<std::uint32_t> sroot, ssize; // per sorted point: root (sorted index), size
  linkSortedPoints(sx, std::move(sorted_keys), nc, L, ell, sroot, ssize);
  sx = Kokkos::View<double* [3]>();

  // Back to point order: the root of point p is the root of its sorted index.
  std::vector<std::uint32_t> sortedOf(ntot);
  for (std::size_t s = 0; s < ntot; ++s)
    sortedOf[order[s]] = static_cast<std::uint32_t>(s);
  std::vector<std::uint32_t>().swap(order);
  // Local component labels: the smallest member ID (ghosts included).
  std::vector<std::uint64_t> lab(ntot, ~std::uint64_t(0));
  auto root = [&](std::size_t i) { return sroot[sortedOf[i]]; };
  for (std::size_t i = 0; i < ntot; ++i) {
    const auto r = root(i);
    lab[r] = std::min(lab[r], idOf(i));
  }
  agreeLabels(g, nloc, root, lab, decomp.comm());

  std::vector<std::uint64_t> out(nloc);
  for (std::size_t i = 0; i < nloc; ++i)
    out[i] = lab[root(i)];
  if (keep) {
    std::vector<char> boundary(ntot, 0);
    for (std::size_t k = nloc; k < ntot; ++k)
      boundary[root(k)] = 1;
    for (std::uint32_t i : g.sent)
      boundary[root(i)] = 1;
    keep->assign(nloc, 0);
    for (std::size_t i = 0; i < nloc; ++i) {
      const auto r = root(i);
      (*keep)[i] = boundary[r] || ssize[r] >= min_size;
    }
  }
  return out;
}
} // namespace

std::vector<std::uint64_t> fofLabels(const Particles& parts, const SlabDecomposition& decomp,
                                     double ell) {
  ScopedRegion region("caustic::fofLabels");
  return linkAndLabel(parts, decomp, ell, 0, nullptr);
}

namespace {
constexpr int kPartialWidth = 14; // label bits, n, ref[3], sdx[3], sdx2, sv[3], sv2, pad
constexpr int kRowWidth = 10;     // label bits, n, pos[3], vel[3], sigma, radius

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

// Partial sums per label of the particles that may belong to a kept group, relative to a local
// reference member, in label order; dests: the label's home rank (label mod ranks).
void partialSums(const Particles& parts, const std::vector<std::uint64_t>& labels,
                 const std::vector<char>& keep, double L, int ranks, std::vector<double>& out,
                 std::vector<int>& dests) {
  auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  std::vector<std::uint32_t> idx;
  for (std::size_t i = 0; i < parts.size(); ++i)
    if (keep[i])
      idx.push_back(static_cast<std::uint32_t>(i));
  std::sort(idx.begin(), idx.end(),
            [&](std::uint32_t a, std::uint32_t b) { return labels[a] < labels[b]; });
  for (std::size_t s0 = 0; s0 < idx.size();) {
    const std::uint64_t label = labels[idx[s0]];
    double n = 0, ref[3], sdx[3] = {0, 0, 0}, sdx2 = 0, sv[3] = {0, 0, 0}, sv2 = 0;
    for (int c = 0; c < 3; ++c)
      ref[c] = hx(idx[s0], c);
    std::size_t e = s0;
    for (; e < idx.size() && labels[idx[e]] == label; ++e) {
      const std::uint32_t i = idx[e];
      n += 1;
      for (int c = 0; c < 3; ++c) {
        const double d = minImage(hx(i, c) - ref[c], L);
        sdx[c] += d;
        sdx2 += d * d;
        sv[c] += hp(i, c);
        sv2 += hp(i, c) * hp(i, c);
      }
    }
    s0 = e;
    dests.push_back(static_cast<int>(label % ranks));
    out.insert(out.end(), {labelBits(label), n, ref[0], ref[1], ref[2], sdx[0], sdx[1], sdx[2],
                           sdx2, sv[0], sv[1], sv[2], sv2, 0.0});
  }
}

struct GroupSums {
  double n = 0, ref[3], sx[3] = {0, 0, 0}, sx2 = 0, sv[3] = {0, 0, 0}, sv2 = 0;
  bool init = false;
};

// The partials of each label merged on its home rank, in a fixed order (by source rank, then
// label): each partial shifted to the group's reference, x = ref_g + s + dx with
// s = minimg(ref_p - ref_g).
std::map<std::uint64_t, GroupSums> mergePartials(const std::vector<double>& in, double L) {
  std::map<std::uint64_t, GroupSums> home;
  for (std::size_t r = 0; r < in.size() / kPartialWidth; ++r) {
    const double* v = &in[kPartialWidth * r];
    GroupSums& g = home[labelOf(&v[0])];
    if (!g.init) {
      for (int c = 0; c < 3; ++c)
        g.ref[c] = v[2 + c];
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
    }
    g.sx2 += v[8] + 2 * sdot + v[1] * s2;
    g.sv2 += v[12];
  }
  return home;
}

// Catalogue rows of the groups with at least min_particles members.
std::vector<double> groupRows(const std::map<std::uint64_t, GroupSums>& home, int min_particles,
                              double L) {
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
                 g.sv[0] / g.n, g.sv[1] / g.n, g.sv[2] / g.n, std::sqrt(sig2), std::sqrt(r2)});
  }
  return rows;
}

// The catalogue from every rank's rows, sorted by label.
HaloCatalogue catalogueOf(const std::vector<double>& all, double ell) {
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
  }
  return cat;
}

// The member IDs of the catalogue's groups: (label, id) pairs gathered and sorted.
void addMembers(HaloCatalogue& cat, const Particles& parts,
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

HaloCatalogue findHalos(const Particles& parts, const SlabDecomposition& decomp,
                        double mean_separation, const FofOptions& opt) {
  ScopedRegion region("caustic::findHalos");
  const auto& comm = decomp.comm();
  const double L = decomp.box();
  const double ell = opt.b * mean_separation;
  std::vector<char> keep;
  const auto labels =
      linkAndLabel(parts, decomp, ell, static_cast<std::size_t>(opt.min_particles), &keep);
  // Partial sums per label, to the label's home rank (arriving by source rank, then label).
  std::vector<double> out;
  std::vector<int> dests;
  partialSums(parts, labels, keep, L, comm.size(), out, dests);
  Distributor toHome(comm.get(), HostInts(dests.data(), dests.size()), dests.size());
  std::vector<double> in(kPartialWidth * toHome.imported());
  toHome.forward({Distributor::column(out, kPartialWidth)},
                 {Distributor::column(in, kPartialWidth)});
  const auto rows = groupRows(mergePartials(in, L), opt.min_particles, L);
  HaloCatalogue cat = catalogueOf(allGathered(rows, comm, "findHalos"), ell);
  if (opt.member_ids)
    addMembers(cat, parts, labels, comm);
  return cat;
}

} // namespace caustic
