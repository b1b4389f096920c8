#pragma once
// The per-group halo surrogate (issue 18): a small network that, for every FoF group of a cheap
// run, predicts from the group's features (pm/analysis/group_features.hpp) whether the group is
// the counterpart of a high-force-resolution halo and, if so, that halo's ln M. The cheap run's
// groups sit within about 0.2 Mpc/h of their truth counterparts, so the surrogate keeps their
// positions and velocities and corrects what the cheap run gets wrong: which groups are halos and
// their masses (a 10-step run's halos are under-collapsed, most at high redshift), and, linearly
// in the group's mean momentum and displacement, where their centres sit.
//
// Network: features normalised by the training set's mean and std -> Linear(F, W_1) -> SiLU ->
// ... -> Linear(W_n, 2): output 0 is the logit of the presence probability p, output 1 plus the
// record's log_mass_offset is mu = E[ln M | present] (M in Msun/h).
//
// File: one JSON record (model.json) holding the settings below and the weights, layer by layer
// ("layers": [{"weight": [[...] x out] , "bias": [...]}, ...], as torch.nn.Linear stores them), so
// a network built in PyTorch runs here once its weights are written in this form.
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace caustic {

struct GroupSurrogateRecord {
  std::vector<double> radii;         // smoothing radii of the density features [Mpc/h]
  std::vector<std::string> features; // names, as groupFeatureNames(radii)
  std::vector<double> feature_mean, feature_std;
  std::vector<int> hidden = {32, 32}; // hidden layer widths
  double log_mass_offset = 0.0;       // added to output 1
  double log_mass_scatter = 0.0;      // rms of ln M - mu on the validation groups
  // The catalogue: groups with p >= presence_threshold and mu >= ln(min_particles m_p), m_p the
  // run's particle mass [Msun/h].
  double presence_threshold = 0.5;
  int min_particles = 0;
  // The training domain, which the validity guard enforces: the features' mesh (the run's PM
  // mesh) and box, the particle mass [Msun/h], the scale factor, the cheap groups' FoF settings.
  int feature_mesh = 0;
  double box = 0.0, particle_mass = 0.0, a = 0.0, omega_m = 0.0;
  double fof_b = 0.2;
  int fof_min_particles = 20;
  // Position correction: a group's centre moves by sum_j position_coefficients[j] u_j, u_j the
  // vectors named in position_vectors (groupVectorNames: momentum, displacement;
  // pm/analysis/group_features.hpp), the coefficients a least-squares fit of
  // the truth counterparts' offsets. Empty: centres are kept.
  std::vector<std::string> position_vectors;
  std::vector<double> position_coefficients;
  nlohmann::json training; // provenance and validation figures
  // Weights per Linear layer: weight (out x in, row-major) and bias (out).
  std::vector<std::vector<double>> weight, bias;
  nlohmann::json toJson() const;
  // Throws std::invalid_argument naming `where` and the bad key.
  static GroupSurrogateRecord fromJson(const nlohmann::json& j, const std::string& where);
};

// Whether `path` is a JSON file holding a per-group halo surrogate ("kind": "halo_groups").
bool isGroupSurrogateFile(const std::string& path);

class GroupMlpImpl : public torch::nn::Module {
public:
  GroupMlpImpl(int features, const std::vector<int>& hidden);
  torch::Tensor forward(torch::Tensor x); // (n, features) -> (n, 2)
  // The weights to and from a record's layers (double, row-major).
  void exportTo(GroupSurrogateRecord& r) const;
  void importFrom(const GroupSurrogateRecord& r);

private:
  std::vector<torch::nn::Linear> _layers;
};
TORCH_MODULE(GroupMlp);

struct GroupPrediction {
  std::vector<double> presence; // p per group
  std::vector<double> log_mass; // mu per group
};

class GroupSurrogate {
public:
  // Throws std::invalid_argument when the weights do not fit the features and hidden widths.
  explicit GroupSurrogate(GroupSurrogateRecord record);
  // Reads a record file. Throws std::runtime_error naming the file and what is wrong.
  static GroupSurrogate load(const std::string& path);
  const GroupSurrogateRecord& record() const { return _record; }
  // Features row-major [group][feature] in the record's order (raw, not normalised).
  GroupPrediction predict(const std::vector<double>& features) const;
  // The position correction of every group from its vectors ([group][vector][axis]), 3 per
  // group [Mpc/h]; zeros for a record without one.
  std::vector<double> positionShift(const std::vector<double>& vectors) const;

private:
  GroupSurrogateRecord _record;
  mutable GroupMlp _net;
};

} // namespace caustic
