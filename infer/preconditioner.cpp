#include "infer/preconditioner.hpp"

#include "pm/core/profiling.hpp"
#include "pm/grad/lpt_model.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

FourierPreconditioner::FourierPreconditioner(std::shared_ptr<const SlabDecomposition> lattice)
    : _lattice(std::move(lattice)), _fft(std::make_unique<FFT<double>>(_lattice)) {
  const int h = _lattice->n() / 2;
  setCurvature(std::vector<double>(3 * h * h + 1, 0.0));
}

void FourierPreconditioner::setCurvature(const std::vector<double>& c) {
  const int h = _lattice->n() / 2;
  if (c.size() != std::size_t(3 * h * h + 1))
    throw std::invalid_argument("FourierPreconditioner: " + std::to_string(c.size()) +
                                " curvature values; expected 3 (N/2)^2 + 1 = " +
                                std::to_string(3 * h * h + 1));
  _c = c;
  _p = Kokkos::View<double*>("caustic::FourierPreconditioner::p", c.size());
  _pinv = Kokkos::View<double*>("caustic::FourierPreconditioner::pinv", c.size());
  auto host = Kokkos::create_mirror_view(_p), hinv = Kokkos::create_mirror_view(_pinv);
  for (std::size_t i = 0; i < c.size(); ++i) {
    hinv(i) = std::sqrt(1.0 + std::max(0.0, c[i]));
    host(i) = 1.0 / hinv(i);
  }
  Kokkos::deep_copy(_p, host);
  Kokkos::deep_copy(_pinv, hinv);
}

void FourierPreconditioner::multiply(Field<double>& f, const Kokkos::View<double*>& table) const {
  ScopedRegion region("caustic::FourierPreconditioner::apply");
  _fft->forward(f);
  auto c = f.complex();
  auto p = table;
  _lattice->forEachMode("caustic::FourierPreconditioner::apply",
                        KOKKOS_LAMBDA(const MeshMode& m) { c(m.index) *= p(m.m2()); });
  _fft->backward(f);
}

void FourierPreconditioner::apply(Field<double>& f) const { multiply(f, _p); }

void FourierPreconditioner::applyInverse(Field<double>& f) const { multiply(f, _pinv); }

void FourierPreconditioner::estimate(
    const std::function<void(const Field<double>&, Field<double>&)>& likelihood_product,
    int probes, std::uint64_t seed) {
  ScopedRegion region("caustic::FourierPreconditioner::estimate");
  const int h = _lattice->n() / 2;
  const std::size_t nb = std::size_t(3 * h * h + 1);
  Kokkos::View<double*> num("caustic::FourierPreconditioner::num", nb),
      den("caustic::FourierPreconditioner::den", nb);
  Field<double> v(_lattice, "caustic::FourierPreconditioner::probe"),
      hv(_lattice, "caustic::FourierPreconditioner::product");
  for (int i = 0; i < probes; ++i) {
    NoiseOptions opt;
    opt.seed = seed + static_cast<std::uint64_t>(i);
    whiteNoiseRealSpace(v, *_fft, opt);
    likelihood_product(v, hv);
    _fft->forward(v);
    _fft->forward(hv);
    auto cv = v.complex(), ch = hv.complex();
    _lattice->forEachMode("caustic::FourierPreconditioner::bin", KOKKOS_LAMBDA(const MeshMode& m) {
      const auto a = cv(m.index), b = ch(m.index);
      Kokkos::atomic_add(&num(m.m2()), m.weight * (a.real() * b.real() + a.imag() * b.imag()));
      Kokkos::atomic_add(&den(m.m2()), m.weight * (a.real() * a.real() + a.imag() * a.imag()));
    });
  }
  auto hn = Kokkos::create_mirror_view(num), hd = Kokkos::create_mirror_view(den);
  Kokkos::deep_copy(hn, num);
  Kokkos::deep_copy(hd, den);
  std::vector<double> sums(2 * nb);
  for (std::size_t i = 0; i < nb; ++i) {
    sums[i] = hn(i);
    sums[nb + i] = hd(i);
  }
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, sums.data(), static_cast<int>(2 * nb), MPI_DOUBLE, MPI_SUM,
                         _lattice->comm().get()),
           "FourierPreconditioner::estimate");
  std::vector<double> c(nb, -1.0);
  for (std::size_t i = 0; i < nb; ++i)
    if (sums[nb + i] > 0)
      c[i] = std::max(0.0, sums[i] / sums[nb + i]);
  // Shells without probe power (DC, Nyquist-only shells, empty |m|^2) take the nearest value.
  for (std::size_t i = 0; i < nb; ++i)
    if (c[i] < 0) {
      for (std::size_t d = 1; d < nb; ++d) {
        if (i >= d && c[i - d] >= 0 && sums[nb + i - d] > 0) {
          c[i] = c[i - d];
          break;
        }
        if (i + d < nb && sums[nb + i + d] > 0) {
          c[i] = sums[i + d] / sums[nb + i + d];
          break;
        }
      }
      if (c[i] < 0)
        c[i] = 0.0;
    }
  setCurvature(c);
}

} // namespace caustic
