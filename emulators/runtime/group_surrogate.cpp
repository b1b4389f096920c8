#include "emulators/runtime/group_surrogate.hpp"

#include "pm/analysis/group_features.hpp"

#include <cmath>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace caustic {

namespace {
constexpr const char* kFormat = "caustic-halo-groups-1";

template <class T> T get(const nlohmann::json& j, const char* key, const std::string& where) {
  if (!j.contains(key))
    throw std::invalid_argument(where + ": missing \"" + key + "\"");
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(where + ": \"" + key + "\" = " + j.at(key).dump() +
                                " has the wrong type (" + e.what() + ")");
  }
}

void require(bool ok, const std::string& where, const std::string& key, const std::string& value,
             const std::string& allowed) {
  if (!ok)
    throw std::invalid_argument(where + ": \"" + key + "\" = " + value + "; expected " + allowed);
}
} // namespace

nlohmann::json GroupSurrogateRecord::toJson() const {
  nlohmann::json j;
  j["format"] = kFormat;
  j["kind"] = "halo_groups";
  j["radii"] = radii;
  j["features"] = features;
  j["feature_mean"] = feature_mean;
  j["feature_std"] = feature_std;
  j["hidden"] = hidden;
  j["log_mass_offset"] = log_mass_offset;
  j["log_mass_scatter"] = log_mass_scatter;
  j["presence_threshold"] = presence_threshold;
  j["min_particles"] = min_particles;
  j["feature_mesh"] = feature_mesh;
  j["box"] = box;
  j["particle_mass"] = particle_mass;
  j["a"] = a;
  j["omega_m"] = omega_m;
  j["fof"] = {{"b", fof_b}, {"min_particles", fof_min_particles}};
  if (!position_coefficients.empty()) {
    j["position_vectors"] = position_vectors;
    j["position_coefficients"] = position_coefficients;
  }
  j["training"] = training;
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t l = 0; l < weight.size(); ++l) {
    // Rows of `in` weights, one row per output (torch.nn.Linear's weight).
    const std::size_t out = bias[l].size(), in = out ? weight[l].size() / out : 0;
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t o = 0; o < out; ++o)
      rows.push_back(
          std::vector<double>(weight[l].begin() + o * in, weight[l].begin() + (o + 1) * in));
    layers.push_back({{"weight", rows}, {"bias", bias[l]}});
  }
  j["layers"] = layers;
  return j;
}

GroupSurrogateRecord GroupSurrogateRecord::fromJson(const nlohmann::json& j,
                                                    const std::string& where) {
  if (!j.is_object())
    throw std::invalid_argument(where + ": expected a JSON object");
  const auto format = get<std::string>(j, "format", where);
  require(format == kFormat, where, "format", "\"" + format + "\"",
          std::string("\"") + kFormat + "\"");
  const auto kind = get<std::string>(j, "kind", where);
  require(kind == "halo_groups", where, "kind", "\"" + kind + "\"", "\"halo_groups\"");
  GroupSurrogateRecord r;
  r.radii = get<std::vector<double>>(j, "radii", where);
  r.features = get<std::vector<std::string>>(j, "features", where);
  r.feature_mean = get<std::vector<double>>(j, "feature_mean", where);
  r.feature_std = get<std::vector<double>>(j, "feature_std", where);
  r.hidden = get<std::vector<int>>(j, "hidden", where);
  r.log_mass_offset = get<double>(j, "log_mass_offset", where);
  r.log_mass_scatter = get<double>(j, "log_mass_scatter", where);
  r.presence_threshold = get<double>(j, "presence_threshold", where);
  r.min_particles = get<int>(j, "min_particles", where);
  r.feature_mesh = get<int>(j, "feature_mesh", where);
  r.box = get<double>(j, "box", where);
  r.particle_mass = get<double>(j, "particle_mass", where);
  r.a = get<double>(j, "a", where);
  r.omega_m = get<double>(j, "omega_m", where);
  const auto fof = get<nlohmann::json>(j, "fof", where);
  r.fof_b = get<double>(fof, "b", where + " fof");
  r.fof_min_particles = get<int>(fof, "min_particles", where + " fof");
  r.training = j.value("training", nlohmann::json::object());
  if (j.contains("position_coefficients") || j.contains("position_vectors")) {
    r.position_vectors = get<std::vector<std::string>>(j, "position_vectors", where);
    r.position_coefficients = get<std::vector<double>>(j, "position_coefficients", where);
    std::string names;
    for (const auto& n : r.position_vectors)
      names += (names.empty() ? "" : ", ") + n;
    require(r.position_vectors == groupVectorNames(), where, "position_vectors", "[" + names + "]",
            "[momentum, displacement]");
    require(r.position_coefficients.size() == r.position_vectors.size(), where,
            "position_coefficients", std::to_string(r.position_coefficients.size()) + " values",
            std::to_string(r.position_vectors.size()) + " (one per vector)");
    for (double c : r.position_coefficients)
      require(std::isfinite(c), where, "position_coefficients", std::to_string(c),
              "finite numbers");
  }
  const std::size_t nf = r.features.size();
  require(nf == 3 + r.radii.size(), where, "features", std::to_string(nf) + " names",
          std::to_string(3 + r.radii.size()) + " (3 + one per radius)");
  require(r.feature_mean.size() == nf, where, "feature_mean",
          std::to_string(r.feature_mean.size()) + " values", std::to_string(nf));
  require(r.feature_std.size() == nf, where, "feature_std",
          std::to_string(r.feature_std.size()) + " values", std::to_string(nf));
  for (double s : r.feature_std)
    require(s > 0 && std::isfinite(s), where, "feature_std", std::to_string(s), "positive values");
  for (double x : r.radii)
    require(x > 0 && std::isfinite(x), where, "radii", std::to_string(x), "positive radii");
  for (int w : r.hidden)
    require(w >= 1 && w <= 4096, where, "hidden", std::to_string(w), "widths in [1, 4096]");
  require(r.presence_threshold > 0 && r.presence_threshold < 1, where, "presence_threshold",
          std::to_string(r.presence_threshold), "a number in (0, 1)");
  require(r.min_particles >= 1, where, "min_particles", std::to_string(r.min_particles), ">= 1");
  require(r.feature_mesh >= 2, where, "feature_mesh", std::to_string(r.feature_mesh), ">= 2");
  require(r.box > 0 && r.particle_mass > 0 && r.a > 0, where, "box, particle_mass, a",
          std::to_string(r.box) + ", " + std::to_string(r.particle_mass) + ", " +
              std::to_string(r.a),
          "positive numbers");
  require(r.log_mass_scatter >= 0, where, "log_mass_scatter", std::to_string(r.log_mass_scatter),
          ">= 0");
  const auto layers = get<nlohmann::json>(j, "layers", where);
  require(layers.is_array() && layers.size() == r.hidden.size() + 1, where, "layers",
          std::to_string(layers.is_array() ? layers.size() : 0) + " layers",
          std::to_string(r.hidden.size() + 1) + " (one per hidden width, plus the output)");
  std::size_t in = nf;
  for (std::size_t l = 0; l < layers.size(); ++l) {
    const std::string wl = where + " layer " + std::to_string(l);
    const auto w = get<std::vector<std::vector<double>>>(layers[l], "weight", wl);
    const auto b = get<std::vector<double>>(layers[l], "bias", wl);
    const std::size_t out = l < r.hidden.size() ? static_cast<std::size_t>(r.hidden[l]) : 2;
    require(w.size() == out && b.size() == out, wl, "weight/bias",
            std::to_string(w.size()) + "/" + std::to_string(b.size()) + " rows",
            std::to_string(out));
    std::vector<double> flat;
    for (const auto& row : w) {
      require(row.size() == in, wl, "weight", "a row of " + std::to_string(row.size()),
              std::to_string(in) + " columns");
      flat.insert(flat.end(), row.begin(), row.end());
    }
    for (double x : flat)
      require(std::isfinite(x), wl, "weight", "a non-finite value", "finite weights");
    for (double x : b)
      require(std::isfinite(x), wl, "bias", "a non-finite value", "finite biases");
    r.weight.push_back(flat);
    r.bias.push_back(b);
    in = out;
  }
  return r;
}

bool isGroupSurrogateFile(const std::string& path) {
  if (path.size() < 5 || path.compare(path.size() - 5, 5, ".json") != 0)
    return false;
  std::ifstream in(path);
  if (!in)
    return false;
  try {
    const auto j = nlohmann::json::parse(in);
    return j.is_object() && j.value("kind", std::string()) == "halo_groups";
  } catch (const nlohmann::json::exception&) {
    return false;
  }
}

GroupMlpImpl::GroupMlpImpl(int features, const std::vector<int>& hidden) {
  int in = features;
  for (std::size_t l = 0; l <= hidden.size(); ++l) {
    const int out = l < hidden.size() ? hidden[l] : 2;
    _layers.push_back(register_module("linear" + std::to_string(l), torch::nn::Linear(in, out)));
    in = out;
  }
}

torch::Tensor GroupMlpImpl::forward(torch::Tensor x) {
  for (std::size_t l = 0; l < _layers.size(); ++l) {
    x = _layers[l]->forward(x);
    if (l + 1 < _layers.size())
      x = torch::silu(x);
  }
  return x;
}

void GroupMlpImpl::exportTo(GroupSurrogateRecord& r) const {
  r.weight.clear();
  r.bias.clear();
  for (const auto& l : _layers) {
    const auto w = l->weight.detach().to(torch::kFloat64).contiguous();
    const auto b = l->bias.detach().to(torch::kFloat64).contiguous();
    r.weight.emplace_back(w.data_ptr<double>(), w.data_ptr<double>() + w.numel());
    r.bias.emplace_back(b.data_ptr<double>(), b.data_ptr<double>() + b.numel());
  }
}

void GroupMlpImpl::importFrom(const GroupSurrogateRecord& r) {
  if (r.weight.size() != _layers.size())
    throw std::invalid_argument("group surrogate: " + std::to_string(r.weight.size()) +
                                " weight layers for a network of " +
                                std::to_string(_layers.size()));
  torch::NoGradGuard ng;
  for (std::size_t l = 0; l < _layers.size(); ++l) {
    auto& w = _layers[l]->weight;
    auto& b = _layers[l]->bias;
    if (static_cast<std::size_t>(w.numel()) != r.weight[l].size() ||
        static_cast<std::size_t>(b.numel()) != r.bias[l].size())
      throw std::invalid_argument("group surrogate: layer " + std::to_string(l) + " has " +
                                  std::to_string(r.weight[l].size()) + " weights and " +
                                  std::to_string(r.bias[l].size()) + " biases; the network has " +
                                  std::to_string(w.numel()) + " and " + std::to_string(b.numel()));
    w.copy_(torch::tensor(r.weight[l], torch::kFloat64).reshape(w.sizes()));
    b.copy_(torch::tensor(r.bias[l], torch::kFloat64));
  }
}

GroupSurrogate::GroupSurrogate(GroupSurrogateRecord record)
    : _record(std::move(record)), _net(static_cast<int>(_record.features.size()), _record.hidden) {
  _net->importFrom(_record);
  _net->eval();
}

GroupSurrogate GroupSurrogate::load(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("halo-group surrogate " + path + ": cannot open");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("halo-group surrogate " + path + ": not JSON (" + e.what() + ")");
  }
  try {
    return GroupSurrogate(GroupSurrogateRecord::fromJson(j, "halo-group surrogate " + path));
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(e.what());
  }
}

GroupPrediction GroupSurrogate::predict(const std::vector<double>& features) const {
  const std::size_t nf = _record.features.size();
  if (features.size() % nf != 0)
    throw std::invalid_argument("group surrogate: " + std::to_string(features.size()) +
                                " feature values are not a multiple of " + std::to_string(nf));
  const std::size_t n = features.size() / nf;
  GroupPrediction p;
  p.presence.resize(n);
  p.log_mass.resize(n);
  if (n == 0)
    return p;
  std::vector<float> x(features.size());
  for (std::size_t g = 0; g < n; ++g)
    for (std::size_t f = 0; f < nf; ++f)
      x[g * nf + f] = static_cast<float>((features[g * nf + f] - _record.feature_mean[f]) /
                                         _record.feature_std[f]);
  torch::NoGradGuard ng;
  const auto out =
      _net->forward(torch::from_blob(x.data(), {static_cast<long>(n), static_cast<long>(nf)},
                                     torch::kFloat32))
          .to(torch::kFloat64)
          .contiguous();
  const double* o = out.data_ptr<double>();
  for (std::size_t g = 0; g < n; ++g) {
    p.presence[g] = 1.0 / (1.0 + std::exp(-o[2 * g]));
    p.log_mass[g] = o[2 * g + 1] + _record.log_mass_offset;
    if (!std::isfinite(p.presence[g]) || !std::isfinite(p.log_mass[g]))
      throw std::runtime_error("halo-group surrogate: a non-finite prediction for group " +
                               std::to_string(g));
  }
  return p;
}

std::vector<double> GroupSurrogate::positionShift(const std::vector<double>& vectors) const {
  const auto& c = _record.position_coefficients;
  const std::size_t per = static_cast<std::size_t>(kGroupVectors) * 3;
  if (vectors.size() % per != 0)
    throw std::invalid_argument("group surrogate: " + std::to_string(vectors.size()) +
                                " vector values are not a multiple of " + std::to_string(per));
  const std::size_t n = vectors.size() / per;
  std::vector<double> shift(3 * n, 0.0);
  if (c.empty())
    return shift;
  for (std::size_t g = 0; g < n; ++g)
    for (std::size_t j = 0; j < c.size(); ++j)
      for (int a = 0; a < 3; ++a)
        shift[3 * g + a] += c[j] * vectors[g * per + 3 * j + a];
  return shift;
}

} // namespace caustic
