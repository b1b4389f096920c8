#pragma once
// Training of field-to-field emulators (a 3D U-Net) on paired HDF5 fields: `caustic train`.
//
// Every rank holds the (small) training set, draws its own random periodic crops with one of
// the 48 symmetries of the cube each, and the gradients are averaged over ranks (data
// parallel): the effective batch is batch x ranks. Channels are normalised by the training
// set's mean and std (vector components *_x|y|z of one base name share a zero mean and one
// std, and are permuted and sign-flipped with the axes by the augmentation). Crops and
// symmetries are drawn from a generator keyed on (seed, step, rank, sample), so a run resumed
// from a checkpoint repeats the uninterrupted run step for step.
//
// Outputs in `directory`: model.pt (weights, torch::save) + model.json (metadata: channels and
// normalisation, architecture, receptive field, stride, training cell size, box, redshift and
// Omega_m ranges of the data, provenance), loss.csv (step, train loss, validation loss,
// learning rate, seconds), loss.svg, checkpoint.pt (every checkpoint_every steps and at the
// end; written to a temporary name and renamed).
#include "emulators/runtime/model.hpp"
#include "emulators/runtime/unet.hpp"

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace caustic {

struct TrainingPair {
  TrainingPair() = default;
  TrainingPair(std::vector<std::string> in, std::vector<std::string> out,
               std::vector<double> cond = {})
      : inputs(std::move(in)), targets(std::move(out)), conditioning(std::move(cond)) {}
  std::vector<std::string> inputs, targets; // "file.hdf5:Fields/name", one per channel
  std::vector<double> conditioning;         // one value per TrainingConfig::conditioning name
  // Particle super-resolution (kind "particle_super_resolution"): the low- and high-resolution
  // snapshots of one white noise (inputs and targets stay empty).
  std::string lr, hr;
};

struct TrainingConfig {
  std::vector<TrainingPair> train, validation;
  std::vector<std::string> input_names, output_names; // default: the datasets' base names
  std::string kind; // default: "halo_surrogate" with the halo loss, else "emulator"
  // Channel transforms by channel name ("log", "log1p"; others "none"), with one argument floor;
  // residual outputs by output name -> input name (metadata.hpp).
  std::map<std::string, std::string> transforms, residual_of;
  double floor = 1e-3;                   // default argument floor
  std::map<std::string, double> floors; // per channel (e.g. a pressure in keV/cm^3: 1e-14)
  // Scalar settings the model is conditioned on (e.g. "baryons.log10_mc"): every pair gives
  // their values; they enter as constant channels after the field channels.
  std::vector<std::string> conditioning;
  // Loss weighting: "" (plain MSE of the normalised outputs) or an input channel with a log or
  // log1p transform whose physical value weighs each voxel (1 + delta: mass weighting).
  std::string weight;
  // "mse", or "halo" (a halo surrogate: the two targets are the number of halos and their total
  // mass [Msun/h] per voxel; the outputs are the presence probability, trained with a focal loss
  // (Lin et al. 2017: alpha_t (1 - p_t)^gamma BCE, summed and divided by the number of occupied
  // voxels), and ln of the halo mass on the occupied voxels (squared error, times mass_weight).
  // After training, a Platt calibration of the presence (sigmoid(a z + b), fitted on the
  // validation pairs) becomes that channel's std and mean, and the rms scatter of ln M there the
  // record's log_mass_scatter.
  std::string loss = "mse";
  double focal_gamma = 2.0, focal_alpha = 0.5, mass_weight = 1.0;
  double linking_length = 0.2; // the truth's FoF b, for the record (halo loss)
  // Particle super-resolution (superres_training.hpp): particles per side of the high-resolution
  // run over the low-resolution one, the weight of the Eulerian density term of the loss and
  // that of its power-spectrum term.
  int factor = 2;
  double density_weight = 1.0, power_weight = 1.0;
  int depth = 2, width = 16; // U-Net
  int steps = 1000;
  int batch = 4; // crops per rank and step
  int crop = 32; // cells per side, a multiple of 2^depth, at most the smallest field
  double learning_rate = 1e-3, lr_min = 1e-5;
  std::string schedule = "cosine"; // cosine | constant (after a linear warm-up)
  int warmup = 0;                  // steps
  std::uint64_t seed = 1;
  bool augment = true;     // the 48 symmetries of the cube
  int loss_margin = -1;    // cells left out of the loss at crop faces; -1: 0 when the crop is
                           // the whole periodic field, else min(receptive field, crop / 4)
  int validate_every = 50; // steps
  int checkpoint_every = 100;
  int validation_crops = 4; // fixed crops per validation pair (crop < field)
  std::string directory = "output/train";
  bool resume = false;
  int stop_after = -1; // stop (after a checkpoint) once this step is done; -1: never
  std::string source;  // the configuration file, for the provenance record
};

struct LossRecord {
  int step = 0;
  double train = 0.0, validation = 0.0; // validation NaN when not evaluated at this step
  double lr = 0.0, seconds = 0.0;
};

// Writes dir/loss.csv (step, training and validation loss, learning rate, seconds; an empty
// field where a loss was not evaluated) under the comment line `description`, and dir/loss.svg
// (log y axis) with `title`, `ylabel` and the validation series labelled `validation_label`.
void writeLossCurve(const std::string& dir, const std::vector<LossRecord>& curve,
                    const std::string& description, const std::string& title,
                    const std::string& ylabel, const std::string& validation_label);

struct TrainingResult {
  std::vector<LossRecord> curve; // the whole curve, including the part before a resume
  int steps_done = 0;
  bool finished = false; // all steps done and the model written
  std::string model_path;
};

struct TrainingProgress {
  int step, steps;
  double train_loss, validation_loss, lr, eta_seconds;
};

// Throws std::invalid_argument (bad configuration) or std::runtime_error (data, files).
// Collective over `comm`; files are written by rank 0.
TrainingResult trainModel(const TrainingConfig& cfg, MPI_Comm comm,
                          const std::function<void(const TrainingProgress&)>& progress = {});

} // namespace caustic
