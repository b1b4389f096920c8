#include "emulators/inference/distributed_inference.hpp"

#include "pm/core/profiling.hpp"

#include <stdexcept>
#include <string>

namespace caustic {

void applyDistributed(const Model& model, const std::vector<const Field<float>*>& inputs,
                      const std::vector<Field<float>*>& outputs, const InferenceOptions& opt) {
  ScopedRegion region("caustic::applyDistributed");
  if (inputs.empty() || outputs.empty())
    throw std::invalid_argument("applyDistributed: no input or output field");
  const auto decomp = inputs.front()->decompPtr();
  const auto& d = *decomp;
  const IndexBox slab = d.realBox();
  const int n = d.n(), nx = static_cast<int>(slab.extent(0)), S = model.metadata().stride;
  if (n % S != 0)
    throw std::invalid_argument("applyDistributed: the mesh side " + std::to_string(n) +
                                " is not a multiple of the model's stride " + std::to_string(S));
  // Padding in multiples of the stride keeps every tile on the model's coarse grids.
  const int R = (opt.radius + S - 1) / S * S, W = R + S - 1; // y/z padding, ghost planes
  if (R < model.metadata().receptive_field)
    throw std::invalid_argument("applyDistributed: radius " + std::to_string(R) +
                                " is smaller than the model's receptive field " +
                                std::to_string(model.metadata().receptive_field));
  if (opt.tile_planes < 1)
    throw std::invalid_argument("applyDistributed: tile_planes must be >= 1");
  const int cin = static_cast<int>(inputs.size()), cout = static_cast<int>(outputs.size());
  // Ghost planes of every input channel (collective: every rank takes part, with or without
  // planes).
  // Wider than the box: the n left ghost planes hold every plane of the field.
  const int Wg = std::min(W, n);
  GhostPlanes ghosts(decomp, Wg);
  std::vector<Kokkos::View<float***>> gbuf;
  for (const auto* f : inputs) {
    gbuf.push_back(ghosts.makeBuffer<float>("caustic::applyDistributed::ghosts"));
    ghosts.gather(*f, gbuf.back());
  }
  if (nx == 0)
    return;
  std::vector<Kokkos::View<float*, Kokkos::HostSpace>> hin;
  for (const auto* f : inputs)
    hin.push_back(Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f->real()));
  std::vector<Kokkos::View<float***, Kokkos::HostSpace>> hg;
  for (auto& g : gbuf)
    hg.push_back(Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g));
  std::vector<Kokkos::View<float*, Kokkos::HostSpace>> hout;
  for (auto* f : outputs)
    hout.push_back(Kokkos::create_mirror_view(f->real()));

  // Value of channel c at local plane lx in [-R, nx + R) (ghosts outside), y, z wrapped.
  auto value = [&](int c, int lx, int y, int z) -> float {
    y = (y % n + n) % n;
    z = (z % n + n) % n;
    if (lx >= 0 && lx < nx)
      return hin[c](Field<float>::realIndex(lx, y, z, n));
    const int g = W > n ? ((lx % n) + n) % n : lx < 0 ? lx + W : lx - nx + W;
    return hg[c](g, y, z);
  };
  const int m = n + 2 * R;
  for (int t0 = 0; t0 < nx; t0 += opt.tile_planes) {
    const int tn = std::min(opt.tile_planes, nx - t0);
    // Tile planes [t0 - left, t0 + tn + right): at least R each side, starting on a global
    // multiple of the stride, a multiple of the stride long.
    const int gx = slab.lo[0] + t0;
    const int left = R + gx % S;
    const int right = R + (S - (left + tn + R) % S) % S;
    const int len = left + tn + right;
    auto x = torch::empty({1, cin, len, m, m}, torch::kFloat32);
    auto acc = x.accessor<float, 5>();
    for (int c = 0; c < cin; ++c)
      for (int i = 0; i < len; ++i)
        for (int y = 0; y < m; ++y)
          for (int z = 0; z < m; ++z)
            acc[0][c][i][y][z] = value(c, t0 + i - left, y - R, z - R);
    const torch::Tensor yv = model.forward(x);
    if (yv.size(1) != cout || yv.size(2) != len || yv.size(3) != m || yv.size(4) != m)
      throw std::runtime_error(
          "applyDistributed: the model must keep the spatial shape ('same' padding)");
    const auto out = yv.contiguous().to(torch::kFloat32);
    auto oacc = out.accessor<float, 5>();
    for (int c = 0; c < cout; ++c)
      for (int i = 0; i < tn; ++i)
        for (int y = 0; y < n; ++y)
          for (int z = 0; z < n; ++z)
            hout[c](Field<float>::realIndex(t0 + i, y, z, n)) = oacc[0][c][i + left][y + R][z + R];
  }
  for (int c = 0; c < cout; ++c)
    Kokkos::deep_copy(outputs[c]->real(), hout[c]);
}

} // namespace caustic
