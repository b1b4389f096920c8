#pragma once
// Distributor: a plan that sends items (rows of any set of columns) to other ranks and back
// again, in the spirit of Cabana's Distributor.
//
// plan() takes the destination rank of each of the first n items. Items bound for another rank
// are exported; with Local::Stay the items bound for this rank stay where they are (a
// migration), with Local::Send they travel like the others (to themselves), so that what is
// received holds every item that ends up on this rank. The plan costs one MPI_Allreduce (how
// many items leave, over all ranks) and, only when some item leaves, one MPI_Alltoall of the
// counts. It then moves any set of columns, all of one call in a single MPI_Alltoallv:
//
//   forward(from, to)   the exported rows of `from` -> rows [0, imported()) of `to`, ordered by
//                       source rank, then by row on the source
//   reverse(from, to)   the inverse: rows [0, imported()) of `from` go back to their source
//                       ranks, into the exported rows they came from
//   migrate(cols)       in place: the exported rows leave, their holes below the new end
//                       kept() are filled by the staying rows from the end (the order of the
//                       rest is kept), and the arrivals follow in forward order: rows
//                       [0, kept() + imported())
//   unmigrate(cols)     the inverse of migrate: every item back on its rank, at its row
//
// A column is any host-accessible View of rank 1 or 2 with contiguous rows of a trivially
// copyable type (View<double*[3]>, View<double*>, View<std::uint64_t*>, View<int*>, a View of
// a POD struct, View<T**> LayoutRight), or a std::vector. The plan and the exchange buffers are
// kept between calls: planning and moving no more rows than before allocates nothing.
#include "pm/core/comm.hpp"

#include <Kokkos_Core.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace caustic {

class Distributor {
public:
  enum class Local { Stay, Send };

  // `rows` rows of `row_bytes` contiguous bytes each, in host memory. The columns a call
  // reads from (forward's `from`, reverse's `from`) are not written.
  struct Column {
    std::byte* data = nullptr;
    std::size_t row_bytes = 0;
    std::size_t rows = 0;
  };
  using Columns = std::vector<Column>;

  template <class View> static Column column(const View& v);
  // A std::vector of `components` values per row.
  template <class T> static Column column(const std::vector<T>& v, std::size_t components = 1);

  Distributor() = default;
  // plan(comm, dest, n, local).
  template <class DestView>
  Distributor(MPI_Comm comm, const DestView& dest, std::size_t n, Local local = Local::Send) {
    plan(comm, dest, n, local);
  }

  // Plans the transfer of items [0, n) (n <= INT_MAX) to the ranks dest(i) of `comm` (which
  // must outlive the plan's use). `exporting`, if known (>= 0), is the number of items this rank
  // exports: when no rank exports any, the destinations are not even scanned. A destination outside
  // the communicator (or a wrong `exporting`) throws CollectiveError on every rank. Collective.
  template <class DestView>
  void plan(MPI_Comm comm, const DestView& dest, std::size_t n, Local local = Local::Send,
            long exporting = -1) {
    static_assert(DestView::rank == 1 &&
                      std::is_same<typename DestView::non_const_value_type, int>::value,
                  "Distributor::plan: destinations are a View of int");
    static_assert(
        Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename DestView::memory_space>::accessible,
        "Distributor::plan: destinations must be host accessible");
    if (n > dest.extent(0))
      throw std::invalid_argument("Distributor::plan: " + std::to_string(n) + " items but " +
                                  std::to_string(dest.extent(0)) + " destinations");
    planItems(comm, dest.data(), n, local, exporting);
  }

  std::size_t size() const { return _n; }          // items planned on this rank
  std::size_t exported() const { return _nsend; }  // items this rank sends away
  std::size_t imported() const { return _nrecv; }  // items this rank receives
  std::size_t kept() const { return _n - _nsend; } // items that stay (Local::Stay)
  // Items exported over all ranks: 0 when nothing moves (then every transfer returns at once).
  unsigned long long totalExported() const { return _total; }
  // Per rank, in items (size of the communicator; zero when nothing moves).
  const std::vector<int>& sendCounts() const { return _send_counts; }
  const std::vector<int>& recvCounts() const { return _recv_counts; }

  // Collective (every rank passes the same number of columns with the same row sizes).
  void forward(const Columns& from, const Columns& to);
  void reverse(const Columns& from, const Columns& to);
  void migrate(const Columns& columns);
  void unmigrate(const Columns& columns);

private:
  void planItems(MPI_Comm comm, const int* dest, std::size_t n, Local local, long exporting);
  // Lists the exported rows (at most `expected`, if given); returns how many there are.
  std::size_t scan(const int* dest, std::size_t expected);
  std::size_t rowBytes(const Columns& a, const Columns* b, std::size_t rows_a, std::size_t rows_b,
                       const char* where) const;
  // Rows of `cols` -> the send buffer (row map[j] if `map`, else first + j).
  void pack(const Columns& cols, const std::size_t* map, std::size_t first, std::size_t count,
            std::size_t width);
  void unpack(const Columns& cols, const std::size_t* map, std::size_t first, std::size_t count,
              std::size_t width);
  // One MPI_Alltoallv of `width`-byte rows, forward (send counts) or back (receive counts).
  void exchange(std::size_t width, bool back);

  // The MPI type of one row, kept while the width stays the same (a type committed for every
  // transfer would allocate inside MPI at every step). Copies start without one.
  class RowType {
  public:
    RowType() = default;
    RowType(const RowType&) {}
    RowType& operator=(const RowType&) { return *this; }
    ~RowType();
    MPI_Datatype get(std::size_t width);

  private:
    MPI_Datatype _type = MPI_DATATYPE_NULL;
    std::size_t _width = 0;
  };

  MPI_Comm _comm = MPI_COMM_NULL;
  int _rank = 0, _ranks = 1;
  Local _local = Local::Send;
  std::size_t _n = 0, _nsend = 0, _nrecv = 0;
  unsigned long long _total = 0;
  std::vector<int> _send_counts, _send_displ, _recv_counts, _recv_displ, _cursor;
  std::vector<std::size_t> _exports;   // exported rows, ascending
  std::vector<std::size_t> _slot_row;  // send slot (by destination rank, then row) -> row
  std::vector<std::size_t> _fill_from; // migrate: the staying row that fills hole _exports[k]
  // Exchange buffers, grown and never shrunk; not zero-filled (every byte read was written) and
  // advised huge pages before their first touch: a first exchange of millions of rows would
  // otherwise spend more time in 4 KB page faults than in copying.
  struct Buffer {
    std::unique_ptr<std::byte[]> data;
    std::size_t size = 0;
  };
  Buffer _sbuf, _rbuf;
  RowType _row;
};

template <class View> Distributor::Column Distributor::column(const View& v) {
  using T = typename View::non_const_value_type;
  static_assert(std::is_trivially_copyable<T>::value,
                "Distributor::column: the values must be trivially copyable");
  static_assert(View::rank == 1 || View::rank == 2, "Distributor::column: rank 1 or 2");
  static_assert(View::rank == 1 ||
                    std::is_same<typename View::array_layout, Kokkos::LayoutRight>::value,
                "Distributor::column: rows must be contiguous (LayoutRight)");
  static_assert(
      Kokkos::SpaceAccessibility<Kokkos::HostSpace, typename View::memory_space>::accessible,
      "Distributor::column: the View must be host accessible");
  if (v.extent(0) > 1 && !v.span_is_contiguous())
    throw std::invalid_argument("Distributor::column: the View " + v.label() +
                                " is not contiguous");
  const std::size_t per_row = View::rank == 2 ? v.extent(1) : 1;
  return Column{reinterpret_cast<std::byte*>(const_cast<T*>(v.data())), per_row * sizeof(T),
                v.extent(0)};
}

template <class T>
Distributor::Column Distributor::column(const std::vector<T>& v, std::size_t components) {
  static_assert(std::is_trivially_copyable<T>::value,
                "Distributor::column: the values must be trivially copyable");
  if (components == 0 || v.size() % components != 0)
    throw std::invalid_argument("Distributor::column: " + std::to_string(v.size()) +
                                " values are not rows of " + std::to_string(components));
  return Column{reinterpret_cast<std::byte*>(const_cast<T*>(v.data())), components * sizeof(T),
                v.size() / components};
}

} // namespace caustic
