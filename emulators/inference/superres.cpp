#include "emulators/inference/superres.hpp"

#include "emulators/inference/adapters.hpp"

#include <stdexcept>

namespace caustic {

Particles superResolveParticles(const Model& model, const Particles& parts,
                                const std::shared_ptr<const SlabDecomposition>& lattice,
                                double offset, const InferenceOptions& opt) {
  const ModelMetadata& meta = model.metadata();
  if (!meta.super_resolution)
    throw std::invalid_argument("the model (" + meta.kind +
                                ") is not a particle super-resolution model");
  const int f = meta.super_resolution->factor, f3 = f * f * f;
  const int n = lattice->n();
  const double L = lattice->box();
  const LagrangianExchange exchange(lattice, parts);
  std::vector<Field<float>> in, out;
  std::vector<std::vector<double>> values;
  for (const auto& c : meta.inputs) {
    values.push_back(lagrangianValues(c.name, parts, n, L, offset));
    in.emplace_back(lattice, "caustic::superResolve::input");
  }
  for (std::size_t c = 0; c < meta.outputs.size(); ++c)
    out.emplace_back(lattice, "caustic::superResolve::output");
  std::vector<Field<float>*> inp, outp;
  for (auto& x : in)
    inp.push_back(&x);
  for (auto& x : out)
    outp.push_back(&x);
  exchange.toLattice(values, inp);
  values.clear();
  applyDistributed(model, std::vector<const Field<float>*>(inp.begin(), inp.end()), outp, opt);
  in.clear();

  // Output channel of (channel ch, offset o), as device tables.
  const auto& names = superResolutionChannels();
  Kokkos::View<int*> chan("caustic::superResolve::channels", 6 * f3);
  {
    auto h = Kokkos::create_mirror_view(chan);
    for (int ch = 0; ch < 6; ++ch)
      for (int o = 0; o < f3; ++o)
        h(ch * f3 + o) =
            meta.outputIndex(superResolutionOutput(names[ch], o / (f * f), (o / f) % f, o % f));
    Kokkos::deep_copy(chan, h);
  }
  Kokkos::View<float**, Kokkos::LayoutRight> vals("caustic::superResolve::values",
                                                   meta.outputs.size(), lattice->realAlloc());
  for (std::size_t c = 0; c < out.size(); ++c) {
    const auto src = out[c].real();
    const auto dst = Kokkos::subview(vals, c, Kokkos::ALL());
    Kokkos::parallel_for(
        "caustic::superResolve::gather", src.extent(0),
        KOKKOS_LAMBDA(const std::size_t i) { dst(i) = src(i); });
  }
  out.clear();
  const std::size_t local = static_cast<std::size_t>(lattice->localNx()) * n * n;
  Particles hr(local * f3);
  const auto x = hr.x, p = hr.p;
  const auto id = hr.id;
  const long nh = static_cast<long>(f) * n;
  const double dq = L / static_cast<double>(nh);
  lattice->forEachPoint("caustic::superResolve::particles", KOKKOS_LAMBDA(const MeshPoint& q) {
    for (int o = 0; o < f3; ++o) {
      const long I = static_cast<long>(f) * q.x + o / (f * f),
                 J = static_cast<long>(f) * q.y + (o / f) % f, K = static_cast<long>(f) * q.z + o % f;
      const std::size_t k = q.compact * f3 + o;
      id(k) = static_cast<std::uint64_t>((I * nh + J) * nh + K);
      const long site[3] = {I, J, K};
      for (int d = 0; d < 3; ++d) {
        double v = site[d] * dq + offset + vals(chan(d * f3 + o), q.index);
        v -= L * km::floor(v / L);
        x(k, d) = v < L ? v : 0.0; // v == L after rounding of a tiny negative value
        p(k, d) = vals(chan((3 + d) * f3 + o), q.index);
      }
    }
  });
  return hr;
}

} // namespace caustic
