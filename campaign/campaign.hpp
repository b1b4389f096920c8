#pragma once
// Campaigns: many runs of one parameter file with parameters drawn from a design.
//
// Campaign file (TOML):
//   [campaign]
//   base = "default.toml"        # parameter file of every member (relative to this file)
//   members = 16
//   design = "lhs"               # lhs (Latin hypercube, seeded) | sobol (unscrambled, <= 10 dims)
//   seed = 1                     # design seed (lhs)
//   vary_seed = true             # simulation.seed = base seed + member index
//   directory = "output/campaign" # relative to the working directory
//   ranks = 2                    # MPI ranks per member
//   checkpoint_every = 5         # steps (0: only on signals)
//
//   [campaign.slurm]             # the array job script
//   time = "00:30:00"
//   partition = ""
//   account = ""
//   max_parallel = 0             # members running at once (0: no limit)
//
//   [parameters]                 # ranges of any numeric parameters
//   "cosmology.Omega_m" = [0.25, 0.35]
//
// `caustic campaign make` writes <directory>/members/NNNN/params.toml (each validated as a run
// would), manifest.json (the design: every member's values, parameter file, output directory)
// and campaign.sbatch (a SLURM array job; each member resumes from its checkpoint if it has
// one). Members record their state in <member>/status: running, done, failed <exit code>.
#include "io/params.hpp"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace caustic {

struct CampaignConfig {
  std::string source, base_file, directory;
  int members = 0, ranks = 1, checkpoint_every = 0;
  std::string design = "lhs";
  std::uint64_t seed = 1;
  bool vary_seed = true;
  std::string slurm_time = "00:30:00", slurm_partition, slurm_account;
  int slurm_max_parallel = 0;
  std::vector<std::pair<std::string, std::pair<double, double>>> parameters;
};

CampaignConfig loadCampaignConfig(const std::string& path);

// Unit-cube designs: points[i][d] in [0, 1).
std::vector<std::vector<double>> latinHypercube(int n, int dims, std::uint64_t seed);
// Sobol points 0..n-1 (Joe & Kuo direction numbers), dims <= 10.
std::vector<std::vector<double>> sobolPoints(int n, int dims);

// Writes the member parameter files, the manifest and the sbatch script (single process). The
// script runs `launcher NP caustic_binary run params.toml` (absolute paths of the tree in use:
// build or install prefix). Refuses an existing manifest or a missing binary or launcher.
// Returns the manifest path.
std::string makeCampaign(const CampaignConfig& cfg, const std::string& caustic_binary,
                         const std::string& launcher);

// The directory name of member `index` under <directory>/members: NNNN (0001, 0002, ...).
std::string memberName(int index);

enum class MemberState { NotStarted, Running, Done, Failed };
struct MemberStatus {
  int index = 0;
  MemberState state = MemberState::NotStarted;
  std::string detail; // exit code, steps done
};
std::vector<MemberStatus> campaignStatus(const std::string& directory);
std::string stateName(MemberState s);

} // namespace caustic
