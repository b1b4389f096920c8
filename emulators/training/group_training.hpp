#pragma once
// `caustic train` with [model] kind = "halo_groups": the per-group halo surrogate
// (emulators/runtime/group_surrogate.hpp) trained on pairs of a cheap run's snapshot and the
// high-force-resolution FoF catalogue of the same white noise, both with member IDs:
//
//   [data]     train = [{snapshot = "cheap_501/snapshot_a1.0000.hdf5",
//                        truth = "truth_501/halos_a1p0000.0.hdf5"}, ...]
//              validation = [...]                   # held out, required; paths relative to
//                                                   # this file
//   [model]    kind = "halo_groups", radii = [1.0, 2.0, 4.0, 8.0] (Mpc/h), hidden = [32, 32],
//              feature_mesh (the production run's PM mesh, required), b = 0.2 and
//              fof_min_particles = 10 (the cheap run's FoF, which the hook repeats),
//              min_particles (the catalogue's smallest halo, in particles; required)
//   [training] steps, learning_rate, lr_min, schedule, warmup, seed, validate_every,
//              checkpoint_every
//   [output]   directory
//
// Per pair: the snapshot is read and FoF run on it (b, fof_min_particles, member IDs), the
// features of its groups computed on a feature_mesh^3 mesh (groupFeatures), and each group
// matched to the truth by its members (matchGroups). Targets, by model.mass_target:
//   "matched" (default)  present: a mutual match; ln M of the matched truth group (one halo per
//                        group: what a catalogue needs);
//   "assigned"           present: some truth halo of at least min_particles has this group as
//                        its best partner (most shared members); ln M of the summed mass of all
//                        such truth halos (where the cheap run merged two halos, both: what the
//                        expected halo-mass field needs).
// The position correction is fitted on the mutual matches either way. Loss (full batch, data
// parallel over ranks): groupTrainingLoss below, with model.field_weight (default 0). Writes
// DIR/model.json (the record with its weights), loss.csv, loss.svg, checkpoint.pt.
#include "emulators/training/training.hpp"

#include <mpi.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace caustic {

struct GroupTrainingConfig {
  struct Pair {
    std::string snapshot, truth;
  };
  std::vector<Pair> train, validation;
  std::vector<double> radii = {1.0, 2.0, 4.0, 8.0};
  std::vector<int> hidden = {32, 32};
  int feature_mesh = 0;
  double b = 0.2;
  int fof_min_particles = 10;
  int min_particles = 0;
  bool position_correction = true; // fit the centres' linear correction (GroupSurrogateRecord)
  std::string mass_target = "matched"; // "matched" or "assigned" (above)
  double field_weight = 0;             // the expected-field term of groupTrainingLoss
  TrainingConfig common; // steps, learning rate schedule, seed, validation/checkpoint cadence,
                         // directory, resume, stop_after
};

// Throws ParamError naming the key, its value and what is allowed.
GroupTrainingConfig loadGroupTrainingConfig(const std::string& path,
                                            const std::vector<std::string>& overrides);

// For each group of A (members A_members[A_offset[g] .. + A_count[g]]), the index of the group of
// B it matches, or -1: B's group b sharing the most members with a (ties: the smaller index) such
// that a is also the group of A sharing the most members with b (mutual best match). With
// b_best, also each group of B's best partner in A (the most shared members, ties: the smaller
// index; -1 when it shares none).
std::vector<long>
matchGroups(const std::vector<std::uint64_t>& a_offset, const std::vector<std::uint64_t>& a_count,
            const std::vector<std::uint64_t>& a_members, const std::vector<std::uint64_t>& b_offset,
            const std::vector<std::uint64_t>& b_count, const std::vector<std::uint64_t>& b_members,
            std::vector<long>* b_best = nullptr);

// The per-group surrogate's loss for outputs o ([n, 2]: presence logit, mu = ln M - offset) and
// targets p (1 present, 0 not) and l (ln M - offset, any value where p = 0), with the sums divided
// by the full batch's n_total groups and present_total present groups (a rank's share of the
// loss, so the shares add up over ranks):
//   sum_g BCE(o_g0, p_g) / n_total + sum_g p_g (o_g1 - l_g)^2 / present_total
//   + field_weight sum_g [field_scale (sigmoid(o_g0) exp(o_g1) - p_g exp(l_g))]^2 / n_total.
// With field_scale = exp(offset) / <M> (<M> the present groups' mean target mass) the last term is
// the mean squared error of each group's expected halo mass in units of <M>: the white-noise
// (k -> 0) error power of the expected halo-mass field, dominated by the massive groups that a
// ln M error weighs no more than the smallest.
torch::Tensor groupTrainingLoss(const torch::Tensor& o, const torch::Tensor& p,
                                const torch::Tensor& l, double n_total, double present_total,
                                double field_weight, double field_scale);

// Collective over `comm`; files written by rank 0. Throws std::invalid_argument (configuration)
// or std::runtime_error (data).
TrainingResult trainGroupSurrogate(const GroupTrainingConfig& cfg, MPI_Comm comm,
                                   const std::function<void(const TrainingProgress&)>& progress);

} // namespace caustic
