#pragma once
// MPI communicator owned by the objects that use it (duplicated, freed on destruction). Its MPI
// errors come back as return codes (MPI_ERRORS_RETURN): every call on it goes through
// mpiCheck, which throws naming the call. Libraries that ignore return codes (FFTW-MPI) get a
// duplicate whose errors abort the job instead (Comm::Errors::Fatal).
#include <mpi.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace caustic {

// Throws std::runtime_error naming `where` when an MPI call fails.
void mpiCheck(int err, const char* where);

// An error that every rank of the communicator met alike (a collective decision): the program
// can report it once and exit normally instead of aborting the job.
class CollectiveError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

class Comm;

// The lowest rank whose `err` is not empty and its message, on every rank; {-1, ""} when no
// rank's is. For a failure met on some ranks only (a file one rank cannot read), so that every
// rank stops alike. Collective.
std::pair<int, std::string> firstError(const Comm& comm, const std::string& err, const char* where);

// `text` as held by rank `root`, on every rank (length, then characters). Collective.
std::string broadcastString(MPI_Comm comm, std::string text, int root, const char* where);

class Comm {
public:
  enum class Errors { Return, Fatal };
  // Duplicates `comm` with the error handler MPI_ERRORS_RETURN (Errors::Return) or
  // MPI_ERRORS_ARE_FATAL (Errors::Fatal); the duplicate is freed when the last copy of this
  // object goes away. Collective.
  explicit Comm(MPI_Comm comm, Errors errors = Errors::Return);
  MPI_Comm get() const { return *_comm; }
  int rank() const { return _rank; }
  int size() const { return _size; }
  void barrier() const;

private:
  std::shared_ptr<MPI_Comm> _comm;
  int _rank = 0;
  int _size = 1;
};

// MPI datatype of a C++ arithmetic type.
template <class T> MPI_Datatype mpiType();
template <> inline MPI_Datatype mpiType<double>() {
  return MPI_DOUBLE;
}
template <> inline MPI_Datatype mpiType<float>() {
  return MPI_FLOAT;
}
template <> inline MPI_Datatype mpiType<long long>() {
  return MPI_LONG_LONG;
}
template <> inline MPI_Datatype mpiType<unsigned long long>() {
  return MPI_UNSIGNED_LONG_LONG;
}
template <> inline MPI_Datatype mpiType<unsigned long>() {
  return MPI_UNSIGNED_LONG;
}
template <> inline MPI_Datatype mpiType<long>() {
  return MPI_LONG;
}
template <> inline MPI_Datatype mpiType<int>() {
  return MPI_INT;
}

// Every rank's `mine`, concatenated in rank order, on every rank (`where` names the caller in
// errors). Collective.
template <class T>
std::vector<T> allGathered(const std::vector<T>& mine, const Comm& comm, const char* where) {
  const int size = comm.size();
  int n = static_cast<int>(mine.size());
  std::vector<int> counts(size), displ(size, 0);
  mpiCheck(MPI_Allgather(&n, 1, MPI_INT, counts.data(), 1, MPI_INT, comm.get()), where);
  for (int r = 1; r < size; ++r)
    displ[r] = displ[r - 1] + counts[r - 1];
  std::vector<T> all(static_cast<std::size_t>(displ[size - 1] + counts[size - 1]));
  mpiCheck(MPI_Allgatherv(mine.data(), n, mpiType<T>(), all.data(), counts.data(), displ.data(),
                          mpiType<T>(), comm.get()),
           where);
  return all;
}

} // namespace caustic
