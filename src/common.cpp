#include "common.hpp"

#include "io/atomic_file.hpp"

#include <cstdio>
#include <stdexcept>

namespace caustic {

LinearPower makeLinearPower(const Params& params) {
  if (params.power.type == PowerParams::Type::Tabulated)
    return LinearPower::fromTable(params.power.file, params.cosmology, params.power.normalize);
  return LinearPower::eisensteinHu(params.cosmology);
}

void prepareOutput(const RunContext& ctx, const std::string& dir) {
  std::string err;
  if (ctx.root()) {
    try {
      makeDirectories(dir);
    } catch (const std::exception& e) {
      err = e.what();
    }
  }
  int len = static_cast<int>(err.size());
  MPI_Bcast(&len, 1, MPI_INT, 0, ctx.comm().get());
  err.resize(len);
  MPI_Bcast(err.data(), len, MPI_CHAR, 0, ctx.comm().get());
  if (!err.empty())
    throw std::runtime_error(err);
}

std::string format(const char* fmt, double v) {
  char b[64];
  std::snprintf(b, sizeof b, fmt, v);
  return b;
}

} // namespace caustic
