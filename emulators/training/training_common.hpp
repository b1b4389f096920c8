#pragma once
// Pieces shared by the trainers of `caustic train` (field-to-field emulators: training.cpp;
// particle super-resolution: superres_training.cpp): channel layouts and the 48 symmetries of
// the cube, periodic crops, normalisation, the learning-rate schedule, keyed random streams and
// the training checkpoint.
#include "emulators/runtime/metadata.hpp"
#include "emulators/training/training.hpp"

#include <torch/torch.h>

#include <mpi.h>

#include <array>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace caustic::training {

// Component 0/1/2 of a vector channel "<base>_x|y|z", or -1 for a scalar; its base name.
int componentOf(const std::string& name);
std::string baseOf(const std::string& name);

// How the channels of one side (inputs or targets) transform under the cube's symmetries. With
// `augment`, every vector component needs its two partners (else std::invalid_argument naming
// `side` and the channel).
struct ChannelLayout {
  std::vector<int> comp;                   // component per channel, -1 for scalars
  std::vector<std::array<int, 3>> partner; // channel of the same base with component 0, 1, 2
  ChannelLayout(const std::vector<std::string>& names, bool augment, const std::string& side);
};

// The axis permutation of symmetry k in [0, 48) (new axis i is old axis permutation(k)[i]) and
// whether it flips new axis i (bit i of k % 8).
const int* symmetryPermutation(int k);
inline bool symmetryFlips(int k, int axis) { return (k % 8) & (1 << axis); }

// Symmetry k of a (C, n, n, n) tensor: axes permuted, then flipped (index i -> n - 1 - i);
// vector components permuted and negated with their axes.
torch::Tensor applySymmetry(const torch::Tensor& t, int k, const ChannelLayout& layout);

// Periodic crop of side c at origin o of a (C, n, n, n) tensor (origins may be negative).
torch::Tensor periodicCrop(const torch::Tensor& t, int c, const std::array<int, 3>& o, int n);

// Per-channel mean and std over the samples; vector components share a zero mean and one std
// (so that the symmetries map normalised fields to normalised fields). A constant channel gets
// std 1.
std::vector<Channel> normalisation(const std::vector<torch::Tensor>& data,
                                   const std::vector<std::string>& names);
// (t - mean_c) / std_c per channel of a (C, ...) tensor.
torch::Tensor normalise(const torch::Tensor& t, const std::vector<Channel>& ch);

// Linear warm-up, then cosine decay to lr_min (or constant).
double learningRate(const TrainingConfig& c, int step);

// A generator keyed on (seed, a, b, c): the same draws whatever ran before.
std::mt19937_64 keyedRng(std::uint64_t seed, std::uint64_t a, std::uint64_t b, std::uint64_t c);

// The checkpoint of a training run: network, optimiser, step, the hash of the configuration
// and the loss curve so far. save: written to a temporary name and renamed (call on one rank).
void saveCheckpoint(const std::string& path, torch::nn::Module& net, torch::optim::Optimizer& opt,
                    int step, std::int64_t config_hash, const std::vector<LossRecord>& curve);
// Restores net and opt, returns the step and fills `curve`. Throws std::invalid_argument when the
// file is missing, unreadable or made with another configuration hash.
int loadCheckpoint(const std::string& path, torch::nn::Module& net, torch::optim::Optimizer& opt,
                   std::int64_t config_hash, std::vector<LossRecord>& curve);

// Creates cfg.directory (on rank 0) and returns the step a trainer starts from: 0, or with
// cfg.resume the step of `ckpt` (net, opt and curve restored from it). Throws
// std::invalid_argument when resuming without a checkpoint or from one beyond cfg.steps, and
// when a checkpoint exists but cfg.resume is not set. Collective over `comm`.
int startOrResume(const TrainingConfig& cfg, MPI_Comm comm, const std::string& ckpt,
                  torch::nn::Module& net, torch::optim::Optimizer& opt, std::int64_t config_hash,
                  std::vector<LossRecord>& curve);

// The optimisation loop of both trainers, from step `start` + 1 to cfg.steps (or to
// cfg.stop_after): each step sets the learning rate of the schedule, takes batchLoss(step) (this
// rank's loss on its crops, with autograd), averages the gradients over the ranks, steps the
// optimiser and appends to `curve` the mean loss over the ranks, the held-out loss of validate()
// every validate_every steps and at the last, the learning rate and the seconds so far; it
// reports to `progress` (rank 0) and calls save(step) every checkpoint_every steps, at the last
// step and when stopping. Starting from step 0 it first records validate() of the initial
// weights. Returns the last step done. Throws std::runtime_error when the loss is not finite.
// Collective over `comm`.
int optimise(const TrainingConfig& cfg, MPI_Comm comm, torch::nn::Module& net,
             torch::optim::Adam& opt, int start, std::vector<LossRecord>& curve,
             const std::function<torch::Tensor(int)>& batchLoss,
             const std::function<double()>& validate, const std::function<void(int)>& save,
             const std::function<void(const TrainingProgress&)>& progress);

// The settings shared by every trainer, as text for a configuration hash (everything that shapes
// the loss curve except the data, the model-specific settings and `steps`).
std::string commonConfigText(const TrainingConfig& c);

} // namespace caustic::training
