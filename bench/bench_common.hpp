#pragma once
// What the benchmark programs share: reductions of a figure over the ranks, and the program's
// entry (MPI, Kokkos, the allocator setup `caustic` uses; command-line errors and --help
// printed by rank 0 only; any other error reported by the rank that met it, exit code 1).
#include "pm/core/memory.hpp"

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <mpi.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace caustic::bench {

inline double maxOver(double v, MPI_Comm c = MPI_COMM_WORLD) {
  double m;
  MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_MAX, c);
  return m;
}

inline double sumOver(double v, MPI_Comm c = MPI_COMM_WORLD) {
  double m;
  MPI_Allreduce(&v, &m, 1, MPI_DOUBLE, MPI_SUM, c);
  return m;
}

// Median of the values (the upper one of an even count).
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// `setup` adds the program's options to the command line and returns what runs once they are
// parsed (its result is the exit code).
inline int benchMain(int argc, char** argv, const std::string& name, const std::string& purpose,
                     const std::function<std::function<int()>(CLI::App&)>& setup) {
  MPI_Init(&argc, &argv);
  int rc = 0;
  {
    Kokkos::ScopeGuard kokkos(argc, argv);
    configureAllocator();
    CLI::App app{name + ": " + purpose};
    const std::function<int()> run = setup(app);
    try {
      app.parse(argc, argv);
      rc = run();
    } catch (const CLI::ParseError& e) {
      int r;
      MPI_Comm_rank(MPI_COMM_WORLD, &r);
      rc = r == 0 ? app.exit(e) : e.get_exit_code();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s: error: %s\n", name.c_str(), e.what());
      rc = 1;
    }
  }
  MPI_Finalize();
  return rc;
}

} // namespace caustic::bench
