#include "infer/mock.hpp"

#include "pm/grad/lpt_model.hpp"

#include <cmath>

namespace caustic {

void makeMockData(const DiffConfig& cfg, const DiffParams& p, double bias, double variance,
                  std::uint64_t seed, std::uint64_t noise_seed, Field<double>& data,
                  Field<double>* omega, Field<double>* delta) {
  Field<double> w(cfg.lattice, "caustic::makeMockData::omega");
  {
    FFT<double> fft(cfg.lattice);
    NoiseOptions no;
    no.seed = seed;
    whiteNoiseRealSpace(w, fft, no);
  }
  // The model's field: a posterior without free parameters evaluates it (its data and variance
  // are placeholders; only model() is read).
  auto placeholder = std::make_shared<Field<double>>(cfg.mesh, "caustic::makeMockData::unit");
  Kokkos::deep_copy(placeholder->real(), 1.0);
  FieldPosterior model(cfg, p, {placeholder, placeholder, nullptr}, {}, bias);
  model.value(w, {});
  Field<double> eps(cfg.mesh, "caustic::makeMockData::eps");
  {
    FFT<double> fft(cfg.mesh);
    NoiseOptions no;
    no.seed = noise_seed;
    whiteNoiseRealSpace(eps, fft, no);
  }
  auto d = data.real(), m = model.model().real(), e = eps.real();
  const double b = bias, s = std::sqrt(variance);
  Kokkos::parallel_for(
      "caustic::makeMockData::data", Kokkos::RangePolicy<>(0, d.extent(0)),
      KOKKOS_LAMBDA(std::size_t i) { d(i) = b * m(i) + s * e(i); });
  Kokkos::fence();
  if (omega)
    Kokkos::deep_copy(omega->real(), w.real());
  if (delta)
    Kokkos::deep_copy(delta->real(), model.model().real());
}

} // namespace caustic
