#include "pm/ic/lpt.hpp"

#include "pm/core/profiling.hpp"

#include <cmath>

namespace caustic {

namespace {

// Replaces out(k) by op(mode) * in(k), over the local modes.
template <class T, class Op> void multiplyModes(Field<T>& out, const Field<T>& in, Op op) {
  auto cin = in.complex();
  auto cout = out.complex();
  in.decomp().forEachMode(
      "caustic::lpt::multiplyModes",
      KOKKOS_LAMBDA(const MeshMode& m) { cout(m.index) = op(m) * cin(m.index); });
}

} // namespace

template <class T> void applyLinearPower(Field<T>& noise, const LinearPower& power) {
  ScopedRegion region("caustic::applyLinearPower");
  const auto& d = noise.decomp();
  const int n = d.n();
  const double kf = d.kFundamental();
  const double volume = d.box() * d.box() * d.box();
  const double n3 = static_cast<double>(n) * n * n;
  // Amplitude per integer |m|^2: exact, and usable inside device kernels.
  const int m2max = 3 * (n / 2) * (n / 2);
  Kokkos::View<double*> amp("caustic::applyLinearPower::amp", m2max + 1);
  auto h = Kokkos::create_mirror_view(amp);
  h(0) = 0.0;
  for (int m2 = 1; m2 <= m2max; ++m2)
    h(m2) = n3 * std::sqrt(power(kf * std::sqrt(double(m2))) / volume);
  Kokkos::deep_copy(amp, h);
  multiplyModes(
      noise, noise,
      KOKKOS_LAMBDA(const MeshMode& m) { return Kokkos::complex<T>(T(amp(m.m2())), T(0)); });
}

template <class T>
LptFields<T> lptDisplacements(const Field<T>& delta_k, const FFT<T>& fft, int order) {
  ScopedRegion region("caustic::lptDisplacements");
  auto dp = delta_k.decompPtr();
  const int n = dp->n();
  const T kf = T(dp->kFundamental());
  LptFields<T> out;
  out.order = order;
  // The second order first, so that its work meshes become the displacement meshes: seven
  // meshes with delta at most (delta, S2 and the three Hessian meshes, then the six
  // displacements), each allocated and first touched once. Every multiplyModes writes all of
  // its output, so a reused mesh starts from nothing of its past.
  std::unique_ptr<Field<T>> src;
  if (order >= 2) {
    // phi1_ij(k) = k_i k_j / k^2 delta(k): second derivatives of the potential in real space.
    auto hessian = [&](Field<T>& f, int a, int b) {
      multiplyModes(
          f, delta_k, KOKKOS_LAMBDA(const MeshMode& m) {
            const int mi[3] = {m.mx, m.my, m.mz};
            const int m2 = m.m2();
            if (m2 == 0)
              return Kokkos::complex<T>(0, 0);
            return Kokkos::complex<T>(T(mi[a] * mi[b]) / T(m2), T(0));
          });
      fft.backward(f);
    };
    src = std::make_unique<Field<T>>(dp, "caustic::lpt::S2");
    std::array<std::unique_ptr<Field<T>>, 3> h;
    for (int c = 0; c < 3; ++c) {
      h[c] = std::make_unique<Field<T>>(dp, "caustic::lpt::hessian");
      hessian(*h[c], c, c);
    }
    {
      auto s = src->real();
      auto xx = h[0]->real(), yy = h[1]->real(), zz = h[2]->real();
      dp->forEachPoint(
          "caustic::lpt::S2diag", KOKKOS_LAMBDA(const MeshPoint& p) {
            const std::size_t i = p.index;
            s(i) = xx(i) * yy(i) + xx(i) * zz(i) + yy(i) * zz(i);
          });
    }
    const int pairs[3][2] = {{0, 1}, {0, 2}, {1, 2}};
    for (auto& pr : pairs) {
      hessian(*h[0], pr[0], pr[1]);
      auto s = src->real();
      auto od = h[0]->real();
      dp->forEachPoint(
          "caustic::lpt::S2offdiag",
          KOKKOS_LAMBDA(const MeshPoint& p) { s(p.index) -= od(p.index) * od(p.index); });
    }
    fft.forward(*src);
    // psi2_i(k) = -i k_i / k^2 S2(k), Nyquist planes zeroed.
    for (int c = 0; c < 3; ++c) {
      out.psi2[c] = std::move(h[c]);
      multiplyModes(
          *out.psi2[c], *src, KOKKOS_LAMBDA(const MeshMode& m) {
            const int m2 = m.m2();
            if (m2 == 0 || m.nyquist(n))
              return Kokkos::complex<T>(0, 0);
            const int mc = c == 0 ? m.mx : (c == 1 ? m.my : m.mz);
            return Kokkos::complex<T>(T(0), -T(mc) / (kf * T(m2)));
          });
      fft.backward(*out.psi2[c]);
    }
  }
  // psi1_i(k) = i k_i / k^2 delta(k)
  for (int c = 0; c < 3; ++c) {
    if (c == 0 && src)
      out.psi1[c] = std::move(src);
    else
      out.psi1[c] = std::make_unique<Field<T>>(dp, "caustic::lpt::psi1");
    multiplyModes(
        *out.psi1[c], delta_k, KOKKOS_LAMBDA(const MeshMode& m) {
          const int m2 = m.m2();
          const int mc = c == 0 ? m.mx : (c == 1 ? m.my : m.mz);
          if (m2 == 0)
            return Kokkos::complex<T>(0, 0);
          return Kokkos::complex<T>(T(0), T(mc) / (kf * T(m2)));
        });
    fft.backward(*out.psi1[c]);
  }
  return out;
}

template <class T, class R>
BasicParticles<R> lptParticles(const LptFields<T>& lpt, const Cosmology& cosmo, double a,
                               double offset) {
  ScopedRegion region("caustic::lptParticles");
  const auto& d = lpt.psi1[0]->decomp();
  const int n = d.n();
  const double L = d.box(), cell = d.cell();
  // One particle per local lattice point; 5% spare capacity: migration fills it without
  // reallocating.
  const std::size_t np = d.realBox().size();
  BasicParticles<R> parts(np, np + np / 20 + 16);
  if (np == 0)
    return parts;
  const double d1 = cosmo.D1(a);
  const double v1 = a * a * cosmo.E(a) * d1 * cosmo.f1(a);
  const bool second = lpt.order >= 2;
  const double d2 = second ? cosmo.D2(a) : 0.0;
  const double v2 = second ? a * a * cosmo.E(a) * d2 * cosmo.f2(a) : 0.0;
  auto p1x = lpt.psi1[0]->real(), p1y = lpt.psi1[1]->real(), p1z = lpt.psi1[2]->real();
  auto p2x = second ? lpt.psi2[0]->real() : p1x;
  auto p2y = second ? lpt.psi2[1]->real() : p1y;
  auto p2z = second ? lpt.psi2[2]->real() : p1z;
  auto X = parts.x, P = parts.p;
  auto ID = parts.id;
  // Particle i of the rank is lattice point p.compact (lattice order).
  d.forEachPoint(
      "caustic::lpt::particles", KOKKOS_LAMBDA(const MeshPoint& pt) {
        const std::size_t f = pt.index, i = pt.compact;
        const double s1[3] = {double(p1x(f)), double(p1y(f)), double(p1z(f))};
        const double s2[3] = {second ? double(p2x(f)) : 0.0, second ? double(p2y(f)) : 0.0,
                              second ? double(p2z(f)) : 0.0};
        const int q[3] = {pt.x, pt.y, pt.z};
        for (int c = 0; c < 3; ++c) {
          X(i, c) = storedCoordinate<R>(
              periodicWrap(q[c] * cell + offset + d1 * s1[c] + d2 * s2[c], L), L);
          P(i, c) = static_cast<R>(v1 * s1[c] + v2 * s2[c]);
        }
        ID(i) = (static_cast<std::uint64_t>(pt.x) * n + pt.y) * n + pt.z;
      });
  return parts;
}

template void applyLinearPower<float>(Field<float>&, const LinearPower&);
template void applyLinearPower<double>(Field<double>&, const LinearPower&);
template LptFields<float> lptDisplacements<float>(const Field<float>&, const FFT<float>&, int);
template LptFields<double> lptDisplacements<double>(const Field<double>&, const FFT<double>&, int);
template Particles lptParticles(const LptFields<float>&, const Cosmology&, double, double);
template Particles lptParticles(const LptFields<double>&, const Cosmology&, double, double);
template SingleParticles lptParticles<float, float>(const LptFields<float>&, const Cosmology&,
                                                    double, double);

} // namespace caustic
