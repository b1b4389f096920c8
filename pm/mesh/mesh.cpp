#include "pm/mesh/mesh.hpp"

#include "pm/core/memory.hpp"
#include "pm/core/profiling.hpp"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <unistd.h>

namespace caustic {

namespace {

void initFFTW() {
  static std::once_flag once;
  std::call_once(once, [] {
    fftw_mpi_init();
    fftwf_mpi_init();
  });
}

// Precision traits over the fftw_ / fftwf_ APIs.
template <class T> struct Fftw;
template <> struct Fftw<double> {
  using plan = fftw_plan;
  static ptrdiff_t localSize(ptrdiff_t n, MPI_Comm c, ptrdiff_t* nx, ptrdiff_t* x0, ptrdiff_t* ny,
                             ptrdiff_t* y0) {
    return fftw_mpi_local_size_3d_transposed(n, n, n / 2 + 1, c, nx, x0, ny, y0);
  }
  static plan r2c(ptrdiff_t n, double* in, MPI_Comm c, unsigned f) {
    return fftw_mpi_plan_dft_r2c_3d(n, n, n, in, reinterpret_cast<fftw_complex*>(in), c,
                                    f | FFTW_MPI_TRANSPOSED_OUT);
  }
  static plan c2r(ptrdiff_t n, double* in, MPI_Comm c, unsigned f) {
    return fftw_mpi_plan_dft_c2r_3d(n, n, n, reinterpret_cast<fftw_complex*>(in), in, c,
                                    f | FFTW_MPI_TRANSPOSED_IN);
  }
  static void execR2C(void* p, double* d) {
    fftw_mpi_execute_dft_r2c(static_cast<plan>(p), d, reinterpret_cast<fftw_complex*>(d));
  }
  static void execC2R(void* p, double* d) {
    fftw_mpi_execute_dft_c2r(static_cast<plan>(p), reinterpret_cast<fftw_complex*>(d), d);
  }
  static void destroy(void* p) { fftw_destroy_plan(static_cast<plan>(p)); }
  static int importWisdomFile(const char* f) { return fftw_import_wisdom_from_filename(f); }
  static int exportWisdomFile(const char* f) { return fftw_export_wisdom_to_filename(f); }
  static void broadcastWisdom(MPI_Comm c) { fftw_mpi_broadcast_wisdom(c); }
  static void gatherWisdom(MPI_Comm c) { fftw_mpi_gather_wisdom(c); }
  static void forgetWisdom() { fftw_forget_wisdom(); }
  static char* wisdomString() { return fftw_export_wisdom_to_string(); }
  static void freeString(char* p) { fftw_free(p); }
};
template <> struct Fftw<float> {
  using plan = fftwf_plan;
  static plan r2c(ptrdiff_t n, float* in, MPI_Comm c, unsigned f) {
    return fftwf_mpi_plan_dft_r2c_3d(n, n, n, in, reinterpret_cast<fftwf_complex*>(in), c,
                                     f | FFTW_MPI_TRANSPOSED_OUT);
  }
  static plan c2r(ptrdiff_t n, float* in, MPI_Comm c, unsigned f) {
    return fftwf_mpi_plan_dft_c2r_3d(n, n, n, reinterpret_cast<fftwf_complex*>(in), in, c,
                                     f | FFTW_MPI_TRANSPOSED_IN);
  }
  static void execR2C(void* p, float* d) {
    fftwf_mpi_execute_dft_r2c(static_cast<plan>(p), d, reinterpret_cast<fftwf_complex*>(d));
  }
  static void execC2R(void* p, float* d) {
    fftwf_mpi_execute_dft_c2r(static_cast<plan>(p), reinterpret_cast<fftwf_complex*>(d), d);
  }
  static void destroy(void* p) { fftwf_destroy_plan(static_cast<plan>(p)); }
  static int importWisdomFile(const char* f) { return fftwf_import_wisdom_from_filename(f); }
  static int exportWisdomFile(const char* f) { return fftwf_export_wisdom_to_filename(f); }
  static void broadcastWisdom(MPI_Comm c) { fftwf_mpi_broadcast_wisdom(c); }
  static void gatherWisdom(MPI_Comm c) { fftwf_mpi_gather_wisdom(c); }
  static void forgetWisdom() { fftwf_forget_wisdom(); }
  static char* wisdomString() { return fftwf_export_wisdom_to_string(); }
  static void freeString(char* p) { fftwf_free(p); }
};

} // namespace

SlabDecomposition::SlabDecomposition(MPI_Comm comm, int n, double box)
    : _comm(comm), _n(n), _box(box) {
  if (n < 2 || n % 2 != 0)
    throw std::invalid_argument("SlabDecomposition: mesh size " + std::to_string(n) +
                                " must be an even integer >= 2");
  if (n < _comm.size())
    throw std::invalid_argument("SlabDecomposition: mesh size " + std::to_string(n) +
                                " has fewer planes than the " + std::to_string(_comm.size()) +
                                " MPI ranks");
  initFFTW();
  ptrdiff_t nx, x0, ny, y0;
  const ptrdiff_t alloc = Fftw<double>::localSize(n, _comm.get(), &nx, &x0, &ny, &y0);
  _localNx = static_cast<int>(nx);
  _xStart = static_cast<int>(x0);
  _localNy = static_cast<int>(ny);
  _yStart = static_cast<int>(y0);
  _allocComplex = alloc > 0 ? static_cast<std::size_t>(alloc) : 1;
  const int size = _comm.size();
  _xStarts.resize(size);
  _localNxs.resize(size);
  mpiCheck(MPI_Allgather(&_xStart, 1, MPI_INT, _xStarts.data(), 1, MPI_INT, _comm.get()),
           "SlabDecomposition");
  mpiCheck(MPI_Allgather(&_localNx, 1, MPI_INT, _localNxs.data(), 1, MPI_INT, _comm.get()),
           "SlabDecomposition");
  _planeOwner.assign(n, -1);
  for (int r = 0; r < size; ++r)
    for (int i = 0; i < _localNxs[r]; ++i)
      _planeOwner[_xStarts[r] + i] = r;
}

unsigned fftPlannerFlags(const std::string& name) {
  if (name == "estimate")
    return FFTW_ESTIMATE;
  if (name == "measure")
    return FFTW_MEASURE;
  if (name == "patient")
    return FFTW_PATIENT;
  throw std::invalid_argument("FFT planner \"" + name +
                              "\" is not one of \"estimate\", \"measure\", \"patient\"");
}

template <class T> WisdomImport importWisdom(const std::string& path, MPI_Comm comm) {
  initFFTW();
  const Comm fftw(comm, Comm::Errors::Fatal); // FFTW ignores MPI return codes
  int result = static_cast<int>(WisdomImport::NoFile);
  if (fftw.rank() == 0 && std::ifstream(path).good())
    result = static_cast<int>(Fftw<T>::importWisdomFile(path.c_str()) ? WisdomImport::Imported
                                                                      : WisdomImport::Invalid);
  MPI_Bcast(&result, 1, MPI_INT, 0, fftw.get());
  Fftw<T>::broadcastWisdom(fftw.get());
  return static_cast<WisdomImport>(result);
}

template <class T> void exportWisdom(const std::string& path, MPI_Comm comm) {
  const Comm fftw(comm, Comm::Errors::Fatal);
  Fftw<T>::gatherWisdom(fftw.get());
  if (fftw.rank() != 0)
    return;
  // Unique to this process on any host (a shared cache directory may be written from several).
  char host[128] = {};
  if (gethostname(host, sizeof(host) - 1) != 0)
    std::snprintf(host, sizeof(host), "host");
  const std::string tmp = path + "." + host + "-" + std::to_string(::getpid()) + ".tmp";
  if (!Fftw<T>::exportWisdomFile(tmp.c_str()) || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    throw std::runtime_error("exportWisdom: cannot write FFTW wisdom to " + path);
  }
}

template <> std::string wisdomFile<double>(const std::string& base) {
  return base;
}
template <> std::string wisdomFile<float>(const std::string& base) {
  return base + ".f";
}

template <class T> std::string wisdomText() {
  initFFTW();
  char* p = Fftw<T>::wisdomString();
  if (!p)
    return {};
  std::string text(p);
  Fftw<T>::freeString(p);
  return text;
}

template std::string wisdomText<float>();
template std::string wisdomText<double>();
template WisdomImport importWisdom<float>(const std::string&, MPI_Comm);
template WisdomImport importWisdom<double>(const std::string&, MPI_Comm);
template void exportWisdom<float>(const std::string&, MPI_Comm);
template void exportWisdom<double>(const std::string&, MPI_Comm);

double SlabDecomposition::kFundamental() const {
  return 2.0 * M_PI / _box;
}

int SlabDecomposition::ownerOfPlane(long ix) const {
  long w = ix % _n;
  if (w < 0)
    w += _n;
  return _planeOwner[static_cast<std::size_t>(w)];
}

int SlabDecomposition::ownerOfPosition(double x) const {
  if (!(x >= 0 && x < _box))
    x = x - _box * std::floor(x / _box);
  return _planeOwner[static_cast<std::size_t>(planeOfPosition(x, 1.0 / cell(), _n))];
}

template <class T>
Field<T>::Field(std::shared_ptr<const SlabDecomposition> decomp, const std::string& label)
    : _decomp(std::move(decomp)),
      // huge pages: a mesh is read and written at scattered places
      _data(zeroedHugePageView<real_view>(label, _decomp->realAlloc())) {}

template <class T>
FFT<T>::FFT(std::shared_ptr<const SlabDecomposition> decomp, unsigned flags, Field<T>* buffer)
    : _decomp(std::move(decomp)) {
  if (buffer && &buffer->decomp() != _decomp.get())
    throw std::logic_error("FFT::FFT: the planning buffer belongs to another decomposition");
  std::unique_ptr<Field<T>> own;
  if (!buffer)
    own = std::make_unique<Field<T>>(_decomp, "caustic::FFT::scratch");
  Field<T>& scratch = buffer ? *buffer : *own;
  // FFTW ignores MPI return codes: its plans communicate on (duplicates of) a communicator
  // whose errors abort the job.
  const Comm fftw(_decomp->comm().get(), Comm::Errors::Fatal);
  const MPI_Comm c = fftw.get();
  _r2c = Fftw<T>::r2c(_decomp->n(), scratch.real().data(), c, flags);
  _c2r = Fftw<T>::c2r(_decomp->n(), scratch.real().data(), c, flags);
  if (!(flags & FFTW_ESTIMATE) && _r2c && _c2r) {
    // Each rank measured its local sub-plans itself, and may have chosen others than rank 0;
    // wisdom saved from this run would then not give back this run's plans. So all ranks take
    // one wisdom (gathered on rank 0, then broadcast in place of their own) and plan again from
    // it (no new measurement): the plans are exactly those that wisdom reproduces.
    Fftw<T>::destroy(_r2c);
    Fftw<T>::destroy(_c2r);
    Fftw<T>::gatherWisdom(c);
    if (fftw.rank() != 0)
      Fftw<T>::forgetWisdom();
    Fftw<T>::broadcastWisdom(c);
    _r2c = Fftw<T>::r2c(_decomp->n(), scratch.real().data(), c, flags);
    _c2r = Fftw<T>::c2r(_decomp->n(), scratch.real().data(), c, flags);
  }
  if (!_r2c || !_c2r)
    throw std::runtime_error("FFT::FFT: FFTW could not make a plan for a " +
                             std::to_string(_decomp->n()) + "^3 mesh");
}

template <class T> FFT<T>::~FFT() {
  if (_r2c)
    Fftw<T>::destroy(_r2c);
  if (_c2r)
    Fftw<T>::destroy(_c2r);
}

template <class T> void FFT<T>::forward(Field<T>& f) const {
  ScopedRegion region("caustic::FFT::forward");
  Kokkos::fence();
  Fftw<T>::execR2C(_r2c, f.real().data());
}

template <class T> void FFT<T>::backward(Field<T>& f, bool normalise) const {
  ScopedRegion region("caustic::FFT::backward");
  Kokkos::fence();
  Fftw<T>::execC2R(_c2r, f.real().data());
  if (!normalise)
    return;
  const int n = _decomp->n();
  const T norm = T(1.0 / (static_cast<double>(n) * n * n));
  auto d = f.real();
  Kokkos::parallel_for(
      "caustic::FFT::normalise", Kokkos::RangePolicy<>(0, d.extent(0)),
      KOKKOS_LAMBDA(const std::size_t i) { d(i) *= norm; });
  Kokkos::fence();
}

template class Field<float>;
template class Field<double>;
template class FFT<float>;
template class FFT<double>;

} // namespace caustic
