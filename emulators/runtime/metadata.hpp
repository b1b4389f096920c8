#pragma once
// The JSON record that travels with every emulator model, and the validity guard that refuses
// to apply a model outside the domain it was trained on.
//
// {
//   "kind": "super_resolution",            // what the model does
//   "version": "1.0",
//   "inputs":  [{"name": "delta", "mean": 0.0, "std": 1.0}],  // channels and normalisation
//   "outputs": [{"name": "delta_hr", "mean": 0.0, "std": 1.0}],
//   "receptive_field": 6,                  // radius in cells
//   "cell_size": {"value": 2.0, "rtol": 0.02},   // training cell size [Mpc/h], relative tolerance
//   "box": [64.0, 1024.0],                 // box sizes seen in training [Mpc/h] (optional)
//   "redshift": [0.0, 3.0],                // redshift range (optional)
//   "cosmology": {"Omega_m": [0.25, 0.35], "sigma8": [0.7, 0.9]},  // parameter ranges (optional)
//   "provenance": "caustic train, 64 paired runs ...",
//   "stride": 4,                           // equivariant for shifts by multiples of this (opt.)
//   "conditioning": [{"name": "baryons.log10_mc", "mean": 13.5, "std": 0.6,
//                     "range": [12.5, 14.5]}],  // scalar settings fed as constant channels (opt.)
//   "architecture": {"type": "unet3d", ...} // native models only: the module to rebuild
// }
#include "pm/cosmology/cosmology.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace caustic {

class ValidityError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

// A field channel. The model sees (transform(x) - mean) / std. Transforms: "none"; "log":
// ln(max(x, floor)); "log1p": ln(max(1 + x, floor)) (for a density contrast); "logit":
// ln(x / (1 - x)) with x clamped to [floor, 1 - floor] (a probability: the output is
// sigmoid(mean + std y), so mean and std of a logit output are a Platt calibration). An output with
// `residual_of` = an input channel's name is the model's value plus that input's transformed
// value, before the inverse transform (e.g. ln(rho_out) = ln(rho_in) + net).
struct Channel {
  Channel() = default;
  Channel(std::string n, double m = 0.0, double s = 1.0) : name(std::move(n)), mean(m), std(s) {}
  std::string name;
  double mean = 0.0;
  double std = 1.0; // > 0
  std::string transform = "none";
  double floor = 1e-3; // > 0; argument floor of the log transforms
  std::string residual_of;
};

// Whether an output with transform `out` may be a residual of an input with transform `in`:
// both or neither logarithmic (log, log1p), and neither a logit.
bool residualTransformsAgree(const std::string& in, const std::string& out);

// Whether `t` names a channel transform; kChannelTransforms lists them for messages.
bool isChannelTransform(const std::string& t);
inline constexpr const char* kChannelTransforms = "none, log, log1p, logit";

// A scalar the model is conditioned on (a setting of the run such as "baryons.log10_mc", read
// from the run's parameters), fed as a constant channel (value - mean) / std after the field
// channels; the model is valid for values in [lo, hi] (the training design's range).
struct Conditioning {
  std::string name;
  double mean = 0.0, std = 1.0;
  double lo = 0.0, hi = 0.0;
};

// A halo surrogate (kind "halo_surrogate"): which outputs are the per-voxel probability that a
// halo of at least `min_mass` sits in the voxel (a logit channel) and the mass of that halo
// (a log channel: exp of the conditional mean of ln M), the rms scatter of ln M about that mean
// on the validation pairs (the sampler draws ln M from a normal of that width, truncated at
// ln min_mass), and the halo definition of the truth (FoF linking length b).
//   "halo": {"presence": "halo_presence", "mass": "halo_mass", "log_mass_scatter": 0.3,
//            "min_mass": 4.6e12, "linking_length": 0.2, "number_density": 1e-3}
struct HaloSurrogateInfo {
  std::string presence, mass;
  double log_mass_scatter = 0.0; // >= 0, in ln M
  double min_mass = 0.0;         // > 0 [Msun/h]
  double linking_length = 0.2;
  double number_density = 0.0; // of the training truth [(h/Mpc)^3], for the record
  // A model taking the fof_count input: the FoF b and smallest group of the training data's
  // groups, which the run's [halos] b and min_particles must match (0: not recorded).
  double input_fof_b = 0.0;
  int input_fof_min_particles = 0;
};

// A particle super-resolution model (kind "particle_super_resolution", issue 16): applied on the
// N^3 Lagrangian lattice of a run to its displacement and momentum channels, it gives the
// displacement and momentum of the (factor N)^3 particles of a run with factor^3 times more
// particles from the same white noise. Its output "<channel>@<o>" (superResolutionOutput) is
// `channel` (displacement_x|y|z [Mpc/h], momentum_x|y|z [H0 Mpc/h]) of the high-resolution
// particle at lattice site factor * (i, j, k) + (ox, oy, oz), for every offset o in
// [0, factor)^3: 6 factor^3 outputs. That particle's Lagrangian position is
// (factor * (i, j, k) + o) L / (factor N) + the run's lattice offset.
//   "super_resolution": {"factor": 2}
struct SuperResolutionInfo {
  int factor = 2;
};
// The names of the six channels a super-resolution model predicts per particle.
const std::vector<std::string>& superResolutionChannels();
// "<channel>@<ox><oy><oz>" (offsets as decimal digits, factor <= 10).
std::string superResolutionOutput(const std::string& channel, int ox, int oy, int oz);

struct ModelMetadata {
  std::string kind;
  std::string version;
  std::vector<Channel> inputs, outputs;
  int receptive_field = 0; // cells
  double cell_size = 0.0;  // Mpc/h
  double cell_size_rtol = 0.02;
  std::optional<std::pair<double, double>> box, redshift;
  std::vector<std::pair<std::string, std::pair<double, double>>> cosmology;
  std::string provenance;
  // Translation equivariance holds for shifts that are multiples of `stride` cells (2^depth for
  // a U-Net); fields and tiles must be aligned to it.
  int stride = 1;
  std::vector<Conditioning> conditioning;
  // Native models saved by `caustic train`: how to rebuild the module before loading its
  // weights ({"type": "unet3d", ...}); null for TorchScript models.
  nlohmann::json architecture;
  std::optional<HaloSurrogateInfo> halo; // halo surrogates only
  std::optional<SuperResolutionInfo> super_resolution; // particle super-resolution only

  // Index of the output channel `name`, -1 if none.
  int outputIndex(const std::string& name) const;

  // Parses and checks the record; `where` names its source in error messages.
  static ModelMetadata fromJson(const nlohmann::json& j, const std::string& where);
  static ModelMetadata fromFile(const std::string& path);
  nlohmann::json toJson() const;
};

// Where and how a model is about to be applied.
struct ApplicationDomain {
  double cell_size = 0.0; // Mpc/h
  double box = 0.0;       // Mpc/h
  double redshift = 0.0;
  CosmologyParams cosmology;
  std::vector<std::string> input_channels;
  // Values of the settings the model is conditioned on, by name (absent: not set by the run).
  std::vector<std::pair<std::string, double>> conditioning;
  // The run's FoF settings ([halos] b and min_particles), which the fof_count input uses.
  double fof_b = 0.0;
  int fof_min_particles = 0;
};

// Every way in which `domain` lies outside the model's declared domain (empty: valid).
std::vector<std::string> validityViolations(const ModelMetadata& meta,
                                            const ApplicationDomain& domain);

// Throws ValidityError listing the violations unless `force`; with `force` returns them as
// warnings for the log and the output metadata.
std::vector<std::string> enforceValidity(const ModelMetadata& meta, const ApplicationDomain& domain,
                                         bool force, const std::string& model_name);

} // namespace caustic
