# All third-party dependencies come from Debian bookworm packages (scripts/setup.sh).
find_package(MPI REQUIRED COMPONENTS C CXX)
# Kokkos 3.4 from Debian's libtrilinos-kokkos-dev. Its KokkosConfig.cmake computes a wrong
# include prefix (/usr/lib/include), so the target is defined here from the installed files.
find_path(KOKKOS_INCLUDE_DIR Kokkos_Core.hpp PATH_SUFFIXES trilinos REQUIRED)
find_library(KOKKOS_CORE_LIB NAMES trilinos_kokkoscore kokkoscore REQUIRED)
find_library(KOKKOS_CONTAINERS_LIB NAMES trilinos_kokkoscontainers kokkoscontainers REQUIRED)
add_library(caustic_kokkos INTERFACE)
target_include_directories(caustic_kokkos SYSTEM INTERFACE ${KOKKOS_INCLUDE_DIR})
target_link_libraries(caustic_kokkos INTERFACE ${KOKKOS_CONTAINERS_LIB} ${KOKKOS_CORE_LIB} dl)
find_package(PkgConfig REQUIRED)

# FFTW3 with its MPI layer, double and single precision.
pkg_check_modules(FFTW3 REQUIRED IMPORTED_TARGET fftw3 fftw3f)
find_library(FFTW3_MPI_LIB NAMES fftw3_mpi REQUIRED)
find_library(FFTW3F_MPI_LIB NAMES fftw3f_mpi REQUIRED)
add_library(caustic_fftw INTERFACE)
target_link_libraries(caustic_fftw INTERFACE ${FFTW3_MPI_LIB} ${FFTW3F_MPI_LIB} PkgConfig::FFTW3 MPI::MPI_CXX)

# Random123 is header-only.
find_path(RANDOM123_INCLUDE_DIR Random123/philox.h REQUIRED)

# Parallel HDF5 (libhdf5-openmpi-dev).
set(HDF5_PREFER_PARALLEL ON)
find_package(HDF5 REQUIRED COMPONENTS C)
if(NOT HDF5_IS_PARALLEL)
  message(FATAL_ERROR "Caustic needs parallel HDF5 (Debian package libhdf5-openmpi-dev)")
endif()

# Trilinos ROL (libtrilinos-rol-dev), the optimiser of `caustic infer`, and the Teuchos
# libraries its headers use. Its ROLConfig.cmake lists every Trilinos package; only these are
# needed.
find_path(ROL_INCLUDE_DIR ROL_TypeU_LineSearchAlgorithm.hpp PATH_SUFFIXES trilinos REQUIRED)
set(_caustic_rol_libs)
foreach(lib trilinos_rol trilinos_teuchosnumerics trilinos_teuchosparameterlist
            trilinos_teuchosparser trilinos_teuchoscore)
  find_library(CAUSTIC_LIB_${lib} NAMES ${lib} REQUIRED)
  list(APPEND _caustic_rol_libs ${CAUSTIC_LIB_${lib}})
endforeach()
add_library(caustic_rol INTERFACE)
target_include_directories(caustic_rol SYSTEM INTERFACE ${ROL_INCLUDE_DIR})
target_link_libraries(caustic_rol INTERFACE ${_caustic_rol_libs})

# Boost.Math (libboost-dev; header-only): the Student t and Fisher F quantiles of the intervals
# of `caustic infer`'s MUSE estimate.
find_package(Boost 1.74 REQUIRED)

find_package(tomlplusplus REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)

if(CAUSTIC_ENABLE_TORCH)
  find_package(Torch REQUIRED)
endif()

find_package(Python3 COMPONENTS Interpreter)

# Folder dependencies are enforced by include directories: each library target exports an
# include root of its own that holds only its folder (a symbolic link in the build tree), so
# that `#include "io/..."` does not compile in pm/, nor `#include "emulators/..."` in io/.
# tests/check_layering.py checks the same rule on the sources.
function(caustic_include_root target folder)
  set(root ${CMAKE_BINARY_DIR}/include_roots/${folder})
  file(MAKE_DIRECTORY ${root})
  if(NOT EXISTS ${root}/${folder})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${folder} ${root}/${folder} SYMBOLIC)
  endif()
  target_include_directories(${target} PUBLIC ${root})
endfunction()
