#include "emulators/training/training.hpp"

#include "emulators/training/superres_training.hpp"
#include "emulators/training/training_common.hpp"

#include "io/atomic_file.hpp"
#include "io/fields.hpp"
#include "io/svg_plot.hpp"
#include "pm/core/comm.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

namespace caustic {

namespace {

using namespace training;

struct Sample {
  torch::Tensor x, y; // (C, n, n, n) float32, normalised
  int n = 0;
  std::vector<float> cond; // normalised conditioning values (constant channels after x's)
};

// x (C, c, c, c) with one constant channel per conditioning value appended.
torch::Tensor withConditioning(const torch::Tensor& x, const std::vector<float>& cond) {
  if (cond.empty())
    return x;
  std::vector<torch::Tensor> parts = {x};
  for (float v : cond)
    parts.push_back(torch::full({1, x.size(1), x.size(2), x.size(3)}, v, x.options()));
  return torch::cat(parts, 0);
}





std::pair<std::string, std::string> splitSpec(const std::string& spec, const std::string& where) {
  const auto colon = spec.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == spec.size())
    throw std::invalid_argument(where + " = \"" + spec +
                                "\": expected \"file.hdf5:group/dataset\"");
  return {spec.substr(0, colon), spec.substr(colon + 1)};
}

std::string datasetBase(const std::string& spec) {
  const std::string ds = spec.substr(spec.rfind(':') + 1);
  return ds.substr(ds.rfind('/') + 1);
}

struct DataInfo {
  double cell = 0, box_min = 1e300, box_max = 0, z_min = 1e300, z_max = -1e300, om_min = 1e300,
         om_max = 0;
  std::vector<std::string> files;
};

// The FoF settings (b, smallest group) of the groups painted into input channel c of every pair
// (a halo surrogate's fof_count): they must be recorded in the files (validation/halo_fields.py
// writes them) and agree, since the hook paints the run's groups with one [halos] setting.
std::pair<double, int> fofInputSettings(const TrainingConfig& cfg, std::size_t c) {
  std::set<std::pair<double, int>> seen;
  for (const auto* pairs : {&cfg.train, &cfg.validation})
    for (const auto& p : *pairs) {
      const auto [file, ds] = splitSpec(p.inputs.at(c), "data");
      const FieldData f = readFieldHeader(file, ds); // (readChannels reads the values)
      seen.insert({f.fof_b, f.fof_min_particles});
    }
  const auto [b, m] = *seen.begin();
  if (seen.size() != 1 || !(b > 0) || m < 1) {
    std::string found;
    for (const auto& [sb, sm] : seen)
      found += (found.empty() ? "" : ", ") +
               ("(b = " + std::to_string(sb) + ", MinParticles = " + std::to_string(sm) + ")");
    throw std::runtime_error(
        "model.inputs: the fof_count channel's files must record the b "
        "(/Header/LinkingLengthParameter > 0) and smallest group (/Header/MinParticles >= 1) of "
        "their FoF groups, the same in every pair; found " +
        found);
  }
  return {b, m};
}

// Reads the channels of one side of a pair: (C, n, n, n) in physical units.
torch::Tensor readChannels(const std::vector<std::string>& specs, const std::string& where,
                           DataInfo& info, int& n) {
  std::vector<torch::Tensor> ch;
  for (const auto& spec : specs) {
    const auto [file, ds] = splitSpec(spec, where);
    FieldData f = readFieldData(file, ds);
    if (n == 0)
      n = f.n;
    if (f.n != n)
      throw std::runtime_error(where + ": " + spec + " has " + std::to_string(f.n) +
                               "^3 cells; the other channels of the pair have " +
                               std::to_string(n) + "^3");
    if (info.cell == 0)
      info.cell = f.cell;
    if (std::abs(f.cell / info.cell - 1.0) > 1e-6)
      throw std::runtime_error(where + ": " + spec + " has cells of " + std::to_string(f.cell) +
                               " Mpc/h; the data set's are " + std::to_string(info.cell) +
                               " Mpc/h (one cell size per model)");
    info.box_min = std::min(info.box_min, f.box);
    info.box_max = std::max(info.box_max, f.box);
    info.z_min = std::min(info.z_min, 1.0 / f.a - 1.0);
    info.z_max = std::max(info.z_max, 1.0 / f.a - 1.0);
    if (f.omega_m > 0) {
      info.om_min = std::min(info.om_min, f.omega_m);
      info.om_max = std::max(info.om_max, f.omega_m);
    }
    info.files.push_back(file);
    ch.push_back(torch::from_blob(f.values.data(), {n, n, n}, torch::kFloat32).clone());
  }
  return torch::stack(ch);
}





// Everything that shapes the loss curve except `steps` (a run may be extended on resume).
std::int64_t configHash(const TrainingConfig& c) {
  std::ostringstream s;
  for (const auto* set : {&c.train, &c.validation})
    for (const auto& p : *set) {
      for (const auto& x : p.inputs)
        s << x << ";";
      for (const auto& x : p.targets)
        s << x << ";";
      for (double v : p.conditioning)
        s << v << ";";
      s << "|";
    }
  s << training::commonConfigText(c);
  for (const auto& [k, v] : c.transforms)
    s << "t:" << k << "=" << v << ";";
  for (const auto& [k, v] : c.residual_of)
    s << "r:" << k << "=" << v << ";";
  for (const auto& k : c.conditioning)
    s << "c:" << k << ";";
  if (!c.transforms.empty())
    s << "floor:" << c.floor;
  if (!c.weight.empty())
    s << "w:" << c.weight;
  if (c.loss != "mse")
    s << "loss:" << c.loss << "," << c.focal_gamma << "," << c.focal_alpha << "," << c.mass_weight;
  for (const auto& [k, v] : c.floors)
    s << "f:" << k << "=" << v << ";";
  return static_cast<std::int64_t>(std::hash<std::string>()(s.str()) & 0x7fffffffffffffffULL);
}

void writeCurve(const std::string& dir, const std::vector<LossRecord>& curve, bool halo) {
  if (halo)
    writeLossCurve(dir, curve,
                   "caustic train: halo loss (focal + ln M squared error, per occupied voxel)",
                   "caustic train: loss", "halo loss", "validation");
  else
    writeLossCurve(dir, curve, "caustic train: mean squared error of the normalised outputs",
                   "caustic train: loss", "MSE (normalised)", "validation");
}

void checkConfig(const TrainingConfig& c) {
  auto bad = [](const std::string& key, const std::string& value, const std::string& allowed) {
    throw std::invalid_argument("training." + key + " = " + value + ": " + allowed);
  };
  if (c.train.empty())
    throw std::invalid_argument("data.train: no training pairs");
  if (c.validation.empty())
    throw std::invalid_argument("data.validation: no validation pairs (a held-out set is "
                                "required)");
  if (c.depth < 0 || c.depth > 5)
    bad("depth", std::to_string(c.depth), "allowed: [0, 5]");
  if (c.width < 1 || c.width > 256)
    bad("width", std::to_string(c.width), "allowed: [1, 256]");
  if (c.steps < 1)
    bad("steps", std::to_string(c.steps), "allowed: >= 1");
  if (c.batch < 1 || c.batch > 1024)
    bad("batch", std::to_string(c.batch), "allowed: [1, 1024]");
  const int s = 1 << c.depth;
  if (c.crop < s || c.crop % s != 0)
    bad("crop", std::to_string(c.crop),
        "must be a positive multiple of 2^depth = " + std::to_string(s));
  if (!(c.learning_rate > 0) || !(c.learning_rate < 1))
    bad("learning_rate", std::to_string(c.learning_rate), "allowed: (0, 1)");
  if (!(c.lr_min >= 0) || c.lr_min > c.learning_rate)
    bad("lr_min", std::to_string(c.lr_min), "allowed: [0, learning_rate]");
  if (c.schedule != "cosine" && c.schedule != "constant")
    bad("schedule", "\"" + c.schedule + "\"", "allowed: cosine, constant");
  if (c.warmup < 0 || c.warmup >= c.steps)
    bad("warmup", std::to_string(c.warmup), "allowed: [0, steps)");
  if (c.validate_every < 1)
    bad("validate_every", std::to_string(c.validate_every), "allowed: >= 1");
  if (c.checkpoint_every < 1)
    bad("checkpoint_every", std::to_string(c.checkpoint_every), "allowed: >= 1");
  if (c.validation_crops < 1)
    bad("validation_crops", std::to_string(c.validation_crops), "allowed: >= 1");
  const std::size_t cin = c.train.front().inputs.size(), cout = c.train.front().targets.size();
  if (cin == 0 || cout == 0)
    throw std::invalid_argument("data.train[0]: needs at least one input and one target");
  for (const auto* set : {&c.train, &c.validation})
    for (const auto& p : *set)
      if (p.inputs.size() != cin || p.targets.size() != cout)
        throw std::invalid_argument("data: every pair needs " + std::to_string(cin) +
                                    " input(s) and " + std::to_string(cout) + " target(s)");
  if (c.loss != "mse" && c.loss != "halo")
    bad("loss", "\"" + c.loss + "\"", "allowed: mse, halo");
  if (c.loss == "halo") {
    if (cout != 2)
      throw std::invalid_argument("training.loss = \"halo\": the pairs need two targets, the "
                                  "number of halos and their total mass [Msun/h] per voxel; they "
                                  "have " +
                                  std::to_string(cout));
    if (!c.weight.empty())
      throw std::invalid_argument("training.weight = \"" + c.weight +
                                  "\": not with training.loss = \"halo\" (the focal loss "
                                  "weighs the voxels)");
  }
  if (!c.input_names.empty() && c.input_names.size() != cin)
    throw std::invalid_argument("model.inputs: " + std::to_string(c.input_names.size()) +
                                " names for " + std::to_string(cin) + " input channels");
  if (!c.output_names.empty() && c.output_names.size() != cout)
    throw std::invalid_argument("model.outputs: " + std::to_string(c.output_names.size()) +
                                " names for " + std::to_string(cout) + " target channels");
  for (const auto* set : {&c.train, &c.validation})
    for (std::size_t i = 0; i < set->size(); ++i)
      if ((*set)[i].conditioning.size() != c.conditioning.size())
        throw std::invalid_argument(
            std::string("data.") + (set == &c.train ? "train" : "validation") + "[" +
            std::to_string(i) + "].conditioning: " +
            std::to_string((*set)[i].conditioning.size()) + " value(s); model.conditioning names " +
            std::to_string(c.conditioning.size()));
}

// Position of `name` in `names`, -1 if absent.
int indexOf(const std::vector<std::string>& names, const std::string& name) {
  const auto it = std::find(names.begin(), names.end(), name);
  return it == names.end() ? -1 : static_cast<int>(it - names.begin());
}

// The channels' transforms and residuals from the configuration (means and stds come later).
std::vector<Channel> channelTemplates(const TrainingConfig& cfg,
                                      const std::vector<std::string>& names, bool outputs,
                                      const std::vector<std::string>& in_names) {
  std::vector<Channel> out;
  for (const auto& n : names) {
    Channel c;
    c.name = n;
    c.floor = cfg.floor;
    const auto f = cfg.floors.find(n);
    if (f != cfg.floors.end())
      c.floor = f->second;
    const auto t = cfg.transforms.find(n);
    if (t != cfg.transforms.end())
      c.transform = t->second;
    const auto r = cfg.residual_of.find(n);
    if (r != cfg.residual_of.end()) {
      if (!outputs)
        throw std::invalid_argument("model.residual." + n + ": \"" + n +
                                    "\" is an input channel; residuals are for outputs");
      if (indexOf(in_names, r->second) < 0)
        throw std::invalid_argument("model.residual." + n + " = \"" + r->second +
                                    "\": not an input channel");
      c.residual_of = r->second;
    }
    out.push_back(c);
  }
  return out;
}

// The halo surrogate's loss on (B, 2, n, n, n) outputs (presence logit, normalised ln M) and
// targets (occupation 0/1, normalised ln M): the focal loss summed over voxels plus mass_weight
// times the squared ln M error summed over occupied voxels, both divided by the number of
// occupied voxels (at least 1).
torch::Tensor haloLoss(const torch::Tensor& out, const torch::Tensor& y, double gamma,
                       double alpha, double mass_weight) {
  const auto z = out.select(1, 0), t = y.select(1, 0);
  const auto bce = torch::binary_cross_entropy_with_logits(z, t, {}, {}, at::Reduction::None);
  const auto p = torch::sigmoid(z);
  const auto pt = t * p + (1 - t) * (1 - p);
  const auto at = t * alpha + (1 - t) * (1 - alpha);
  const auto focal = (at * torch::pow(1 - pt, gamma) * bce).sum();
  const auto mass = (t * (out.select(1, 1) - y.select(1, 1)).pow(2)).sum();
  return (focal + mass_weight * mass) / torch::clamp_min(t.sum(), 1.0);
}

// Platt scaling: (a, b) minimising the cross entropy of sigmoid(a z + b) against the labels t
// (Newton's method on the two parameters; a starts at 1, b at 0).
std::pair<double, double> plattCalibration(const torch::Tensor& z_in, const torch::Tensor& t_in) {
  const auto z = z_in.to(torch::kFloat64).flatten(), t = t_in.to(torch::kFloat64).flatten();
  double a = 1.0, b = 0.0;
  for (int it = 0; it < 50; ++it) {
    const auto p = torch::sigmoid(a * z + b);
    const auto r = p - t, w = p * (1 - p);
    const double ga = (r * z).sum().item<double>(), gb = r.sum().item<double>();
    const double haa = (w * z * z).sum().item<double>() + 1e-9,
                 hab = (w * z).sum().item<double>(), hbb = w.sum().item<double>() + 1e-9;
    const double det = haa * hbb - hab * hab;
    if (!(det > 0))
      break;
    const double da = (hbb * ga - hab * gb) / det, db = (haa * gb - hab * ga) / det;
    a -= da;
    b -= db;
    if (std::abs(da) + std::abs(db) < 1e-10)
      break;
  }
  return {a, b};
}

} // namespace

void writeLossCurve(const std::string& dir, const std::vector<LossRecord>& curve,
                    const std::string& description, const std::string& title,
                    const std::string& ylabel, const std::string& validation_label) {
  std::ostringstream o;
  o << "# " << description << "\n"
    << "step,train_loss,validation_loss,learning_rate,seconds\n";
  o.precision(9);
  for (const auto& r : curve) {
    o << r.step << ",";
    if (std::isfinite(r.train))
      o << r.train;
    o << ",";
    if (std::isfinite(r.validation))
      o << r.validation;
    o << "," << r.lr << "," << r.seconds << "\n";
  }
  writeTextFile(dir + "/loss.csv", o.str());
  PlotSeries tr{"training", "#1f77b4", {}}, va{validation_label, "#d62728", {}};
  for (const auto& r : curve) {
    tr.points.emplace_back(r.step, r.train);
    if (std::isfinite(r.validation))
      va.points.emplace_back(r.step, r.validation);
  }
  writeSvgPlot(dir + "/loss.svg", title, "step", ylabel, {tr, va}, true);
}

TrainingResult trainModel(const TrainingConfig& cfg, MPI_Comm comm,
                          const std::function<void(const TrainingProgress&)>& progress) {
  if (cfg.kind == "particle_super_resolution")
    return trainSuperResolution(cfg, comm, progress);
  checkConfig(cfg);
  int rank = 0, nranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  // One thread per rank: ranks carry the parallelism, and the reductions stay deterministic so
  // that a resumed run repeats the uninterrupted one.
  torch::set_num_threads(1);

  // Channel names.
  std::vector<std::string> in_names = cfg.input_names, out_names = cfg.output_names;
  if (in_names.empty())
    for (const auto& s : cfg.train.front().inputs)
      in_names.push_back(datasetBase(s));
  const bool halo = cfg.loss == "halo";
  if (out_names.empty() && halo)
    out_names = {"halo_presence", "halo_mass"};
  if (out_names.empty())
    for (const auto& s : cfg.train.front().targets)
      out_names.push_back(datasetBase(s));
  for (const auto& [k, v] : cfg.transforms)
    if (indexOf(in_names, k) < 0 && indexOf(out_names, k) < 0)
      throw std::invalid_argument("model.transforms." + k + " = \"" + v +
                                  "\": no input or output channel of that name");
  for (const auto& [k, v] : cfg.floors)
    if (!(v > 0) || (indexOf(in_names, k) < 0 && indexOf(out_names, k) < 0))
      throw std::invalid_argument("model.floors." + k + " = " + std::to_string(v) +
                                  ": expected a number > 0 for an input or output channel");
  for (const auto& [k, v] : cfg.residual_of)
    if (indexOf(out_names, k) < 0)
      throw std::invalid_argument("model.residual." + k + " = \"" + v +
                                  "\": no output channel of that name");
  if (halo)
    for (const auto& n : out_names)
      if (cfg.transforms.count(n) || cfg.residual_of.count(n) || cfg.floors.count(n))
        throw std::invalid_argument("model.transforms/residual/floors." + n +
                                    ": the outputs of a halo surrogate have fixed transforms "
                                    "(logit presence, log mass)");
  const auto tin = channelTemplates(cfg, in_names, false, in_names);
  auto tout = channelTemplates(cfg, out_names, true, in_names);
  if (halo) {
    tout[0].transform = "logit";
    tout[0].floor = 1e-6;
    tout[1].transform = "log";
    tout[1].floor = 1.0; // [Msun/h]
  }
  for (const auto& o : tout)
    if (!o.residual_of.empty()) {
      const auto& i = tin[indexOf(in_names, o.residual_of)];
      if (!residualTransformsAgree(i.transform, o.transform))
        throw std::invalid_argument("model.residual." + o.name + " = \"" + i.name +
                                    "\": the output's transform (" + o.transform +
                                    ") and the input's (" + i.transform +
                                    ") must both or neither be logarithmic (log, log1p), and "
                                    "neither a logit");
    }
  const ChannelLayout lin(in_names, cfg.augment, "input"), lout(out_names, cfg.augment, "target");

  // Data (every rank reads the whole, small, training set).
  DataInfo info;
  std::vector<torch::Tensor> raw_x, raw_y, val_x, val_y;
  std::vector<int> sizes, val_sizes;
  DataInfo vinfo;
  std::pair<double, int> fof_input{0.0, 0}; // a halo surrogate's fof_count: (b, min_particles)
  try { // missing, corrupt or inconsistent data: an input error, met by every rank alike
    for (std::size_t i = 0; i < cfg.train.size(); ++i) {
      const std::string where = "data.train[" + std::to_string(i) + "]";
      int n = 0;
      raw_x.push_back(readChannels(cfg.train[i].inputs, where, info, n));
      raw_y.push_back(readChannels(cfg.train[i].targets, where, info, n));
      sizes.push_back(n);
    }
    vinfo = info;
    for (std::size_t i = 0; i < cfg.validation.size(); ++i) {
      const std::string where = "data.validation[" + std::to_string(i) + "]";
      int n = 0;
      val_x.push_back(readChannels(cfg.validation[i].inputs, where, vinfo, n));
      val_y.push_back(readChannels(cfg.validation[i].targets, where, vinfo, n));
      val_sizes.push_back(n);
    }
    if (const int c = indexOf(in_names, "fof_count"); halo && c >= 0)
      fof_input = fofInputSettings(cfg, static_cast<std::size_t>(c));
  } catch (const std::runtime_error& e) {
    throw std::invalid_argument(e.what());
  }
  const int nmin = std::min(*std::min_element(sizes.begin(), sizes.end()),
                            *std::min_element(val_sizes.begin(), val_sizes.end()));
  if (cfg.crop > nmin)
    throw std::invalid_argument("training.crop = " + std::to_string(cfg.crop) +
                                ": larger than the smallest field (" + std::to_string(nmin) +
                                "^3 cells)");
  // Transforms, then residuals (in transformed units), then the normalisation of what the network
  // sees and predicts.
  // A halo surrogate's targets become the occupation (0/1) and ln of the mean mass of the
  // voxel's halos (0 where empty; masked out of the loss).
  double halo_count = 0, halo_min_mass = 1e300, halo_volume = 0;
  auto transform = [&](std::vector<torch::Tensor>& xs, std::vector<torch::Tensor>& ys) {
    for (std::size_t i = 0; i < xs.size(); ++i) {
      for (std::size_t c = 0; c < tin.size(); ++c)
        xs[i][c].copy_(transformChannel(tin[c], xs[i][c]));
      if (halo) {
        const auto number = ys[i][0].clone(), mass = ys[i][1].clone();
        const auto occ = number > 0.5;
        if (occ.any().item<bool>())
          halo_min_mass = std::min(
              halo_min_mass,
              (mass.masked_select(occ) / number.masked_select(occ)).min().item<double>());
        halo_count += number.sum().item<double>();
        halo_volume += std::pow(info.cell * number.size(0), 3);
        ys[i][0].copy_(occ.to(torch::kFloat32));
        ys[i][1].copy_(torch::where(occ, torch::log(torch::clamp_min(mass, 1.0) /
                                                    torch::clamp_min(number, 1.0)),
                                    torch::zeros_like(mass)));
        continue;
      }
      for (std::size_t c = 0; c < tout.size(); ++c) {
        ys[i][c].copy_(transformChannel(tout[c], ys[i][c]));
        if (!tout[c].residual_of.empty())
          ys[i][c].sub_(xs[i][indexOf(in_names, tout[c].residual_of)]);
      }
    }
  };
  transform(raw_x, raw_y);
  const double train_halo_count = halo_count, train_halo_volume = halo_volume,
               train_min_mass = halo_min_mass;
  transform(val_x, val_y);
  if (halo && !(train_halo_count > 0))
    throw std::invalid_argument("training.loss = \"halo\": the training targets hold no halo "
                                "(the first target must count halos per voxel)");
  auto norm_in = normalisation(raw_x, in_names), norm_out = normalisation(raw_y, out_names);
  if (halo) {
    // Presence: logits as they come (calibrated after training); mass: mean and std of ln M over
    // the occupied training voxels.
    norm_out[0].mean = 0.0;
    norm_out[0].std = 1.0;
    double s1 = 0, s2 = 0, cnt = 0;
    for (const auto& y : raw_y) {
      const auto occ = y[0] > 0.5;
      const auto v = y[1].masked_select(occ).to(torch::kFloat64);
      s1 += v.sum().item<double>();
      s2 += (v * v).sum().item<double>();
      cnt += static_cast<double>(v.numel());
    }
    norm_out[1].mean = s1 / cnt;
    const double var = s2 / cnt - norm_out[1].mean * norm_out[1].mean;
    norm_out[1].std = var > 1e-12 ? std::sqrt(var) : 1.0;
  }
  for (std::size_t c = 0; c < tin.size(); ++c) {
    norm_in[c].transform = tin[c].transform;
    norm_in[c].floor = tin[c].floor;
  }
  for (std::size_t c = 0; c < tout.size(); ++c) {
    norm_out[c].transform = tout[c].transform;
    norm_out[c].floor = tout[c].floor;
    norm_out[c].residual_of = tout[c].residual_of;
  }
  // Conditioning: normalised by the training design's mean and spread; valid over its range.
  std::vector<Conditioning> cond(cfg.conditioning.size());
  for (std::size_t k = 0; k < cond.size(); ++k) {
    double s1 = 0, s2 = 0, lo = 1e300, hi = -1e300;
    for (const auto& p : cfg.train) {
      const double v = p.conditioning[k];
      s1 += v;
      s2 += v * v;
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
    const double n = static_cast<double>(cfg.train.size());
    cond[k].name = cfg.conditioning[k];
    cond[k].mean = s1 / n;
    const double sd = std::sqrt(std::max(0.0, s2 / n - cond[k].mean * cond[k].mean));
    cond[k].std = sd > 1e-12 * std::max(1.0, std::abs(cond[k].mean)) ? sd : 1.0;
    cond[k].lo = lo;
    cond[k].hi = hi;
  }
  auto condValues = [&](const TrainingPair& p) {
    std::vector<float> v;
    for (std::size_t k = 0; k < cond.size(); ++k)
      v.push_back(static_cast<float>((p.conditioning[k] - cond[k].mean) / cond[k].std));
    return v;
  };
  std::vector<Sample> train, val;
  for (std::size_t i = 0; i < raw_x.size(); ++i)
    train.push_back({normalise(raw_x[i], norm_in), normalise(raw_y[i], norm_out), sizes[i],
                     condValues(cfg.train[i])});
  for (std::size_t i = 0; i < val_x.size(); ++i)
    val.push_back({normalise(val_x[i], norm_in), normalise(val_y[i], norm_out), val_sizes[i],
                   condValues(cfg.validation[i])});
  raw_x.clear();
  raw_y.clear();
  val_x.clear();
  val_y.clear();

  UNetConfig ucfg;
  ucfg.in_channels = static_cast<int>(in_names.size() + cond.size());
  ucfg.out_channels = static_cast<int>(out_names.size());
  ucfg.depth = cfg.depth;
  ucfg.width = cfg.width;
  const bool whole = cfg.crop == nmin && *std::max_element(sizes.begin(), sizes.end()) == nmin &&
                     *std::max_element(val_sizes.begin(), val_sizes.end()) == nmin;
  const int margin = cfg.loss_margin >= 0 ? cfg.loss_margin
                     : whole              ? 0
                                          : std::min(ucfg.receptiveField(), cfg.crop / 4);
  if (2 * margin >= cfg.crop)
    throw std::invalid_argument("training.loss_margin = " + std::to_string(margin) +
                                ": leaves nothing of a crop of " + std::to_string(cfg.crop));
  // The loss: mean squared error of the normalised outputs, or with `weight` each voxel's
  // squared error times that input channel's physical value (e.g. 1 + delta: mass weighting).
  int weight_channel = -1;
  if (!cfg.weight.empty()) {
    weight_channel = indexOf(in_names, cfg.weight);
    if (weight_channel < 0 || tin[weight_channel].transform == "none")
      throw std::invalid_argument("training.weight = \"" + cfg.weight +
                                  "\": must name an input channel with a log or log1p transform "
                                  "(its physical value, e.g. 1 + delta, weighs each voxel)");
  }
  auto loss_of = [&](const torch::Tensor& out, const torch::Tensor& y, const torch::Tensor& x) {
    const int64_t len = out.size(2) - 2 * margin;
    auto c = [&](const torch::Tensor& t) {
      return t.narrow(2, margin, len).narrow(3, margin, len).narrow(4, margin, len);
    };
    if (halo)
      return haloLoss(c(out), c(y), cfg.focal_gamma, cfg.focal_alpha, cfg.mass_weight);
    if (weight_channel < 0)
      return torch::mse_loss(c(out), c(y));
    const Channel& wc = norm_in[weight_channel];
    // exp of the transformed value: x for "log", 1 + x for "log1p" (floored as the input).
    const auto w = torch::exp(x.narrow(1, weight_channel, 1) * wc.std + wc.mean);
    return (c(w) * (c(out) - c(y)).pow(2)).mean();
  };

  torch::manual_seed(cfg.seed); // the same initial weights on every rank
  UNet3d net(ucfg);
  if (halo) {
    // Start from the prior occupation pi (RetinaNet's initialisation: bias -ln((1 - pi) / pi)),
    // so the focal loss does not begin dominated by the empty voxels.
    double occupied = 0, voxels = 0;
    for (const auto& t : train) {
      occupied += t.y[0].sum().item<double>();
      voxels += static_cast<double>(t.y[0].numel());
    }
    const double pi = std::clamp(occupied / voxels, 1e-6, 0.5);
    torch::NoGradGuard ng;
    for (auto& p : net->named_parameters())
      if (p.key() == "head.bias")
        p.value()[0].fill_(-std::log((1 - pi) / pi));
  }
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(cfg.learning_rate));

  const std::string dir = cfg.directory;
  const std::string ckpt = dir + "/checkpoint.pt";
  TrainingResult result;
  const std::int64_t hash = configHash(cfg);
  const int start = training::startOrResume(cfg, comm, ckpt, *net, opt, hash, result.curve);

  auto save_checkpoint = [&](int step) {
    if (rank == 0) {
      training::saveCheckpoint(ckpt, *net, opt, step, hash, result.curve);
      writeCurve(dir, result.curve, halo);
    }
    mpiCheck(MPI_Barrier(comm), "training: checkpoint");
  };

  // Validation: fixed crops (the whole field when the crop is the field), split over ranks.
  auto validate = [&]() {
    torch::NoGradGuard ng;
    net->eval();
    double sum = 0, count = 0;
    int k = 0;
    for (std::size_t v = 0; v < val.size(); ++v) {
      const int ncrops = cfg.crop == val[v].n ? 1 : cfg.validation_crops;
      for (int j = 0; j < ncrops; ++j, ++k) {
        if (k % nranks != rank)
          continue;
        std::array<int, 3> o = {0, 0, 0};
        if (cfg.crop < val[v].n) {
          auto rng = keyedRng(cfg.seed, 0x7fffffffu, v, j);
          std::uniform_int_distribution<int> u(0, val[v].n - 1);
          o = {u(rng), u(rng), u(rng)};
        }
        const auto x =
            withConditioning(periodicCrop(val[v].x, cfg.crop, o, val[v].n), val[v].cond)
                .unsqueeze(0);
        const auto y = periodicCrop(val[v].y, cfg.crop, o, val[v].n).unsqueeze(0);
        sum += loss_of(net->forward(x), y, x).item<double>();
        count += 1;
      }
    }
    double in[2] = {sum, count}, out[2];
    mpiCheck(MPI_Allreduce(in, out, 2, MPI_DOUBLE, MPI_SUM, comm), "training: validation");
    net->train();
    return out[0] / out[1];
  };

  // The optimisation (training::optimise records the held-out loss of the initial weights as
  // step 0, the reference of the curve).
  const int step = optimise(
      cfg, comm, *net, opt, start, result.curve,
      [&](int step) {
        std::vector<torch::Tensor> xs, ys;
        for (int b = 0; b < cfg.batch; ++b) {
          auto rng = keyedRng(cfg.seed, step, rank, b);
          std::uniform_int_distribution<int> pick(0, static_cast<int>(train.size()) - 1);
          const Sample& s = train[pick(rng)];
          std::uniform_int_distribution<int> u(0, s.n - 1), sym(0, 47);
          const std::array<int, 3> o = {u(rng), u(rng), u(rng)};
          const int k = cfg.augment ? sym(rng) : 0;
          xs.push_back(withConditioning(
              applySymmetry(periodicCrop(s.x, cfg.crop, o, s.n), k, lin), s.cond));
          ys.push_back(applySymmetry(periodicCrop(s.y, cfg.crop, o, s.n), k, lout));
        }
        const auto x = torch::stack(xs), y = torch::stack(ys);
        return loss_of(net->forward(x), y, x);
      },
      validate, save_checkpoint, progress);
  result.steps_done = step;
  if (step < cfg.steps)
    return result;

  // The model and its metadata record.
  ModelMetadata meta;
  meta.kind = !cfg.kind.empty() ? cfg.kind : halo ? "halo_surrogate" : "emulator";
  if (halo) {
    // Calibration on the validation pairs, whole fields (the same on every rank).
    torch::NoGradGuard ng;
    net->eval();
    std::vector<torch::Tensor> zs, ts, rs;
    for (const auto& v : val) {
      const auto out = net->forward(withConditioning(v.x, v.cond).unsqueeze(0))[0];
      zs.push_back(out[0].flatten());
      ts.push_back(v.y[0].flatten());
      const auto occ = v.y[0] > 0.5;
      rs.push_back((out[1] - v.y[1]).masked_select(occ));
    }
    const auto [a, b] = plattCalibration(torch::cat(zs), torch::cat(ts));
    norm_out[0].mean = b;
    norm_out[0].std = a;
    const auto r = torch::cat(rs).to(torch::kFloat64);
    HaloSurrogateInfo h;
    h.presence = out_names[0];
    h.mass = out_names[1];
    if (r.numel() > 1) {
      const double bias = r.mean().item<double>();
      norm_out[1].mean -= bias * norm_out[1].std;
      h.log_mass_scatter = r.std().item<double>() * norm_out[1].std;
    }
    h.min_mass = train_min_mass;
    h.linking_length = cfg.linking_length;
    h.number_density = train_halo_count / train_halo_volume;
    std::tie(h.input_fof_b, h.input_fof_min_particles) = fof_input;
    meta.halo = h;
  }
  meta.version = "1";
  meta.inputs = norm_in;
  meta.outputs = norm_out;
  meta.conditioning = cond;
  meta.receptive_field = ucfg.receptiveField();
  meta.cell_size = info.cell;
  meta.cell_size_rtol = 0.02;
  meta.box = std::make_pair(info.box_min, info.box_max);
  meta.redshift = std::make_pair(std::max(0.0, info.z_min - 1e-9), info.z_max + 1e-9);
  if (info.om_max > 0)
    meta.cosmology.push_back({"Omega_m", {info.om_min, info.om_max}});
  {
    std::ostringstream p;
    p << "caustic train" << (cfg.source.empty() ? "" : " " + cfg.source) << ": " << cfg.train.size()
      << " training and " << cfg.validation.size() << " validation pairs, " << cfg.steps
      << " steps of " << cfg.batch << " x " << nranks << " crops of " << cfg.crop << "^3, seed "
      << cfg.seed << (cfg.weight.empty() ? "" : ", loss weighted by " + cfg.weight)
      << ", final validation loss " << result.curve.back().validation;
    meta.provenance = p.str();
  }
  Model wrapped(net, meta); // sets architecture and stride
  result.model_path = dir + "/model.pt";
  if (rank == 0) {
    const std::string tmp = temporaryName(result.model_path);
    torch::save(net, tmp);
    writeTextFile(dir + "/model.json", wrapped.metadata().toJson().dump(2) + "\n");
    commitFile(tmp, result.model_path);
    writeCurve(dir, result.curve, halo);
  }
  mpiCheck(MPI_Barrier(comm), "training: model");
  result.finished = true;
  return result;
}

} // namespace caustic
