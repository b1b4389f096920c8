#include "emulators/training/superres_training.hpp"

#include "emulators/runtime/model.hpp"
#include "emulators/runtime/unet.hpp"
#include "emulators/training/training_common.hpp"
#include "io/atomic_file.hpp"
#include "io/params.hpp"
#include "io/snapshot.hpp"
#include "io/text_file.hpp"
#include "pm/core/comm.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace caustic {

using namespace training;

LagrangianSnapshot readLagrangianSnapshot(const std::string& path) {
  SnapshotHeader h;
  const Particles parts = readSnapshot(path, Comm(MPI_COMM_SELF), h);
  LagrangianSnapshot s;
  const auto total = h.total_particles;
  const SnapshotLattice lattice = snapshotLattice(h, path);
  s.n = lattice.n;
  s.box = h.box;
  s.a = h.a;
  s.offset = lattice.offset;
  s.omega_m = h.omega_m;
  s.particle_mass = h.particle_mass;
  const int n = s.n;
  const double L = s.box, dq = L / n;
  s.fields = torch::zeros({6, n, n, n}, torch::kFloat32);
  std::vector<char> seen(static_cast<std::size_t>(total), 0);
  const auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  const auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  const auto id = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  float* f = s.fields.data_ptr<float>();
  const std::size_t plane = static_cast<std::size_t>(total);
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::uint64_t k = id(i);
    if (k >= total || seen[k])
      throw std::runtime_error(path + ": particle ID " + std::to_string(k) +
                               (k >= total ? " outside the lattice" : " appears twice"));
    seen[k] = 1;
    const std::uint64_t q[3] = {k / (static_cast<std::uint64_t>(n) * n), (k / n) % n, k % n};
    for (int d = 0; d < 3; ++d) {
      double dx = x(i, d) - (q[d] * dq + s.offset);
      dx -= L * std::floor(dx / L + 0.5); // nearest image
      f[d * plane + k] = static_cast<float>(dx);
      f[(3 + d) * plane + k] = static_cast<float>(p(i, d));
    }
  }
  return s;
}

torch::Tensor pixelUnshuffle3d(const torch::Tensor& t, int f) {
  const int64_t C = t.size(0), c = t.size(1) / f;
  return t.reshape({C, c, f, c, f, c, f})
      .permute({0, 2, 4, 6, 1, 3, 5})
      .reshape({C * f * f * f, c, c, c});
}

torch::Tensor pixelShuffle3d(const torch::Tensor& t, int f) {
  const int64_t C = t.size(0) / (f * f * f), c = t.size(1);
  return t.reshape({C, f, f, f, c, c, c})
      .permute({0, 4, 1, 5, 2, 6, 3})
      .reshape({C, f * c, f * c, f * c});
}

torch::Tensor paintCic(const torch::Tensor& pos, int g) {
  const auto i0 = torch::floor(pos.detach());
  const auto w1 = pos - i0, w0 = 1 - w1; // (N, 3)
  const auto i = i0.to(torch::kInt64);
  auto grid = torch::zeros({static_cast<int64_t>(g) * g * g}, pos.options());
  for (int corner = 0; corner < 8; ++corner) {
    torch::Tensor w, idx;
    for (int d = 0; d < 3; ++d) {
      const bool up = corner & (4 >> d);
      const auto wd = (up ? w1 : w0).select(1, d);
      const auto id = torch::remainder(i.select(1, d) + (up ? 1 : 0), g);
      w = d == 0 ? wd : w * wd;
      idx = d == 0 ? id : idx * g + id;
    }
    grid = grid.index_add(0, idx, w);
  }
  return grid;
}

std::pair<torch::Tensor, torch::Tensor>
superResolutionCrop(const torch::Tensor& lr, const torch::Tensor& hr, int f, int c,
                    const std::array<int, 3>& o, int k, const ChannelLayout& layout) {
  const int n = static_cast<int>(lr.size(1));
  const int* P = symmetryPermutation(k);
  std::array<int, 3> ohr;
  for (int d = 0; d < 3; ++d) {
    bool flipped = false;
    for (int i = 0; i < 3; ++i)
      if (P[i] == d && symmetryFlips(k, i))
        flipped = true;
    // A flip reflects the LR crop about its centre; on the HR lattice that centre lies f - 1
    // sites before the crop's plain origin f o.
    ohr[d] = f * o[d] - (flipped ? f - 1 : 0);
  }
  return {applySymmetry(periodicCrop(lr, c, o, n), k, layout),
          applySymmetry(periodicCrop(hr, f * c, ohr, f * n), k, layout)};
}

namespace {

struct SrSample {
  torch::Tensor x; // (6, n, n, n) normalised LR fields
  torch::Tensor y; // (6, f n, f n, f n) HR fields, physical units
  int n = 0;
};

const std::vector<std::string>& channelNames() { return superResolutionChannels(); }

} // namespace

TrainingResult trainSuperResolution(const TrainingConfig& cfg, MPI_Comm comm,
                                    const std::function<void(const TrainingProgress&)>& progress) {
  int rank = 0, nranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  torch::set_num_threads(1);
  const int f = cfg.factor, f3 = f * f * f;
  if (cfg.train.empty() || cfg.validation.empty())
    throw std::invalid_argument("data: a super-resolution model needs training and validation "
                                "pairs {lr = snapshot, hr = snapshot}");
  for (const auto* set : {&cfg.train, &cfg.validation})
    for (const auto& p : *set)
      if (p.lr.empty() || p.hr.empty())
        throw std::invalid_argument("data: every pair of a super-resolution model is {lr = "
                                    "snapshot, hr = snapshot}");
  if (!cfg.transforms.empty() || !cfg.residual_of.empty() || !cfg.conditioning.empty() ||
      !cfg.weight.empty() || cfg.loss != "mse")
    throw std::invalid_argument("model.kind = \"particle_super_resolution\": its channels, "
                                "residuals and loss are fixed; model.transforms, residual, "
                                "conditioning and training.weight, loss are not for it");
  const auto& names = channelNames();
  const ChannelLayout layout(names, true, "input");

  // Data.
  double box_min = 1e300, box_max = 0, z_min = 1e300, z_max = -1e300, om_min = 1e300, om_max = 0,
         cell = 0;
  auto load = [&](const TrainingPair& p, const std::string& where) {
    LagrangianSnapshot lr, hr;
    try {
      lr = readLagrangianSnapshot(p.lr);
      hr = readLagrangianSnapshot(p.hr);
    } catch (const std::runtime_error& e) {
      throw std::invalid_argument(where + ": " + e.what());
    }
    auto refuse = [&](const std::string& what) {
      throw std::invalid_argument(where + ": " + p.lr + " and " + p.hr + ": " + what);
    };
    if (hr.n != f * lr.n)
      refuse(std::to_string(lr.n) + "^3 and " + std::to_string(hr.n) +
             "^3 particles; model.factor = " + std::to_string(f) + " needs " +
             std::to_string(f * lr.n) + "^3 in the HR run");
    if (std::abs(hr.box / lr.box - 1) > 1e-9)
      refuse("boxes differ");
    if (std::abs(hr.a / lr.a - 1) > 1e-4)
      refuse("scale factors differ (" + std::to_string(lr.a) + ", " + std::to_string(hr.a) + ")");
    if (std::abs(hr.offset - lr.offset) > 1e-9 * lr.box)
      refuse("lattice offsets differ (" + std::to_string(lr.offset) + ", " +
             std::to_string(hr.offset) +
             " Mpc/h): give the HR run the LR run's simulation.lattice_offset, so that HR site " +
             std::to_string(f) + " i is LR site i");
    if (lr.n < cfg.crop)
      refuse("training.crop = " + std::to_string(cfg.crop) + " exceeds the LR lattice (" +
             std::to_string(lr.n) + "^3)");
    if (cell == 0)
      cell = lr.box / lr.n;
    if (std::abs(lr.box / lr.n / cell - 1) > 1e-6)
      refuse("LR lattice spacing " + std::to_string(lr.box / lr.n) + " Mpc/h; the data set's is " +
             std::to_string(cell) + " (one spacing per model)");
    box_min = std::min(box_min, lr.box);
    box_max = std::max(box_max, lr.box);
    z_min = std::min(z_min, 1 / lr.a - 1);
    z_max = std::max(z_max, 1 / lr.a - 1);
    om_min = std::min(om_min, lr.omega_m);
    om_max = std::max(om_max, lr.omega_m);
    return std::make_pair(lr.fields, hr.fields);
  };
  std::vector<torch::Tensor> raw_x, raw_y, val_x, val_y;
  for (std::size_t i = 0; i < cfg.train.size(); ++i) {
    auto [x, y] = load(cfg.train[i], "data.train[" + std::to_string(i) + "]");
    raw_x.push_back(x);
    raw_y.push_back(y);
  }
  for (std::size_t i = 0; i < cfg.validation.size(); ++i) {
    auto [x, y] = load(cfg.validation[i], "data.validation[" + std::to_string(i) + "]");
    val_x.push_back(x);
    val_y.push_back(y);
  }
  // Input normalisation (rms displacement and momentum); the residuals' rms per vector.
  const auto norm_in = normalisation(raw_x, names);
  double rs[2] = {0, 0}, rc[2] = {0, 0};
  for (std::size_t i = 0; i < raw_x.size(); ++i) {
    const auto res = pixelUnshuffle3d(raw_y[i], f).view({6, f3, -1}) -
                     raw_x[i].view({6, 1, -1});
    for (int v = 0; v < 2; ++v) {
      rs[v] += res.narrow(0, 3 * v, 3).to(torch::kFloat64).pow(2).sum().item<double>();
      rc[v] += static_cast<double>(res.narrow(0, 3 * v, 3).numel());
    }
  }
  const double res_std[2] = {std::sqrt(rs[0] / rc[0]), std::sqrt(rs[1] / rc[1])};
  for (double s : res_std)
    if (!(s > 0) || !std::isfinite(s))
      throw std::invalid_argument("data: the HR and LR runs of the training pairs are identical "
                                  "or not finite; nothing to learn");
  std::vector<float> in_std, out_std;
  for (int c = 0; c < 6; ++c) {
    in_std.push_back(static_cast<float>(norm_in[c].std));
    for (int o = 0; o < f3; ++o)
      out_std.push_back(static_cast<float>(res_std[c / 3]));
  }
  const auto in_std_t = torch::tensor(in_std).view({6, 1, 1, 1});
  const auto out_std_t = torch::tensor(out_std).view({6 * f3, 1, 1, 1});
  std::vector<SrSample> train, val;
  for (std::size_t i = 0; i < raw_x.size(); ++i)
    train.push_back({normalise(raw_x[i], norm_in), raw_y[i], static_cast<int>(raw_x[i].size(1))});
  for (std::size_t i = 0; i < val_x.size(); ++i)
    val.push_back({normalise(val_x[i], norm_in), val_y[i], static_cast<int>(val_x[i].size(1))});
  raw_x.clear();
  raw_y.clear();
  val_x.clear();
  val_y.clear();

  UNetConfig ucfg;
  ucfg.in_channels = 6;
  ucfg.out_channels = 6 * f3;
  ucfg.depth = cfg.depth;
  ucfg.width = cfg.width;
  const int c = cfg.crop;
  if (c % ucfg.stride() != 0)
    throw std::invalid_argument("training.crop = " + std::to_string(c) +
                                ": must be a multiple of 2^depth = " +
                                std::to_string(ucfg.stride()));
  const int margin =
      cfg.loss_margin >= 0 ? cfg.loss_margin : std::min(ucfg.receptiveField(), c / 4);
  if (2 * margin >= c)
    throw std::invalid_argument("training.loss_margin = " + std::to_string(margin) +
                                ": leaves nothing of a crop of " + std::to_string(c));
  const double hr_cell = cell / f;
  const int inner = f * (c - 2 * margin), pad = 4, grid = inner + 2 * pad;

  // One crop: the LR input (normalised, (6, c, c, c)) and the target (normalised residuals,
  // (6 f^3, c, c, c)) plus the HR displacement [HR cells] and the LR displacement at the same
  // sites, for the density term.
  struct Crop {
    torch::Tensor x, target, hr_disp;
  };
  auto makeCrop = [&](const SrSample& s, const std::array<int, 3>& o, int k) {
    Crop r;
    torch::Tensor yhr;
    std::tie(r.x, yhr) = superResolutionCrop(s.x, s.y, f, c, o, k, layout);
    const auto xphys = (r.x * in_std_t).view({6, 1, c, c, c});
    r.target = ((pixelUnshuffle3d(yhr, f).view({6, f3, c, c, c}) - xphys).view({6 * f3, c, c, c}) /
                out_std_t)
                   .contiguous();
    r.hr_disp = yhr.narrow(0, 0, 3) / static_cast<float>(hr_cell);
    return r;
  };
  // Lattice coordinates [HR cells] of the interior's HR particles, relative to the painted grid.
  const auto ar = torch::arange(inner, torch::kFloat32) + pad;
  const auto lattice = torch::stack(torch::meshgrid({ar, ar, ar}, "ij"), 0).view({3, -1});
  // Shell |m| (rounded, in grid units; beyond grid/2 folded into the last) of every rfftn mode
  // of the painted grid, for the power term.
  torch::Tensor shell_index;
  {
    const auto a = torch::arange(grid, torch::kFloat32);
    const auto m = torch::where(a <= grid / 2, a, a - grid); // FFT order
    const auto mz = torch::arange(grid / 2 + 1, torch::kFloat32);
    const auto g = torch::meshgrid({m, m, mz}, "ij");
    shell_index = torch::clamp_max(
                      torch::round(torch::sqrt(g[0] * g[0] + g[1] * g[1] + g[2] * g[2])), grid / 2)
                      .to(torch::kInt64)
                      .flatten();
  }
  auto interior = [&](const torch::Tensor& t) { // (C, f c, ...)^3 -> (C, inner^3)
    const int m = f * margin;
    return t.narrow(1, m, inner).narrow(2, m, inner).narrow(3, m, inner).reshape({t.size(0), -1});
  };
  // Loss of a batch: outputs and targets (B, 6 f^3, c, c, c), inputs (B, 6, c, c, c), true HR
  // displacements (B, 3, f c, f c, f c) [HR cells].
  auto lossOf = [&](const torch::Tensor& out, const torch::Tensor& target, const torch::Tensor& x,
                    const torch::Tensor& hr_disp) {
    const int64_t len = c - 2 * margin;
    auto cut = [&](const torch::Tensor& t) {
      return t.narrow(2, margin, len).narrow(3, margin, len).narrow(4, margin, len);
    };
    auto loss = torch::mse_loss(cut(out), cut(target));
    if (cfg.density_weight > 0 || cfg.power_weight > 0) {
      torch::Tensor eul = torch::zeros({}, out.options()), pk_p, pk_t;
      for (int64_t b = 0; b < out.size(0); ++b) {
        // Predicted HR displacement [HR cells]: LR displacement + residual, rearranged.
        const auto xd = (x[b] * in_std_t).narrow(0, 0, 3).view({3, 1, c, c, c});
        const auto pred = (out[b] * out_std_t).view({6, f3, c, c, c}).narrow(0, 0, 3) + xd;
        const auto pd = pixelShuffle3d(pred.reshape({3 * f3, c, c, c}), f) /
                        static_cast<float>(hr_cell);
        const auto td = hr_disp[b];
        const auto ip = interior(pd), it = interior(td);
        const auto shift = it.mean(1, true).detach();
        const auto rho_p = paintCic((lattice + ip - shift).t(), grid);
        const auto rho_t = paintCic((lattice + it - shift).t(), grid);
        const auto var = (rho_t - rho_t.mean()).pow(2).sum().clamp_min(1e-6);
        eul = eul + (rho_p - rho_t).pow(2).sum() / var;
        if (cfg.power_weight > 0) {
          auto shells = [&](const torch::Tensor& rho) {
            const auto fk = torch::fft::rfftn(rho.view({grid, grid, grid}) - rho.mean());
            return torch::zeros({grid / 2 + 1}, rho.options())
                .index_add(0, shell_index, torch::real(fk * torch::conj(fk)).flatten());
          };
          pk_p = pk_p.defined() ? pk_p + shells(rho_p) : shells(rho_p);
          pk_t = pk_t.defined() ? pk_t + shells(rho_t) : shells(rho_t);
        }
      }
      loss = loss + cfg.density_weight * eul / static_cast<double>(out.size(0));
      if (cfg.power_weight > 0) {
        // Shells 1 .. grid/4 of the batch's summed power: up to half the HR particle Nyquist
        // frequency (shell grid/2 of a grid of HR cells), the LR particle Nyquist of a x2
        // super-resolution. Extending the term to the HR particle Nyquist on a twice finer grid
        // was tried (session 31) and made the particles' halos more diffuse: it is phase-blind,
        // and jitter is the cheapest small-scale power.
        const auto lp = torch::log(pk_p.narrow(0, 1, grid / 4) + 1e-6),
                   lt = torch::log(pk_t.narrow(0, 1, grid / 4) + 1e-6);
        loss = loss + cfg.power_weight * (lp - lt).pow(2).mean();
      }
    }
    return loss;
  };

  torch::manual_seed(cfg.seed);
  UNet3d net(ucfg);
  {
    // Start at the LR fields themselves: a zero residual.
    torch::NoGradGuard ng;
    for (auto& p : net->named_parameters())
      if (p.key().rfind("head.", 0) == 0)
        p.value().zero_();
  }
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(cfg.learning_rate));

  std::ostringstream h;
  h << "superres;" << commonConfigText(cfg) << ";" << f << "," << cfg.density_weight << ","
    << cfg.power_weight;
  for (const auto* set : {&cfg.train, &cfg.validation})
    for (const auto& p : *set)
      h << p.lr << ";" << p.hr << "|";
  const std::int64_t hash =
      static_cast<std::int64_t>(std::hash<std::string>()(h.str()) & 0x7fffffffffffffffULL);
  const std::string dir = cfg.directory, ckpt = dir + "/checkpoint.pt";
  TrainingResult result;
  const int start = startOrResume(cfg, comm, ckpt, *net, opt, hash, result.curve);
  auto writeCurve = [&] {
    writeLossCurve(dir, result.curve,
                   "caustic train (particle super-resolution): normalised residual MSE + " +
                       std::to_string(cfg.density_weight) + " x relative density error + " +
                       std::to_string(cfg.power_weight) + " x mean squared log power ratio",
                   "caustic train: loss", "loss", "validation");
  };
  auto save = [&](int step) {
    if (rank == 0) {
      saveCheckpoint(ckpt, *net, opt, step, hash, result.curve);
      writeCurve();
    }
    mpiCheck(MPI_Barrier(comm), "training: checkpoint");
  };
  auto validate = [&]() {
    torch::NoGradGuard ng;
    net->eval();
    double sum = 0, count = 0;
    int k = 0;
    for (std::size_t v = 0; v < val.size(); ++v)
      for (int j = 0; j < cfg.validation_crops; ++j, ++k) {
        if (k % nranks != rank)
          continue;
        auto rng = keyedRng(cfg.seed, 0x7fffffffu, v, j);
        std::uniform_int_distribution<int> u(0, val[v].n - 1);
        const std::array<int, 3> o = {u(rng), u(rng), u(rng)};
        const Crop cr = makeCrop(val[v], o, 0);
        const auto x = cr.x.unsqueeze(0);
        sum += lossOf(net->forward(x), cr.target.unsqueeze(0), x, cr.hr_disp.unsqueeze(0))
                   .item<double>();
        count += 1;
      }
    double in[2] = {sum, count}, out[2];
    mpiCheck(MPI_Allreduce(in, out, 2, MPI_DOUBLE, MPI_SUM, comm), "training: validation");
    net->train();
    return out[0] / out[1];
  };

  const int step = optimise(
      cfg, comm, *net, opt, start, result.curve,
      [&](int step) {
        std::vector<torch::Tensor> xs, ts, ds;
        for (int b = 0; b < cfg.batch; ++b) {
          auto rng = keyedRng(cfg.seed, step, rank, b);
          std::uniform_int_distribution<int> pick(0, static_cast<int>(train.size()) - 1);
          const SrSample& s = train[pick(rng)];
          std::uniform_int_distribution<int> u(0, s.n - 1), sym(0, 47);
          const std::array<int, 3> o = {u(rng), u(rng), u(rng)};
          const Crop cr = makeCrop(s, o, cfg.augment ? sym(rng) : 0);
          xs.push_back(cr.x);
          ts.push_back(cr.target);
          ds.push_back(cr.hr_disp);
        }
        const auto x = torch::stack(xs);
        return lossOf(net->forward(x), torch::stack(ts), x, torch::stack(ds));
      },
      validate, save, progress);
  result.steps_done = step;
  if (step < cfg.steps)
    return result;

  ModelMetadata meta;
  meta.kind = "particle_super_resolution";
  meta.version = "1";
  meta.inputs = norm_in;
  for (int ch = 0; ch < 6; ++ch)
    for (int o = 0; o < f3; ++o) {
      Channel out(superResolutionOutput(names[ch], o / (f * f), (o / f) % f, o % f), 0.0,
                  res_std[ch / 3]);
      out.residual_of = names[ch];
      meta.outputs.push_back(out);
    }
  SuperResolutionInfo info;
  info.factor = f;
  meta.super_resolution = info;
  meta.receptive_field = ucfg.receptiveField();
  meta.cell_size = cell;
  meta.cell_size_rtol = 0.02;
  meta.box = std::make_pair(box_min, box_max);
  meta.redshift = std::make_pair(std::max(0.0, z_min - 1e-9), z_max + 1e-9);
  if (om_max > 0)
    meta.cosmology.push_back({"Omega_m", {om_min, om_max}});
  {
    std::ostringstream p;
    p << "caustic train" << (cfg.source.empty() ? "" : " " + cfg.source) << ": particle "
      << "super-resolution x" << f << ", " << cfg.train.size() << " training and "
      << cfg.validation.size() << " validation pairs, " << cfg.steps << " steps of " << cfg.batch
      << " x " << nranks << " crops of " << c << "^3, density weight " << cfg.density_weight
      << ", power weight " << cfg.power_weight << ", seed " << cfg.seed << ", final validation loss " << result.curve.back().validation;
    meta.provenance = p.str();
  }
  Model wrapped(net, meta);
  result.model_path = dir + "/model.pt";
  if (rank == 0) {
    const std::string tmp = temporaryName(result.model_path);
    torch::save(net, tmp);
    writeTextFile(dir + "/model.json", wrapped.metadata().toJson().dump(2) + "\n");
    commitFile(tmp, result.model_path);
    writeCurve();
  }
  mpiCheck(MPI_Barrier(comm), "training: model");
  result.finished = true;
  return result;
}

} // namespace caustic
