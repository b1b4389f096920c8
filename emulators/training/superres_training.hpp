#pragma once
// Training of particle super-resolution models (issue 16; the approach of Li et al. 2021,
// map2map): `caustic train` with model.kind = "particle_super_resolution".
//
// Data: pairs of snapshots of one white noise, a low-resolution (LR) run with N^3 particles and
// a high-resolution (HR) run with (f N)^3, the HR lattice with the LR run's lattice offset (so
// HR site f i is LR site i). Each snapshot becomes its Lagrangian fields on its lattice:
// displacement_x|y|z (x - q, nearest image [Mpc/h]) and momentum_x|y|z [H0 Mpc/h].
//
// Model: a U-Net on the LR lattice, 6 channels in, 6 f^3 out: for every LR site and offset o in
// [0, f)^3 the HR particle at site f i + o (sub-pixel convolution, "<channel>@<o>" outputs of
// metadata.hpp), each the LR value at i plus the network's residual. The inputs are normalised
// by the training set's rms displacement and momentum, the residuals by theirs.
//
// Loss on each crop (its loss_margin left out): the mean squared error of the normalised
// residuals, plus density_weight times the squared difference of the CIC-painted Eulerian
// densities of the interior's HR particles, predicted and true, on the HR lattice's cells,
// divided by the true density's variance there, plus power_weight times the mean over |k| shells
// of the squared log ratio of the two densities' power (summed over the batch; shells up to half
// the HR particle Nyquist frequency). Squared errors
// alone smooth the small scales (the prediction regresses to the mean); the power term asks for
// the truth's small-scale power whatever its phases. The crop-mean true displacement is taken
// out of both before painting.
//
// Augmentation: the 48 symmetries of the cube act on the LR crop as for field emulators; the HR
// crop is cut so that it maps to the same reflected frame (origin f o - (f - 1) on a flipped
// axis), then rearranged into the 6 f^3 channels.
#include "emulators/training/training.hpp"
#include "emulators/training/training_common.hpp"

#include <torch/torch.h>

#include <mpi.h>

#include <array>
#include <functional>
#include <utility>
#include <string>

namespace caustic {

struct LagrangianSnapshot {
  int n = 0;                                          // particles per side
  double box = 0, a = 0, offset = 0, omega_m = 0;     // [Mpc/h], scale factor, lattice offset
  double particle_mass = 0;                           // [1e10 Msun/h]
  torch::Tensor fields; // (6, n, n, n) float32: displacement_x|y|z, momentum_x|y|z
};

// Reads a Caustic snapshot (every particle, on this process alone) into its Lagrangian fields.
// Throws std::runtime_error naming the file when it is not a full N^3 lattice.
LagrangianSnapshot readLagrangianSnapshot(const std::string& path);

// (C, f c, f c, f c) -> (C f^3, c, c, c): channel (C_i f + ox) f^2 + oy f + oz holds the value at
// (f a + ox, f b + oy, f d + oz); and its inverse.
torch::Tensor pixelUnshuffle3d(const torch::Tensor& t, int f);
torch::Tensor pixelShuffle3d(const torch::Tensor& t, int f);

// The crop of a pair under symmetry k (training_common.hpp) at LR origin o: the LR fields
// (C, n, n, n) -> (C, c, c, c), the HR fields (C, f n, ...) -> (C, f c, ...), such that HR site
// f a of the result is LR site a of the result in any symmetry (the HR crop of a flipped axis
// starts f - 1 sites earlier).
std::pair<torch::Tensor, torch::Tensor>
superResolutionCrop(const torch::Tensor& lr, const torch::Tensor& hr, int f, int c,
                    const std::array<int, 3>& o, int k, const training::ChannelLayout& layout);

// CIC density (counts per cell) of points at `pos` (N, 3) [cell units] on a periodic grid of side
// g: differentiable with respect to pos.
torch::Tensor paintCic(const torch::Tensor& pos, int g);

// Trains and writes model.pt / model.json / loss.csv / loss.svg / checkpoint.pt as trainModel
// does. Called by trainModel for kind "particle_super_resolution". Collective over `comm`.
TrainingResult trainSuperResolution(const TrainingConfig& cfg, MPI_Comm comm,
                                    const std::function<void(const TrainingProgress&)>& progress);

} // namespace caustic
