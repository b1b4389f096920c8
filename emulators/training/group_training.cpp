#include "emulators/training/group_training.hpp"

#include "emulators/runtime/group_surrogate.hpp"
#include "emulators/training/training_common.hpp"
#include "emulators/training/training_config.hpp"
#include "io/atomic_file.hpp"
#include "io/format.hpp"
#include "io/halos.hpp"
#include "io/snapshot.hpp"
#include "io/text_file.hpp"
#include "io/toml_section.hpp"
#include "pm/analysis/fof.hpp"
#include "pm/analysis/group_features.hpp"
#include "pm/core/comm.hpp"
#include "pm/particles/migrate.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>
#include <unordered_map>

namespace caustic {

using namespace tomlsec;

namespace {

std::vector<GroupTrainingConfig::Pair> groupPairs(toml::table& data, const std::string& key,
                                                  const std::string& base) {
  std::vector<GroupTrainingConfig::Pair> out;
  toml::node* n = data.get(key);
  if (!n)
    return out;
  const std::string where = "data." + key;
  if (!n->is_array())
    throw ParamError(where + " = " + show(*n) +
                     ": expected a list of {snapshot = \"...\", truth = \"...\"} tables");
  int i = 0;
  for (auto& e : *n->as_array()) {
    const std::string w = where + "[" + std::to_string(i++) + "]";
    if (!e.is_table())
      throw ParamError(w + " = " + show(e) + ": expected {snapshot = \"...\", truth = \"...\"}");
    for (auto&& [k, v] : *e.as_table()) {
      const std::string ks(k.str());
      if (ks != "snapshot" && ks != "truth")
        throw ParamError(w + "." + ks + ": unknown key; allowed: snapshot, truth");
    }
    GroupTrainingConfig::Pair p;
    for (const char* side : {"snapshot", "truth"}) {
      toml::node* s = e.as_table()->get(side);
      if (!s || !s->is_string())
        throw ParamError(w + "." + side + ": missing; expected the path of " +
                         (side[0] == 's' ? "the cheap run's snapshot"
                                         : "the truth's FoF catalogue (with member IDs)"));
      std::filesystem::path f(s->as_string()->get());
      if (f.is_relative())
        f = std::filesystem::path(base) / f;
      if (!std::filesystem::is_regular_file(f))
        throw ParamError(w + "." + side + " = \"" + s->as_string()->get() +
                         "\": no such file (looked for " + f.string() + ")");
      (side[0] == 's' ? p.snapshot : p.truth) = f.string();
    }
    out.push_back(p);
  }
  return out;
}

// One pair's groups: features and targets, the same on every rank.
struct GroupSet {
  std::vector<double> features; // [group][feature]
  std::vector<double> vectors;  // [group][vector][axis] (groupFeatures' position vectors)
  std::vector<double> offset;   // truth centre - cheap centre (nearest image), 3 per group
  std::vector<float> present, log_mass; // the targets (GroupTrainingConfig::mass_target)
  std::vector<char> matched;            // a mutual match (the position correction's groups)
  std::size_t truth_above = 0; // truth groups of at least min_particles
  double box = 0, a = 0, particle_mass = 0, omega_m = 0;
  std::size_t size() const { return present.size(); }
};

GroupSet loadGroupSet(const GroupTrainingConfig::Pair& p, const GroupTrainingConfig& cfg,
                      MPI_Comm comm) {
  Comm c(comm);
  SnapshotHeader hdr;
  Particles parts = readSnapshot(p.snapshot, c, hdr);
  const double np = std::round(std::cbrt(static_cast<double>(hdr.total_particles)));
  auto mesh = std::make_shared<SlabDecomposition>(comm, cfg.feature_mesh, hdr.box);
  migrate(parts, *mesh);
  FofOptions opt;
  opt.b = cfg.b;
  opt.min_particles = cfg.fof_min_particles;
  opt.member_ids = true;         // matched to the truth's groups by members
  if (cfg.position_correction) { // the displacement vector needs the particle lattice
    const SnapshotLattice lattice = snapshotLattice(hdr, p.snapshot);
    opt.lattice_grid = lattice.n;
    opt.lattice_offset = lattice.offset;
  }
  const HaloCatalogue cheap = findHalos(parts, *mesh, hdr.box / np, opt);
  GroupSet s;
  s.features = groupFeatures(cheap, parts, mesh, static_cast<double>(hdr.total_particles),
                             cfg.radii, cfg.position_correction ? &s.vectors : nullptr);
  s.box = hdr.box;
  s.a = hdr.a;
  s.particle_mass = hdr.particle_mass * 1e10;
  s.omega_m = hdr.omega_m;
  const HaloTable truth = readHaloCatalogue(p.truth, comm);
  if (truth.members.empty())
    throw std::runtime_error(p.truth + ": no member IDs (/IDs/ID); write the truth's catalogue "
                                       "with [halos] member_ids = true");
  if (std::fabs(truth.box - hdr.box) > 1e-6 * hdr.box || std::fabs(truth.a - hdr.a) > 1e-4)
    throw std::runtime_error(p.truth + ": box " + std::to_string(truth.box) + ", a " +
                             std::to_string(truth.a) + " differ from the snapshot " + p.snapshot +
                             " (box " + std::to_string(hdr.box) + ", a " + std::to_string(hdr.a) +
                             ")");
  // The same particles: a truth run on another Lagrangian lattice (its default offset is half of
  // its own, finer, cell) would shift every counterpart by the difference.
  if (cfg.position_correction && !truth.parameters.empty()) {
    const double mine = opt.lattice_offset,
                 theirs = parseParams(truth.parameters, {}, 1, ".", p.truth + ":/Parameters/toml")
                              .simulation.lattice_offset;
    if (std::fabs(mine - theirs) > 1e-9 * hdr.box)
      throw std::runtime_error(
          p.truth + ": simulation.lattice_offset = " + format("%g", theirs) + " Mpc/h, the cheap " +
          "snapshot " + p.snapshot + " has " + format("%g", mine) +
          " Mpc/h; the position correction would learn the difference. Run the truth with " +
          "simulation.lattice_offset = " + format("%g", mine) +
          " (the same particles), or set model.position_correction = false");
  }
  std::vector<std::uint64_t> tcount(truth.count.begin(), truth.count.end());
  std::vector<long> picked; // each truth group's best cheap group
  const auto match = matchGroups(cheap.member_offset, cheap.count, cheap.members,
                                 truth.member_offset, tcount, truth.members, &picked);
  // Per cheap group, the summed mass of the truth halos of at least min_particles that pick it.
  std::vector<double> assigned(cheap.size(), 0.0);
  for (std::size_t t = 0; t < picked.size(); ++t)
    if (picked[t] >= 0 && truth.count[t] >= static_cast<std::uint32_t>(cfg.min_particles))
      assigned[picked[t]] += truth.mass[t];
  const bool sum = cfg.mass_target == "assigned";
  s.present.resize(cheap.size());
  s.log_mass.resize(cheap.size());
  s.matched.resize(cheap.size());
  s.offset.assign(3 * cheap.size(), 0.0);
  for (std::size_t g = 0; g < cheap.size(); ++g) {
    s.matched[g] = match[g] >= 0;
    const double m = sum ? assigned[g] : (match[g] >= 0 ? truth.mass[match[g]] : 0.0);
    s.present[g] = m > 0 ? 1.0f : 0.0f;
    s.log_mass[g] = m > 0 ? static_cast<float>(std::log(m * 1e10)) : 0.0f;
    for (int c = 0; match[g] >= 0 && c < 3; ++c) {
      const double d = truth.pos[3 * match[g] + c] - cheap.pos[3 * g + c];
      s.offset[3 * g + c] = d - hdr.box * std::round(d / hdr.box);
    }
  }
  for (auto n : truth.count)
    s.truth_above += n >= static_cast<std::uint32_t>(cfg.min_particles);
  return s;
}

// The centres' correction: the coefficients c minimising the sum over the mutually matched
// training groups of |offset - sum_j c_j u_j|^2 (normal equations, Gauss-Jordan with partial
// pivoting; the same on every rank, as the groups are). Returns the rms per axis of the validation
// groups' offsets before and after it.
nlohmann::json fitPositionCorrection(const std::vector<GroupSet>& train,
                                     const std::vector<GroupSet>& val, GroupSurrogateRecord& rec) {
  constexpr int nv = kGroupVectors, per = 3 * kGroupVectors;
  double A[nv][nv + 1] = {};
  for (const auto& s : train)
    for (std::size_t g = 0; g < s.size(); ++g) {
      if (!s.matched[g])
        continue;
      const double* u = &s.vectors[g * per];
      for (int i = 0; i < nv; ++i)
        for (int a = 0; a < 3; ++a) {
          for (int j = 0; j < nv; ++j)
            A[i][j] += u[3 * i + a] * u[3 * j + a];
          A[i][nv] += u[3 * i + a] * s.offset[3 * g + a];
        }
    }
  double scale = 0;
  for (int i = 0; i < nv; ++i)
    scale = std::max(scale, A[i][i]);
  for (int col = 0; col < nv; ++col) {
    int piv = col;
    for (int r = col + 1; r < nv; ++r)
      if (std::fabs(A[r][col]) > std::fabs(A[piv][col]))
        piv = r;
    if (!(std::fabs(A[piv][col]) > 1e-14 * scale))
      throw std::runtime_error("training data: the position-correction vectors are degenerate "
                               "(set model.position_correction = false)");
    for (int j = 0; j <= nv; ++j)
      std::swap(A[col][j], A[piv][j]);
    for (int r = 0; r < nv; ++r)
      if (r != col) {
        const double f = A[r][col] / A[col][col];
        for (int j = col; j <= nv; ++j)
          A[r][j] -= f * A[col][j];
      }
  }
  rec.position_vectors = groupVectorNames();
  rec.position_coefficients.assign(nv, 0.0);
  for (int i = 0; i < nv; ++i)
    rec.position_coefficients[i] = A[i][nv] / A[i][i];
  double before = 0, after = 0, n = 0;
  for (const auto& s : val)
    for (std::size_t g = 0; g < s.size(); ++g) {
      if (!s.matched[g])
        continue;
      for (int a = 0; a < 3; ++a) {
        double shift = 0;
        for (int j = 0; j < nv; ++j)
          shift += rec.position_coefficients[j] * s.vectors[g * per + 3 * j + a];
        before += s.offset[3 * g + a] * s.offset[3 * g + a];
        after += (s.offset[3 * g + a] - shift) * (s.offset[3 * g + a] - shift);
      }
      n += 3;
    }
  return {{"before", n > 0 ? std::sqrt(before / n) : 0.0},
          {"after", n > 0 ? std::sqrt(after / n) : 0.0}};
}

} // namespace

GroupTrainingConfig loadGroupTrainingConfig(const std::string& path,
                                            const std::vector<std::string>& overrides) {
  const std::string text = readTextFile(path, "training configuration");
  std::string base = std::filesystem::path(path).parent_path().string();
  if (base.empty())
    base = ".";
  toml::table root = parseTomlText(text, path);
  for (const auto& ov : overrides)
    applyOverride(root, ov);
  for (auto&& [k, v] : root) {
    const std::string ks(k.str());
    if (ks != "data" && ks != "model" && ks != "training" && ks != "output")
      throw ParamError("[" + ks +
                       "]: unknown section; allowed: [data], [model], [training], [output]");
  }
  GroupTrainingConfig c;
  TrainingConfig& t = c.common;
  t.source = path;
  {
    toml::node* d = root.get("data");
    if (!d || !d->is_table())
      throw ParamError("[data]: missing section (train and validation pairs)");
    for (auto&& [k, v] : *d->as_table()) {
      const std::string ks(k.str());
      if (ks != "train" && ks != "validation")
        throw ParamError("data." + ks + ": unknown key; allowed: train, validation");
    }
    c.train = groupPairs(*d->as_table(), "train", base);
    c.validation = groupPairs(*d->as_table(), "validation", base);
    if (c.train.empty())
      throw ParamError("data.train: missing or empty; expected at least one pair");
    if (c.validation.empty())
      throw ParamError("data.validation: missing or empty; a held-out set is required");
  }
  {
    Section s(&root, "model");
    (void)s.string("kind");
    if (const auto r = s.numbers("radii", "a list of radii in (0, 100] Mpc/h")) {
      c.radii = *r;
      for (double x : c.radii)
        requireRange(x > 0 && x <= 100, s.key("radii"), x, "radii in (0, 100] Mpc/h");
    }
    if (const auto h = s.numbers("hidden", "a list of widths in [1, 4096]")) {
      c.hidden.clear();
      for (double x : *h) {
        requireRange(x >= 1 && x <= 4096 && x == std::floor(x), s.key("hidden"), x,
                     "integer widths in [1, 4096]");
        c.hidden.push_back(static_cast<int>(x));
      }
      requireRange(!c.hidden.empty(), s.key("hidden"), 0, "at least one hidden layer");
    }
    c.feature_mesh = static_cast<int>(
        s.integer("feature_mesh", std::nullopt, "an even integer >= 2 (the run's PM mesh)"));
    requireRange(c.feature_mesh >= 2 && c.feature_mesh % 2 == 0 && c.feature_mesh <= 8192,
                 s.key("feature_mesh"), c.feature_mesh, "an even integer in [2, 8192]");
    c.b = s.number("b", 0.2, "a number in (0, 1)");
    requireRange(c.b > 0 && c.b < 1, s.key("b"), c.b, "(0, 1)");
    c.fof_min_particles = static_cast<int>(s.integer("fof_min_particles", 10, "an integer >= 2"));
    requireRange(c.fof_min_particles >= 2, s.key("fof_min_particles"), c.fof_min_particles, ">= 2");
    c.min_particles = static_cast<int>(
        s.integer("min_particles", std::nullopt, "an integer >= fof_min_particles"));
    requireRange(c.min_particles >= c.fof_min_particles, s.key("min_particles"), c.min_particles,
                 ">= fof_min_particles = " + std::to_string(c.fof_min_particles));
    c.position_correction = s.boolean("position_correction", true);
    c.mass_target = s.string("mass_target").value_or("matched");
    if (c.mass_target != "matched" && c.mass_target != "assigned")
      throw ParamError(s.key("mass_target") + " = \"" + c.mass_target +
                       "\": expected \"matched\" (one truth halo per group, for catalogues) or "
                       "\"assigned\" (the summed mass of the truth halos that pick the group, for "
                       "the expected halo-mass field)");
    c.field_weight = s.number("field_weight", 0.0, "a number in [0, 1000]");
    requireRange(c.field_weight >= 0 && c.field_weight <= 1000, s.key("field_weight"),
                 c.field_weight, "[0, 1000] (0: no expected-field term)");
    s.finish();
  }
  {
    Section s(&root, "training", false);
    TrainingKeyDefaults d;
    d.steps = 3000;
    d.learning_rate = 3e-3;
    d.lr_min = [](double lr) { return 0.01 * lr; };
    d.validate_every = 100;
    d.checkpoint_every = 1000;
    readScheduleKeys(s, t, d);
    s.finish();
  }
  {
    Section s(&root, "output", false);
    t.directory = s.string("directory").value_or("output/train");
    if (t.directory.empty())
      throw ParamError("output.directory = \"\": expected a directory path");
    s.finish();
  }
  return c;
}

std::vector<long>
matchGroups(const std::vector<std::uint64_t>& a_offset, const std::vector<std::uint64_t>& a_count,
            const std::vector<std::uint64_t>& a_members, const std::vector<std::uint64_t>& b_offset,
            const std::vector<std::uint64_t>& b_count, const std::vector<std::uint64_t>& b_members,
            std::vector<long>* b_best) {
  const std::size_t na = a_count.size(), nb = b_count.size();
  std::unordered_map<std::uint64_t, long> owner; // particle ID -> group of B
  owner.reserve(b_members.size());
  for (std::size_t g = 0; g < nb; ++g)
    for (std::uint64_t i = 0; i < b_count[g]; ++i)
      owner[b_members[b_offset[g] + i]] = static_cast<long>(g);
  std::vector<long> best_b(na, -1), best_a(nb, -1);
  std::vector<std::uint64_t> best_b_n(na, 0), best_a_n(nb, 0);
  std::unordered_map<long, std::uint64_t> shared;
  for (std::size_t g = 0; g < na; ++g) {
    shared.clear();
    for (std::uint64_t i = 0; i < a_count[g]; ++i) {
      const auto it = owner.find(a_members[a_offset[g] + i]);
      if (it != owner.end())
        ++shared[it->second];
    }
    for (const auto& [b, n] : shared) {
      if (n > best_b_n[g] || (n == best_b_n[g] && b < best_b[g])) {
        best_b[g] = b;
        best_b_n[g] = n;
      }
      const long ga = static_cast<long>(g);
      if (n > best_a_n[b] || (n == best_a_n[b] && ga < best_a[b])) {
        best_a[b] = ga;
        best_a_n[b] = n;
      }
    }
  }
  std::vector<long> match(na, -1);
  for (std::size_t g = 0; g < na; ++g)
    if (best_b[g] >= 0 && best_a[best_b[g]] == static_cast<long>(g))
      match[g] = best_b[g];
  if (b_best)
    *b_best = best_a;
  return match;
}

torch::Tensor groupTrainingLoss(const torch::Tensor& o, const torch::Tensor& p,
                                const torch::Tensor& l, double n_total, double present_total,
                                double field_weight, double field_scale) {
  const auto logit = o.select(1, 0), mu = o.select(1, 1);
  const auto bce = torch::binary_cross_entropy_with_logits(logit, p, {}, {}, torch::Reduction::Sum);
  auto total = bce / n_total + (p * (mu - l).pow(2)).sum() / present_total;
  if (field_weight > 0) {
    // p exp(l) with l clamped where p = 0: an absent group's l is arbitrary (it may overflow).
    const auto target = p * torch::exp(torch::where(p > 0, l, torch::zeros_like(l)));
    const auto expected = torch::sigmoid(logit) * torch::exp(mu);
    total = total + field_weight * (field_scale * (expected - target)).pow(2).sum() / n_total;
  }
  return total;
}

TrainingResult trainGroupSurrogate(const GroupTrainingConfig& cfg, MPI_Comm comm,
                                   const std::function<void(const TrainingProgress&)>& progress) {
  using namespace training;
  int rank = 0, nranks = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &nranks);
  torch::set_num_threads(1);
  const TrainingConfig& t = cfg.common;
  std::vector<GroupSet> train, val;
  for (const auto& p : cfg.train)
    train.push_back(loadGroupSet(p, cfg, comm));
  for (const auto& p : cfg.validation)
    val.push_back(loadGroupSet(p, cfg, comm));
  // One domain: every pair at the same a, box and particle mass.
  const GroupSet& ref = train.front();
  for (const auto* set : {&train, &val})
    for (std::size_t i = 0; i < set->size(); ++i) {
      const auto& s = (*set)[i];
      const auto& path = (set == &train ? cfg.train : cfg.validation)[i].snapshot;
      if (std::fabs(s.a - ref.a) > 1e-4 || std::fabs(s.box - ref.box) > 1e-6 * ref.box ||
          std::fabs(s.particle_mass - ref.particle_mass) > 1e-4 * ref.particle_mass)
        throw std::runtime_error(
            "training data: " + path + " has a = " + std::to_string(s.a) + ", box " +
            std::to_string(s.box) + ", particle mass " + std::to_string(s.particle_mass) +
            "; the first training pair has " + std::to_string(ref.a) + ", " +
            std::to_string(ref.box) + ", " + std::to_string(ref.particle_mass) +
            " (one model per scale factor and resolution)");
    }
  const auto names = groupFeatureNames(cfg.radii);
  const std::size_t nf = names.size();
  GroupSurrogateRecord rec;
  rec.radii = cfg.radii;
  rec.features = names;
  rec.hidden = cfg.hidden;
  rec.min_particles = cfg.min_particles;
  rec.feature_mesh = cfg.feature_mesh;
  rec.box = ref.box;
  rec.particle_mass = ref.particle_mass;
  rec.a = ref.a;
  rec.omega_m = ref.omega_m;
  rec.fof_b = cfg.b;
  rec.fof_min_particles = cfg.fof_min_particles;
  // Normalisation and the mass offset from the training groups.
  std::vector<double> sum(nf, 0.0), sum2(nf, 0.0);
  double count = 0, present = 0, lm = 0, mass_sum = 0;
  for (const auto& s : train) {
    for (std::size_t g = 0; g < s.size(); ++g) {
      for (std::size_t f = 0; f < nf; ++f) {
        const double x = s.features[g * nf + f];
        sum[f] += x;
        sum2[f] += x * x;
      }
      present += s.present[g];
      lm += s.present[g] * s.log_mass[g];
      mass_sum += s.present[g] * std::exp(static_cast<double>(s.log_mass[g]));
    }
    count += static_cast<double>(s.size());
  }
  if (present < 1)
    throw std::runtime_error("training data: no cheap group has a truth counterpart");
  for (std::size_t f = 0; f < nf; ++f) {
    const double m = sum[f] / count, v = sum2[f] / count - m * m;
    rec.feature_mean.push_back(m);
    rec.feature_std.push_back(v > 1e-24 ? std::sqrt(v) : 1.0);
  }
  rec.log_mass_offset = lm / present;
  const nlohmann::json position_rms =
      cfg.position_correction ? fitPositionCorrection(train, val, rec) : nlohmann::json();
  // Tensors: this rank's share of the training groups (every nranks-th), all validation groups.
  auto tensors = [&](const std::vector<GroupSet>& sets, bool share, torch::Tensor& x,
                     torch::Tensor& p, torch::Tensor& l) {
    std::vector<float> xs, ps, ls;
    std::size_t k = 0;
    for (const auto& s : sets)
      for (std::size_t g = 0; g < s.size(); ++g, ++k) {
        if (share && static_cast<int>(k % nranks) != rank)
          continue;
        for (std::size_t f = 0; f < nf; ++f)
          xs.push_back(static_cast<float>((s.features[g * nf + f] - rec.feature_mean[f]) /
                                          rec.feature_std[f]));
        ps.push_back(s.present[g]);
        ls.push_back(s.log_mass[g] - static_cast<float>(rec.log_mass_offset));
      }
    const long n = static_cast<long>(ps.size());
    x = torch::tensor(xs).reshape({n, static_cast<long>(nf)});
    p = torch::tensor(ps);
    l = torch::tensor(ls);
  };
  torch::Tensor xt, pt, lt, xv, pv, lv;
  tensors(train, true, xt, pt, lt);
  tensors(val, false, xv, pv, lv);
  double val_present = pv.sum().item<double>();
  if (val_present < 1)
    throw std::runtime_error("validation data: no cheap group has a truth counterpart");
  const double field_scale = std::exp(rec.log_mass_offset) / (mass_sum / present);
  auto loss = [&](const torch::Tensor& o, const torch::Tensor& p, const torch::Tensor& l, double n,
                  double npresent) {
    return groupTrainingLoss(o, p, l, n, npresent, cfg.field_weight, field_scale);
  };

  torch::manual_seed(t.seed); // the same initial weights on every rank
  GroupMlp net(static_cast<int>(nf), cfg.hidden);
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(t.learning_rate));
  std::ostringstream h;
  h << "halo_groups;" << commonConfigText(t) << ";" << cfg.feature_mesh << "," << cfg.b << ","
    << cfg.fof_min_particles << "," << cfg.min_particles << "," << cfg.mass_target << ","
    << cfg.field_weight;
  for (double r : cfg.radii)
    h << "," << r;
  for (int w : cfg.hidden)
    h << "," << w;
  for (const auto* set : {&cfg.train, &cfg.validation})
    for (const auto& p : *set)
      h << p.snapshot << ";" << p.truth << "|";
  const std::int64_t hash =
      static_cast<std::int64_t>(std::hash<std::string>()(h.str()) & 0x7fffffffffffffffULL);
  const std::string dir = t.directory, ckpt = dir + "/checkpoint.pt";
  TrainingResult result;
  const int start = startOrResume(t, comm, ckpt, *net, opt, hash, result.curve);
  auto save = [&](int step) {
    if (rank == 0) {
      saveCheckpoint(ckpt, *net, opt, step, hash, result.curve);
      writeLossCurve(dir, result.curve,
                     "caustic train (halo_groups): presence cross-entropy + mean squared ln M "
                     "error of the present groups" +
                         std::string(cfg.field_weight > 0
                                         ? " + field_weight x the expected masses' squared error"
                                         : ""),
                     "caustic train: loss", "loss", "validation");
    }
    mpiCheck(MPI_Barrier(comm), "training: checkpoint");
  };
  const double ntrain = count;
  auto batchLoss = [&](int) {
    // Every rank's share summed over ranks is the full-batch loss (optimise averages).
    return loss(net->forward(xt), pt, lt, ntrain, present) * static_cast<double>(nranks);
  };
  auto validate = [&]() {
    torch::NoGradGuard ng;
    net->eval();
    const double v =
        loss(net->forward(xv), pv, lv, static_cast<double>(pv.size(0)), val_present).item<double>();
    net->train();
    return v;
  };
  result.steps_done =
      optimise(t, comm, *net, opt, start, result.curve, batchLoss, validate, save, progress);
  if (result.steps_done < t.steps)
    return result;
  // Validation figures for the record.
  {
    torch::NoGradGuard ng;
    net->eval();
    const auto o = net->forward(xv);
    const auto p = torch::sigmoid(o.select(1, 0)), mu = o.select(1, 1);
    rec.log_mass_scatter = std::sqrt((pv * (mu - lv).pow(2)).sum().item<double>() / val_present);
    const double lnmin = std::log(cfg.min_particles * ref.particle_mass) - rec.log_mass_offset;
    const auto sel = (p >= rec.presence_threshold).logical_and(mu >= lnmin);
    std::size_t truth_above = 0;
    for (const auto& s : val)
      truth_above += s.truth_above;
    rec.training = {
        {"source", t.source},
        {"steps", t.steps},
        {"learning_rate", t.learning_rate},
        {"seed", t.seed},
        {"train", nlohmann::json::array()},
        {"validation", nlohmann::json::array()},
        {"train_groups", count},
        {"train_present", present},
        {"mass_target", cfg.mass_target},
        {"field_weight", cfg.field_weight},
        {"validation_loss", result.curve.back().validation},
        {"validation_presence_accuracy",
         ((p >= 0.5).to(torch::kFloat32) == pv).to(torch::kFloat64).mean().item<double>()},
        {"validation_halos_selected", sel.sum().item<double>()},
        {"validation_truth_halos_above_min_particles", truth_above}};
    if (!position_rms.is_null())
      rec.training["validation_position_rms_per_axis"] = position_rms;
    for (const auto& q : cfg.train)
      rec.training["train"].push_back({{"snapshot", q.snapshot}, {"truth", q.truth}});
    for (const auto& q : cfg.validation)
      rec.training["validation"].push_back({{"snapshot", q.snapshot}, {"truth", q.truth}});
  }
  net->exportTo(rec);
  result.model_path = dir + "/model.json";
  if (rank == 0)
    writeTextFile(result.model_path, rec.toJson().dump(1) + "\n");
  mpiCheck(MPI_Barrier(comm), "training: model");
  result.finished = true;
  return result;
}

} // namespace caustic
