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

Comm::Comm(MPI_Comm comm) {
  auto* dup = new MPI_Comm;
  mpiCheck(MPI_Comm_dup(comm, dup), "Comm::Comm");
  _comm = std::shared_ptr<MPI_Comm>(dup, [](MPI_Comm* c) {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized)
      MPI_Comm_free(c);
    delete c;
  });
  MPI_Comm_rank(*_comm, &_rank);
  MPI_Comm_size(*_comm, &_size);
}

void Comm::barrier() const {
  mpiCheck(MPI_Barrier(*_comm), "Comm::barrier");
}

} // namespace caustic
