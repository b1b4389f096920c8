#include "emulators/training/training_common.hpp"

#include "io/atomic_file.hpp"
#include "pm/core/comm.hpp"

#include <chrono>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace caustic::training {

const int* symmetryPermutation(int k) {
  static const int perms[6][3] = {{0, 1, 2}, {0, 2, 1}, {1, 0, 2}, {1, 2, 0}, {2, 0, 1}, {2, 1, 0}};
  return perms[k / 8];
}

// Component 0/1/2 of a vector channel "<base>_x|y|z", or -1 for a scalar.
int componentOf(const std::string& name) {
  if (name.size() < 3 || name[name.size() - 2] != '_')
    return -1;
  const char c = name.back();
  return c == 'x' ? 0 : c == 'y' ? 1 : c == 'z' ? 2 : -1;
}
std::string baseOf(const std::string& name) {
  return componentOf(name) < 0 ? name : name.substr(0, name.size() - 2);
}

ChannelLayout::ChannelLayout(const std::vector<std::string>& names, bool augment,
                             const std::string& side) {
  const int C = static_cast<int>(names.size());
  comp.resize(C);
  partner.assign(C, {-1, -1, -1});
  for (int c = 0; c < C; ++c) {
    comp[c] = componentOf(names[c]);
    if (comp[c] < 0)
      continue;
    for (int o = 0; o < C; ++o)
      if (componentOf(names[o]) >= 0 && baseOf(names[o]) == baseOf(names[c]))
        partner[c][componentOf(names[o])] = o;
    if (augment && (partner[c][0] < 0 || partner[c][1] < 0 || partner[c][2] < 0))
      throw std::invalid_argument(
          side + " channel \"" + names[c] +
          "\" is one component of a vector: the symmetry augmentation permutes components, so "
          "all of " +
          baseOf(names[c]) + "_x, _y, _z are needed (or set augment = false)");
  }
}

// Symmetry k in [0, 48): axis permutation k / 8, flips of axes by the bits of k % 8. New axis i
// is old axis P[i]; component i of a vector is old component P[i], negated when axis i flips.
torch::Tensor applySymmetry(const torch::Tensor& t, int k, const ChannelLayout& layout) {
  const int* P = symmetryPermutation(k);
  const int flips = k % 8;
  torch::Tensor r = t.permute({0, 1 + P[0], 1 + P[1], 1 + P[2]});
  std::vector<int64_t> fl;
  for (int i = 0; i < 3; ++i)
    if (flips & (1 << i))
      fl.push_back(1 + i);
  if (!fl.empty())
    r = r.flip(fl);
  const int C = static_cast<int>(layout.comp.size());
  std::vector<int64_t> idx(C);
  std::vector<float> sign(C, 1.0f);
  bool vector = false;
  for (int c = 0; c < C; ++c) {
    const int i = layout.comp[c];
    if (i < 0) {
      idx[c] = c;
      continue;
    }
    vector = true;
    idx[c] = layout.partner[c][P[i]];
    sign[c] = (flips & (1 << i)) ? -1.0f : 1.0f;
  }
  if (vector)
    r = r.index_select(0, torch::tensor(idx, torch::kInt64)) *
        torch::tensor(sign, torch::kFloat32).view({C, 1, 1, 1});
  return r.contiguous();
}

// Periodic crop of side c at origin o of a (C, n, n, n) tensor.
torch::Tensor periodicCrop(const torch::Tensor& t, int c, const std::array<int, 3>& o, int n) {
  torch::Tensor r = t;
  for (int d = 0; d < 3; ++d) {
    const auto idx = torch::remainder(torch::arange(c, torch::kInt64) + o[d], n);
    r = r.index_select(1 + d, idx);
  }
  return r;
}

// Per-channel mean and std over the training samples; vector components share a zero mean and
// one std (so that the symmetries map normalised fields to normalised fields).
std::vector<Channel> normalisation(const std::vector<torch::Tensor>& data,
                                   const std::vector<std::string>& names) {
  const int C = static_cast<int>(names.size());
  std::vector<double> s1(C, 0), s2(C, 0), cnt(C, 0);
  for (const auto& t : data)
    for (int c = 0; c < C; ++c) {
      const auto v = t[c].to(torch::kFloat64);
      s1[c] += v.sum().item<double>();
      s2[c] += (v * v).sum().item<double>();
      cnt[c] += static_cast<double>(v.numel());
    }
  std::vector<Channel> out(C);
  for (int c = 0; c < C; ++c) {
    out[c].name = names[c];
    if (componentOf(names[c]) >= 0) {
      double q = 0, m = 0;
      for (int o = 0; o < C; ++o)
        if (componentOf(names[o]) >= 0 && baseOf(names[o]) == baseOf(names[c])) {
          q += s2[o];
          m += cnt[o];
        }
      out[c].mean = 0.0;
      out[c].std = std::sqrt(q / m);
    } else {
      out[c].mean = s1[c] / cnt[c];
      out[c].std = std::sqrt(std::max(0.0, s2[c] / cnt[c] - out[c].mean * out[c].mean));
    }
    if (!(out[c].std > 0) || !std::isfinite(out[c].std))
      out[c].std = 1.0; // a constant channel: leave it unscaled
  }
  return out;
}

torch::Tensor normalise(const torch::Tensor& t, const std::vector<Channel>& ch) {
  std::vector<float> m, s;
  for (const auto& c : ch) {
    m.push_back(static_cast<float>(c.mean));
    s.push_back(static_cast<float>(c.std));
  }
  const int64_t C = static_cast<int64_t>(ch.size());
  return ((t - torch::tensor(m).view({C, 1, 1, 1})) / torch::tensor(s).view({C, 1, 1, 1}))
      .contiguous();
}

double learningRate(const TrainingConfig& c, int step) {
  if (c.warmup > 0 && step <= c.warmup)
    return c.learning_rate * step / c.warmup;
  if (c.schedule == "constant")
    return c.learning_rate;
  const double span = std::max(1, c.steps - c.warmup);
  const double t = std::min(1.0, (step - c.warmup) / span);
  return c.lr_min + 0.5 * (c.learning_rate - c.lr_min) * (1.0 + std::cos(M_PI * t));
}

std::mt19937_64 keyedRng(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  std::seed_seq seq{static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32),
                    static_cast<std::uint32_t>(a), static_cast<std::uint32_t>(b),
                    static_cast<std::uint32_t>(c)};
  return std::mt19937_64(seq);
}

void saveCheckpoint(const std::string& path, torch::nn::Module& net, torch::optim::Optimizer& opt,
                    int step, std::int64_t config_hash, const std::vector<LossRecord>& curve) {
  torch::serialize::OutputArchive ar, netar, optar;
  net.save(netar);
  opt.save(optar);
  ar.write("net", netar);
  ar.write("optimizer", optar);
  ar.write("step", torch::tensor(static_cast<std::int64_t>(step)));
  ar.write("config_hash", torch::tensor(config_hash));
  auto cv = torch::zeros({static_cast<int64_t>(curve.size()), 5}, torch::kFloat64);
  auto acc = cv.accessor<double, 2>();
  for (std::size_t i = 0; i < curve.size(); ++i) {
    const auto& r = curve[i];
    acc[i][0] = r.step;
    acc[i][1] = r.train;
    acc[i][2] = r.validation;
    acc[i][3] = r.lr;
    acc[i][4] = r.seconds;
  }
  ar.write("curve", cv);
  const std::string tmp = temporaryName(path);
  ar.save_to(tmp);
  commitFile(tmp, path);
}

int loadCheckpoint(const std::string& path, torch::nn::Module& net, torch::optim::Optimizer& opt,
                   std::int64_t config_hash, std::vector<LossRecord>& curve) {
  torch::serialize::InputArchive ar;
  try {
    ar.load_from(path);
    torch::Tensor h, st, cv;
    ar.read("config_hash", h);
    if (h.item<std::int64_t>() != config_hash)
      throw std::invalid_argument("training --resume: " + path +
                                  " was made with another configuration (data, model or "
                                  "training settings differ)");
    ar.read("step", st);
    ar.read("curve", cv);
    torch::serialize::InputArchive netar, optar;
    ar.read("net", netar);
    ar.read("optimizer", optar);
    net.load(netar);
    opt.load(optar);
    curve.clear();
    auto acc = cv.accessor<double, 2>();
    for (int64_t i = 0; i < cv.size(0); ++i)
      curve.push_back({static_cast<int>(acc[i][0]), acc[i][1], acc[i][2], acc[i][3], acc[i][4]});
    return static_cast<int>(st.item<std::int64_t>());
  } catch (const c10::Error& e) {
    throw std::invalid_argument("training --resume: " + path +
                                " is not a readable checkpoint: " + e.what_without_backtrace());
  }
}

int startOrResume(const TrainingConfig& cfg, MPI_Comm comm, const std::string& ckpt,
                  torch::nn::Module& net, torch::optim::Optimizer& opt, std::int64_t config_hash,
                  std::vector<LossRecord>& curve) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0)
    makeDirectories(cfg.directory);
  mpiCheck(MPI_Barrier(comm), "training: output directory");
  if (cfg.resume) {
    if (!std::filesystem::exists(ckpt))
      throw std::invalid_argument("training --resume: no checkpoint " + ckpt);
    const int start = loadCheckpoint(ckpt, net, opt, config_hash, curve);
    if (start > cfg.steps)
      throw std::invalid_argument("training --resume: the checkpoint is at step " +
                                  std::to_string(start) +
                                  ", beyond training.steps = " + std::to_string(cfg.steps));
    return start;
  }
  if (std::filesystem::exists(ckpt))
    throw std::invalid_argument("training: " + ckpt +
                                " exists; pass --resume to continue it, or choose another "
                                "output directory");
  return 0;
}

int optimise(const TrainingConfig& cfg, MPI_Comm comm, torch::nn::Module& net,
             torch::optim::Adam& opt, int start, std::vector<LossRecord>& curve,
             const std::function<torch::Tensor(int)>& batchLoss,
             const std::function<double()>& validate, const std::function<void(int)>& save,
             const std::function<void(const TrainingProgress&)>& progress) {
  int rank = 0, nranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  if (start == 0)
    curve.push_back({0, NAN, validate(), 0.0, 0.0});
  const double seconds_before = curve.back().seconds;
  const auto t0 = std::chrono::steady_clock::now();
  auto params = net.parameters();
  net.train();
  int step = start;
  while (step < cfg.steps) {
    ++step;
    const double lr = learningRate(cfg, step);
    for (auto& g : opt.param_groups())
      static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
    opt.zero_grad();
    auto loss = batchLoss(step);
    loss.backward();
    // Data parallel: average the gradients over ranks.
    if (nranks > 1)
      for (auto& p : params)
        if (p.grad().defined()) {
          auto g = p.grad();
          mpiCheck(MPI_Allreduce(MPI_IN_PLACE, g.data_ptr<float>(), static_cast<int>(g.numel()),
                                 MPI_FLOAT, MPI_SUM, comm),
                   "training: gradients");
          g.div_(static_cast<double>(nranks));
        }
    opt.step();
    double l = loss.item<double>(), lsum = 0;
    mpiCheck(MPI_Allreduce(&l, &lsum, 1, MPI_DOUBLE, MPI_SUM, comm), "training: loss");
    LossRecord rec;
    rec.step = step;
    rec.train = lsum / nranks;
    rec.validation = (step % cfg.validate_every == 0 || step == cfg.steps) ? validate() : NAN;
    rec.lr = lr;
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rec.seconds = seconds_before + elapsed;
    curve.push_back(rec);
    if (!std::isfinite(rec.train))
      throw std::runtime_error("training: the loss became " + std::to_string(rec.train) +
                               " at step " + std::to_string(step) +
                               " (lower training.learning_rate?)");
    if (progress && rank == 0) {
      double last_val = NAN;
      for (auto it = curve.rbegin(); it != curve.rend(); ++it)
        if (std::isfinite(it->validation)) {
          last_val = it->validation;
          break;
        }
      progress({step, cfg.steps, rec.train, last_val, lr,
                elapsed / (step - start) * (cfg.steps - step)});
    }
    const bool stop = cfg.stop_after >= 0 && step >= cfg.stop_after;
    if (step % cfg.checkpoint_every == 0 || step == cfg.steps || stop)
      save(step);
    if (stop)
      break;
  }
  return step;
}

std::string commonConfigText(const TrainingConfig& c) {
  std::ostringstream s;
  s << c.depth << "," << c.width << "," << c.batch << "," << c.crop << "," << c.learning_rate << ","
    << c.lr_min << "," << c.schedule << "," << c.warmup << "," << c.seed << "," << c.augment << ","
    << c.loss_margin << "," << c.validate_every << "," << c.validation_crops;
  return s.str();
}

} // namespace caustic::training
