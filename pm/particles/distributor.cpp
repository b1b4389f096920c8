#include "pm/particles/distributor.hpp"

#include "pm/core/memory.hpp"
#include "pm/core/profiling.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <numeric>

namespace caustic {

namespace {
using HostRange = Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>;

// Grows `buf` to at least `bytes` (never shrinks: moving as many rows as before allocates
// nothing); the contents are not kept.
template <class Buffer> std::byte* room(Buffer& buf, std::size_t bytes) {
  if (buf.size < bytes) {
    buf.data.reset();                     // the old block first: the peak holds one of them
    buf.data.reset(new std::byte[bytes]); // default-initialised: untouched until written
    buf.size = bytes;
    adviseHugePages(buf.data.get(), bytes);
  }
  return buf.data.get();
}

void copyRow(const Distributor::Columns& cols, std::size_t from, std::size_t to) {
  for (const auto& c : cols)
    std::memcpy(c.data + to * c.row_bytes, c.data + from * c.row_bytes, c.row_bytes);
}
} // namespace

// (Over 80 lines: counting, the collective checks that keep every rank agreeing, and the slot
// maps of both modes share their arrays; split, each piece would take half a dozen of them.)
void Distributor::planItems(MPI_Comm comm, const int* dest, std::size_t n, Local local,
                            long exporting) {
  ScopedRegion region("caustic::Distributor::plan");
  if (n > static_cast<std::size_t>(INT_MAX))
    throw std::invalid_argument("Distributor::plan: " + std::to_string(n) +
                                " items exceed the MPI count limit");
  _comm = comm;
  mpiCheck(MPI_Comm_rank(comm, &_rank), "Distributor::plan");
  mpiCheck(MPI_Comm_size(comm, &_ranks), "Distributor::plan");
  _local = local;
  _n = n;
  _nsend = _nrecv = 0;
  _total = 0;
  _send_counts.assign(_ranks, 0);
  _recv_counts.assign(_ranks, 0);
  _send_displ.assign(_ranks, 0);
  _recv_displ.assign(_ranks, 0);
  _exports.clear();
  _slot_row.clear();
  _fill_from.clear();

  // With a known number of exports, nothing is scanned when nothing moves anywhere.
  const bool known = exporting >= 0;
  bool bad = false;
  std::size_t found = 0;
  if (!known)
    found = scan(dest, std::size_t(-1));
  unsigned long long mine = known ? static_cast<unsigned long long>(exporting) : found;
  mpiCheck(MPI_Allreduce(&mine, &_total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm),
           "Distributor::plan");
  if (_total == 0)
    return;
  if (known) {
    found = scan(dest, static_cast<std::size_t>(exporting));
    bad = found != static_cast<std::size_t>(exporting);
  }

  // Counts by destination; a bad destination turns this rank's counts into -1, which every
  // rank sees after the Alltoall: all throw together instead of waiting on each other.
  std::string problem;
  for (std::size_t i : _exports) {
    const int r = dest[i];
    if (r < 0 || r >= _ranks) {
      problem = "item " + std::to_string(i) + " has destination " + std::to_string(r);
      bad = true;
      break;
    }
    ++_send_counts[r];
  }
  if (bad && problem.empty())
    problem =
        std::to_string(found) + " items leave, not the " + std::to_string(exporting) + " announced";
  if (bad)
    std::fill(_send_counts.begin(), _send_counts.end(), -1);
  mpiCheck(MPI_Alltoall(_send_counts.data(), 1, MPI_INT, _recv_counts.data(), 1, MPI_INT, comm),
           "Distributor::plan");
  std::string bad_ranks;
  for (int r = 0; r < _ranks; ++r)
    if (_recv_counts[r] < 0)
      bad_ranks += (bad_ranks.empty() ? "" : ", ") + std::to_string(r);
  if (!bad_ranks.empty()) {
    const std::string where = "Distributor::plan: invalid destinations on rank(s) " + bad_ranks +
                              " of " + std::to_string(_ranks);
    _total = 0;
    throw CollectiveError(bad ? where + " (here: " + problem + ")" : where);
  }
  for (int r = 1; r < _ranks; ++r) {
    _send_displ[r] = _send_displ[r - 1] + _send_counts[r - 1];
    _recv_displ[r] = _recv_displ[r - 1] + _recv_counts[r - 1];
  }
  _nsend = _exports.size();
  _nrecv = static_cast<std::size_t>(_recv_displ[_ranks - 1]) + _recv_counts[_ranks - 1];

  // Send slots: by destination rank, then by row (a counting sort; sequential: the order of
  // the slots is the plan).
  _slot_row.resize(_nsend);
  _cursor.assign(_send_displ.begin(), _send_displ.end());
  for (std::size_t i : _exports)
    _slot_row[_cursor[dest[i]]++] = i;

  // migrate(): each hole below the new end gets the last staying row not yet taken.
  if (_local == Local::Stay) {
    const std::size_t kept = _n - _nsend;
    std::size_t tail = _n, e = _nsend;
    for (std::size_t k = 0; k < _nsend && _exports[k] < kept; ++k) {
      --tail;
      while (e > 0 && _exports[e - 1] == tail) { // an exported row: skip it
        --e;
        --tail;
      }
      _fill_from.push_back(tail); // into the hole _exports[k]
    }
  }
}

std::size_t Distributor::scan(const int* dest, std::size_t expected) {
  const int me = _rank;
  const bool stay = _local == Local::Stay;
  std::size_t count = _n;
  if (expected != std::size_t(-1))
    count = expected;
  else if (stay)
    Kokkos::parallel_reduce(
        "caustic::Distributor::countExports", HostRange(0, _n),
        [=](const std::size_t i, std::size_t& c) { c += dest[i] != me ? 1 : 0; }, count);
  _exports.resize(count);
  std::size_t* out = _exports.data();
  std::size_t found = 0;
  // The exported rows in ascending order (a compaction by prefix sum); writes stay within
  // `count` even if `expected` is wrong.
  Kokkos::parallel_scan(
      "caustic::Distributor::exports", HostRange(0, _n),
      [=](const std::size_t i, std::size_t& pos, const bool final) {
        if (!stay || dest[i] != me) {
          if (final && pos < count)
            out[pos] = i;
          ++pos;
        }
      },
      found);
  _exports.resize(std::min(found, count));
  return found;
}

std::size_t Distributor::rowBytes(const Columns& a, const Columns* b, std::size_t rows_a,
                                  std::size_t rows_b, const char* where) const {
  if (b && b->size() != a.size())
    throw std::invalid_argument(std::string(where) + ": " + std::to_string(a.size()) +
                                " columns to " + std::to_string(b->size()));
  std::size_t width = 0;
  for (std::size_t k = 0; k < a.size(); ++k) {
    if (a[k].rows < rows_a)
      throw std::invalid_argument(std::string(where) + ": column " + std::to_string(k) + " has " +
                                  std::to_string(a[k].rows) + " rows, " + std::to_string(rows_a) +
                                  " needed");
    if (b && (*b)[k].row_bytes != a[k].row_bytes)
      throw std::invalid_argument(std::string(where) + ": column " + std::to_string(k) +
                                  " has rows of " + std::to_string(a[k].row_bytes) + " and " +
                                  std::to_string((*b)[k].row_bytes) + " bytes");
    if (b && (*b)[k].rows < rows_b)
      throw std::invalid_argument(std::string(where) + ": target column " + std::to_string(k) +
                                  " has " + std::to_string((*b)[k].rows) + " rows, " +
                                  std::to_string(rows_b) + " needed");
    width += a[k].row_bytes;
  }
  if (width > static_cast<std::size_t>(INT_MAX))
    throw std::invalid_argument(std::string(where) + ": rows of " + std::to_string(width) +
                                " bytes");
  return width;
}

void Distributor::pack(const Columns& cols, const std::size_t* map, std::size_t first,
                       std::size_t count, std::size_t width) {
  std::byte* buf = room(_sbuf, count * width);
  Kokkos::parallel_for("caustic::Distributor::pack", HostRange(0, count), [&](const std::size_t j) {
    const std::size_t row = map ? map[j] : first + j;
    std::byte* dst = buf + j * width;
    for (const auto& c : cols) {
      std::memcpy(dst, c.data + row * c.row_bytes, c.row_bytes);
      dst += c.row_bytes;
    }
  });
}

void Distributor::unpack(const Columns& cols, const std::size_t* map, std::size_t first,
                         std::size_t count, std::size_t width) {
  const std::byte* buf = _rbuf.data.get();
  Kokkos::parallel_for("caustic::Distributor::unpack", HostRange(0, count),
                       [&](const std::size_t j) {
                         const std::size_t row = map ? map[j] : first + j;
                         const std::byte* src = buf + j * width;
                         for (const auto& c : cols) {
                           std::memcpy(c.data + row * c.row_bytes, src, c.row_bytes);
                           src += c.row_bytes;
                         }
                       });
}

void Distributor::exchange(std::size_t width, bool back) {
  const auto& sc = back ? _recv_counts : _send_counts;
  const auto& sd = back ? _recv_displ : _send_displ;
  const auto& rc = back ? _send_counts : _recv_counts;
  const auto& rd = back ? _send_displ : _recv_displ;
  room(_rbuf, (back ? _nsend : _nrecv) * width);
  // One row is one element: the counts stay item counts, far from the int limit.
  const MPI_Datatype row = _row.get(width);
  mpiCheck(MPI_Alltoallv(_sbuf.data.get(), sc.data(), sd.data(), row, _rbuf.data.get(), rc.data(),
                         rd.data(), row, _comm),
           "Distributor: MPI_Alltoallv");
}

Distributor::RowType::~RowType() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (_type != MPI_DATATYPE_NULL && !finalized)
    MPI_Type_free(&_type);
}

MPI_Datatype Distributor::RowType::get(std::size_t width) {
  if (_type != MPI_DATATYPE_NULL && _width == width)
    return _type;
  if (_type != MPI_DATATYPE_NULL)
    MPI_Type_free(&_type);
  _type = MPI_DATATYPE_NULL;
  mpiCheck(MPI_Type_contiguous(static_cast<int>(width), MPI_BYTE, &_type), "Distributor");
  mpiCheck(MPI_Type_commit(&_type), "Distributor");
  _width = width;
  return _type;
}

void Distributor::forward(const Columns& from, const Columns& to) {
  ScopedRegion region("caustic::Distributor::forward");
  const std::size_t width = rowBytes(from, &to, _n, _nrecv, "Distributor::forward");
  if (_total == 0 || width == 0)
    return;
  pack(from, _slot_row.data(), 0, _nsend, width);
  exchange(width, false);
  unpack(to, nullptr, 0, _nrecv, width);
}

void Distributor::reverse(const Columns& from, const Columns& to) {
  ScopedRegion region("caustic::Distributor::reverse");
  const std::size_t width = rowBytes(from, &to, _nrecv, _n, "Distributor::reverse");
  if (_total == 0 || width == 0)
    return;
  pack(from, nullptr, 0, _nrecv, width);
  exchange(width, true);
  unpack(to, _slot_row.data(), 0, _nsend, width);
}

void Distributor::migrate(const Columns& columns) {
  ScopedRegion region("caustic::Distributor::migrate");
  const std::size_t width =
      rowBytes(columns, nullptr, std::max(_n, kept() + _nrecv), 0, "Distributor::migrate");
  if (_total == 0 || width == 0)
    return;
  pack(columns, _slot_row.data(), 0, _nsend, width);
  exchange(width, false);
  // Holes (below kept()) and staying rows (at or above it) are distinct: no row is both read
  // and written.
  const std::size_t *from = _fill_from.data(), *hole = _exports.data();
  Kokkos::parallel_for("caustic::Distributor::fillHoles", HostRange(0, _fill_from.size()),
                       [&](const std::size_t k) { copyRow(columns, from[k], hole[k]); });
  unpack(columns, nullptr, kept(), _nrecv, width);
}

void Distributor::unmigrate(const Columns& columns) {
  ScopedRegion region("caustic::Distributor::unmigrate");
  const std::size_t width =
      rowBytes(columns, nullptr, std::max(_n, kept() + _nrecv), 0, "Distributor::unmigrate");
  if (_total == 0 || width == 0)
    return;
  // The arrivals first: putting the staying rows back overwrites them.
  pack(columns, nullptr, kept(), _nrecv, width);
  exchange(width, true);
  const std::size_t *from = _fill_from.data(), *hole = _exports.data();
  Kokkos::parallel_for("caustic::Distributor::unfillHoles", HostRange(0, _fill_from.size()),
                       [&](const std::size_t k) { copyRow(columns, hole[k], from[k]); });
  unpack(columns, _slot_row.data(), 0, _nsend, width);
}

} // namespace caustic
