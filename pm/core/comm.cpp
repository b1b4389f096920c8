#include "pm/core/comm.hpp"

namespace caustic {

void mpiCheck(int err, const char* where) {
  if (err == MPI_SUCCESS)
    return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(err, msg, &len);
  throw std::runtime_error(std::string(where) + ": MPI error: " + std::string(msg, len));
}

Comm::Comm(MPI_Comm comm, Errors errors) {
  auto* dup = new MPI_Comm;
  const int err = MPI_Comm_dup(comm, dup);
  if (err != MPI_SUCCESS) {
    delete dup;
    mpiCheck(err, "Comm::Comm (MPI_Comm_dup)");
  }
  _comm = std::shared_ptr<MPI_Comm>(dup, [](MPI_Comm* c) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
      MPI_Comm_free(c);
    delete c;
  });
  mpiCheck(MPI_Comm_set_errhandler(*_comm, errors == Errors::Return ? MPI_ERRORS_RETURN
                                                                    : MPI_ERRORS_ARE_FATAL),
           "Comm::Comm (MPI_Comm_set_errhandler)");
  mpiCheck(MPI_Comm_rank(*_comm, &_rank), "Comm::Comm (MPI_Comm_rank)");
  mpiCheck(MPI_Comm_size(*_comm, &_size), "Comm::Comm (MPI_Comm_size)");
}

void Comm::barrier() const {
  mpiCheck(MPI_Barrier(*_comm), "Comm::barrier");
}

std::pair<int, std::string> firstError(const Comm& comm, const std::string& err, const char* where) {
  const int mine = err.empty() ? comm.size() : comm.rank();
  int first = 0;
  mpiCheck(MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, comm.get()), where);
  if (first == comm.size())
    return {-1, ""};
  return {first, broadcastString(comm.get(), err, first, where)};
}

std::string broadcastString(MPI_Comm comm, std::string text, int root, const char* where) {
  int len = static_cast<int>(text.size());
  mpiCheck(MPI_Bcast(&len, 1, MPI_INT, root, comm), where);
  text.resize(static_cast<std::size_t>(len));
  mpiCheck(MPI_Bcast(text.data(), len, MPI_CHAR, root, comm), where);
  return text;
}

} // namespace caustic
