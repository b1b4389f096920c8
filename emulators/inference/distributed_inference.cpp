#include "emulators/inference/distributed_inference.hpp"

#include "pm/core/profiling.hpp"

#include <stdexcept>
#include <string>

namespace caustic {

namespace {

// The tiles of one rank's slab, each an input tensor (1, C, len, n + 2P, n + 2P) holding the
// tile's planes plus at least R ghost planes on each side (from the neighbours) and P periodic
// cells on each side in y and z: P = R, or 0 for a model that pads periodically itself (the
// native U-Net: its whole-extent y and z need no padding, which on a small mesh is most of the
// tile); see distributed_inference.hpp. Collective construction (the ghost exchange).
class SlabTiles {
public:
  SlabTiles(const Model& model, const std::vector<const Field<float>*>& inputs,
            const InferenceOptions& opt, const char* who)
      : decomp(inputs.front()->decompPtr()), n(decomp->n()),
        nx(static_cast<int>(decomp->realBox().extent(0))), x0(decomp->realBox().lo[0]),
        S(model.metadata().stride), tile(opt.tile_planes) {
    if (n % S != 0)
      throw std::invalid_argument(std::string(who) + ": the mesh side " + std::to_string(n) +
                                  " is not a multiple of the model's stride " + std::to_string(S));
    // Padding in multiples of the stride keeps every tile on the model's coarse grids.
    R = (opt.radius + S - 1) / S * S;
    W = R + S - 1; // ghost planes
    if (R < model.metadata().receptive_field)
      throw std::invalid_argument(std::string(who) + ": radius " + std::to_string(R) +
                                  " is smaller than the model's receptive field " +
                                  std::to_string(model.metadata().receptive_field));
    if (opt.tile_planes < 1)
      throw std::invalid_argument(std::string(who) + ": tile_planes must be >= 1");
    // Wider than the box: the n left ghost planes hold every plane of the field.
    ghosts = std::make_unique<GhostPlanes>(decomp, std::min(W, n));
    for (const auto* f : inputs) {
      auto g = ghosts->makeBuffer<float>("caustic::applyDistributed::ghosts");
      ghosts->gather(*f, g); // collective: every rank takes part, with or without planes
      hg.push_back(Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), g));
      hin.push_back(Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), f->real()));
    }
    P = model.periodicPadding() ? 0 : R;
    m = n + 2 * P;
  }

  // Local plane lx in [-R, nx + R) -> (owned, index): the field plane, or the ghost plane that
  // stands for it.
  int ghostOf(int lx) const { return W > n ? ((lx % n) + n) % n : lx < 0 ? lx + W : lx - nx + W; }

  // f(t0, tn, left, x) for every tile: planes [t0, t0 + tn) of the slab are at x's planes
  // [left, left + tn). Tiles start on global multiples of the stride and are a multiple of it
  // long.
  template <class F> void forEachTile(const F& f) const {
    const int cin = static_cast<int>(hin.size());
    for (int t0 = 0; t0 < nx; t0 += tile) {
      const int tn = std::min(tile, nx - t0);
      const int left = R + (x0 + t0) % S;
      const int right = R + (S - (left + tn + R) % S) % S;
      const int len = left + tn + right;
      auto x = torch::empty({1, cin, len, m, m}, torch::kFloat32);
      auto acc = x.accessor<float, 5>();
      for (int c = 0; c < cin; ++c)
        for (int i = 0; i < len; ++i) {
          const int lx = t0 + i - left;
          for (int y = 0; y < m; ++y)
            for (int z = 0; z < m; ++z) {
              const int yy = ((y - P) % n + n) % n, zz = ((z - P) % n + n) % n;
              acc[0][c][i][y][z] = lx >= 0 && lx < nx
                                       ? hin[c](Field<float>::realIndex(lx, yy, zz, n))
                                       : hg[c](ghostOf(lx), yy, zz);
            }
        }
      f(t0, tn, left, x);
    }
  }

  std::shared_ptr<const SlabDecomposition> decomp;
  int n, nx, x0, S, tile, R = 0, W = 0, P = 0, m = 0;
  std::unique_ptr<GhostPlanes> ghosts;
  std::vector<Kokkos::View<float*, Kokkos::HostSpace>> hin;
  std::vector<Kokkos::View<float***, Kokkos::HostSpace>> hg;
};

void checkShape(const torch::Tensor& y, int cout, const torch::Tensor& x) {
  if (y.size(1) != cout || y.size(2) != x.size(2) || y.size(3) != x.size(3) ||
      y.size(4) != x.size(4))
    throw std::runtime_error("applyDistributed: the model must keep the spatial shape ('same' "
                             "padding) and give " +
                             std::to_string(cout) + " channels");
}

} // namespace

void applyDistributed(const Model& model, const std::vector<const Field<float>*>& inputs,
                      const std::vector<Field<float>*>& outputs, const InferenceOptions& opt) {
  ScopedRegion region("caustic::applyDistributed");
  if (inputs.empty() || outputs.empty())
    throw std::invalid_argument("applyDistributed: no input or output field");
  const SlabTiles tiles(model, inputs, opt, "applyDistributed");
  if (tiles.nx == 0)
    return;
  const int n = tiles.n, P = tiles.P, cout = static_cast<int>(outputs.size());
  std::vector<Kokkos::View<float*, Kokkos::HostSpace>> hout;
  for (auto* f : outputs)
    hout.push_back(Kokkos::create_mirror_view(f->real()));
  tiles.forEachTile([&](int t0, int tn, int left, const torch::Tensor& x) {
    const torch::Tensor yv = model.forward(x);
    checkShape(yv, cout, x);
    const auto out = yv.contiguous().to(torch::kFloat32);
    auto oacc = out.accessor<float, 5>();
    for (int c = 0; c < cout; ++c)
      for (int i = 0; i < tn; ++i)
        for (int y = 0; y < n; ++y)
          for (int z = 0; z < n; ++z)
            hout[c](Field<float>::realIndex(t0 + i, y, z, n)) = oacc[0][c][i + left][y + P][z + P];
  });
  for (int c = 0; c < cout; ++c)
    Kokkos::deep_copy(outputs[c]->real(), hout[c]);
}

void applyDistributedVjp(const Model& model, const std::vector<const Field<float>*>& inputs,
                         const std::vector<const Field<float>*>& weights,
                         const std::vector<Field<float>*>& gradients,
                         const InferenceOptions& opt) {
  ScopedRegion region("caustic::applyDistributedVjp");
  if (inputs.empty() || weights.empty() || gradients.size() != inputs.size())
    throw std::invalid_argument("applyDistributedVjp: needs inputs, one weight field per output "
                                "and one gradient field per input");
  const SlabTiles tiles(model, inputs, opt, "applyDistributedVjp");
  const int n = tiles.n, nx = tiles.nx, P = tiles.P, m = tiles.m;
  const int cin = static_cast<int>(inputs.size()), cout = static_cast<int>(weights.size());
  // Gradients of the owned planes and of the ghost planes (added to their owners at the end).
  std::vector<Kokkos::View<float*, Kokkos::HostSpace>> hgrad;
  std::vector<Kokkos::View<float***>> ghost_grad;
  std::vector<Kokkos::View<float***, Kokkos::HostSpace>> hghost;
  for (int c = 0; c < cin; ++c) {
    hgrad.push_back(Kokkos::View<float*, Kokkos::HostSpace>("caustic::vjp::grad",
                                                             gradients[c]->real().extent(0)));
    ghost_grad.push_back(tiles.ghosts->makeBuffer<float>("caustic::vjp::ghosts"));
    hghost.push_back(Kokkos::create_mirror_view(ghost_grad.back()));
    Kokkos::deep_copy(hghost.back(), 0.0f);
  }
  std::vector<Kokkos::View<float*, Kokkos::HostSpace>> hw;
  for (const auto* w : weights)
    hw.push_back(Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), w->real()));
  if (nx > 0)
    tiles.forEachTile([&](int t0, int tn, int left, const torch::Tensor& x0) {
      // w on the tile's own planes and cells (zero on the padding: those outputs belong to
      // other tiles or are periodic copies).
      auto w = torch::zeros({1, cout, x0.size(2), m, m}, torch::kFloat32);
      auto wacc = w.accessor<float, 5>();
      for (int c = 0; c < cout; ++c)
        for (int i = 0; i < tn; ++i)
          for (int y = 0; y < n; ++y)
            for (int z = 0; z < n; ++z)
              wacc[0][c][i + left][y + P][z + P] = hw[c](Field<float>::realIndex(t0 + i, y, z, n));
      const auto x = x0.clone().set_requires_grad(true);
      const torch::Tensor yv = model.forwardWithGrad(x);
      checkShape(yv, cout, x);
      (yv.to(torch::kFloat32) * w).sum().backward();
      const auto g = x.grad().contiguous();
      auto gacc = g.accessor<float, 5>();
      // Fold the padded tile back: y and z periodically, x onto owned or ghost planes.
      for (int c = 0; c < cin; ++c)
        for (int i = 0; i < x.size(2); ++i) {
          const int lx = t0 + i - left;
          for (int y = 0; y < m; ++y)
            for (int z = 0; z < m; ++z) {
              const int yy = ((y - P) % n + n) % n, zz = ((z - P) % n + n) % n;
              const float v = gacc[0][c][i][y][z];
              if (lx >= 0 && lx < nx)
                hgrad[c](Field<float>::realIndex(lx, yy, zz, n)) += v;
              else
                hghost[c](tiles.ghostOf(lx), yy, zz) += v;
            }
        }
    });
  for (int c = 0; c < cin; ++c) {
    Kokkos::deep_copy(gradients[c]->real(), hgrad[c]);
    Kokkos::deep_copy(ghost_grad[c], hghost[c]);
    tiles.ghosts->scatterAdd(ghost_grad[c], *gradients[c]); // collective
  }
}

} // namespace caustic
