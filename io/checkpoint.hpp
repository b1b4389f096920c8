#pragma once
// Checkpoints: everything a run needs to continue exactly where it was.
//
// <dir>/checkpoint_step00012.h5, written collectively under a temporary name and renamed when
// complete: /Header attributes Format ("caustic-checkpoint-1"), Step, StepsTotal, Time (a of
// x), KickAhead (FastPM kick factor p is ahead of a), NextTime (the step p was prepared for),
// Spacing, ParameterHash, NumRanks, NumPart_Total, Checksum; /Parameters (the run's TOML);
// /Particles/Coordinates (N, 3) [Mpc/h], /Particles/Momenta (N, 3) [FastPM p] (float64, or
// float32 for runs with simulation.particle_precision = "single": the particles' own bits),
// /Particles/ParticleIDs (N) uint64, /Particles/RankCounts (NumRanks) uint64: each rank's
// particles in memory order, so that a resume on the same number of ranks restores the very
// same arrays and repeats the uninterrupted run bit for bit. Particles with attributes
// (particles.hpp) add /Particles/Attributes/<name> (particle_attributes.hpp) and Format
// "caustic-checkpoint-2"; files without them are as before.
//
// Checksum: the sum modulo 2^64 of a 64-bit hash of every particle's (ID, x, p) bit patterns
// (then its attributes' bytes, by name); independent of the order and of the number of ranks,
// verified on every read.
#include "io/params.hpp"
#include "pm/core/comm.hpp"
#include "pm/particles/particles.hpp"
#include "pm/stepping/stepping.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace caustic {

struct CheckpointInfo {
  std::string path;
  int step = 0, steps_total = 0;
  StepperState state;
  std::string parameter_hash;
  int nranks = 0;
  std::uint64_t total_particles = 0;
};

// The checksum of this rank's particles (sum these over ranks modulo 2^64). R, here and below:
// double or float particles.
template <class R> std::uint64_t particleChecksum(const BasicParticles<R>& parts);

// Writes the checkpoint of `step` into `dir` and removes all but the newest `keep`. Returns its
// path. Collective.
template <class R>
std::string writeCheckpoint(const std::string& dir, const Comm& comm,
                            const BasicParticles<R>& parts, int step, int steps_total,
                            const StepperState& state, const Params& params, int keep);

// Checkpoint files of `dir`, newest (highest step) first.
std::vector<std::string> listCheckpoints(const std::string& dir);

// Reads and verifies a checkpoint (format, shape, checksum). With the writer's number of ranks
// every rank gets its own particles back in order; otherwise an even share (to be migrated).
// Throws std::runtime_error naming the file and the problem; ParamError when its particles are
// not stored as R (naming simulation.particle_precision). Collective.
template <class R = double>
BasicParticles<R> readCheckpoint(const std::string& path, const Comm& comm, CheckpointInfo& info);

} // namespace caustic
