#include "common.hpp"

#include "io/atomic_file.hpp"
#include "io/snapshot.hpp"
#include "pm/ic/initial_conditions.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
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
      // A read-only directory shows now, not after the first hours of a run.
      const std::string probe = dir + "/.caustic_write_test";
      std::FILE* f = std::fopen(probe.c_str(), "w");
      if (!f)
        throw std::runtime_error("output directory " + dir + ": cannot write (" +
                                 std::strerror(errno) + ")");
      std::fclose(f);
      std::remove(probe.c_str());
    } catch (const std::exception& e) {
      err = e.what();
    }
  }
  int len = static_cast<int>(err.size());
  mpiCheck(MPI_Bcast(&len, 1, MPI_INT, 0, ctx.comm().get()), "prepareOutput");
  err.resize(len);
  mpiCheck(MPI_Bcast(err.data(), len, MPI_CHAR, 0, ctx.comm().get()), "prepareOutput");
  if (!err.empty())
    throw ParamError(err); // the same on every rank: exit code 2 with the message
}

template <class T>
Particles makeRunInitialConditions(RunContext& ctx, const Params& params, const Cosmology& cosmo,
                                   const LinearPower& power) {
  const auto& sim = params.simulation;
  auto lattice =
      std::make_shared<const SlabDecomposition>(ctx.comm().get(), sim.particles, sim.box);
  ICOptions ico;
  ico.noise = {sim.seed, sim.fixed_amplitude, sim.paired};
  ico.lpt_order = sim.lpt_order;
  ico.a_start = sim.a_start;
  ico.lattice_offset = latticeOffset(params);
  PhaseTimer t(ctx, "initial_conditions");
  return makeInitialConditions<T>(lattice, cosmo, power, ico);
}

template Particles makeRunInitialConditions<float>(RunContext&, const Params&, const Cosmology&,
                                                   const LinearPower&);
template Particles makeRunInitialConditions<double>(RunContext&, const Params&, const Cosmology&,
                                                    const LinearPower&);

} // namespace caustic
