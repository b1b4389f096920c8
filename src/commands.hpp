#pragma once
#include "io/infer_params.hpp"
#include "io/params.hpp"
#include "run_context.hpp"

namespace caustic {

// `caustic ic`: initial conditions, their snapshot and power spectrum.
// `caustic ic`: refuses a directory with outputs of an earlier run or ic unless `overwrite`.
// Returns the exit code (0; 128 + signal if stopped during the initial conditions).
int runInitialConditions(RunContext& ctx, const Params& params, bool overwrite);
struct RunOptions {
  bool resume = false;    // continue from the newest readable checkpoint
  bool overwrite = false; // replace the outputs of an earlier run in output.directory
};
// `caustic run`: initial conditions, PM time stepping, outputs, checkpoints. Returns the exit
// code (0; 128 + signal when stopped by a signal at a step boundary; 3 when the state became
// non-finite).
int runSimulationCommand(RunContext& ctx, const Params& params, const RunOptions& opt);

struct FofCommandOptions {
  std::string snapshot;
  double b = 0.2;
  int min_particles = 20;
  bool member_ids = false;
  std::string output; // catalogue path (default: halos_<snapshot name>.hdf5 beside it)
  bool overwrite = false; // replace an existing catalogue / mass function
};
// `caustic fof`: friends-of-friends on a snapshot: catalogue and mass function. Refuses to
// write over its input, over existing files (unless overwrite) and snapshots whose particle
// IDs are not unique (ParamError, before anything is written).
void runFofCommand(RunContext& ctx, const FofCommandOptions& opt);

struct BaryonifyOptions {
  std::string snapshot, halos;
  std::string output;            // directory (default: baryons_<snapshot name>/ beside it)
  std::vector<std::string> sets; // parameter overrides, e.g. baryons.log10_mc=13.5
  bool overwrite = false;
};
// `caustic baryonify`: the baryon correction model on a snapshot and its FoF catalogue
// (src/baryonify_command.cpp). Returns the exit code.
int runBaryonifyCommand(RunContext& ctx, const BaryonifyOptions& opt);

struct LdlFitCommandOptions {
  std::vector<std::string> train, test; // SNAPSHOT=FIELDS[=HALOS] pairs
  std::string field = "gas_density";    // dataset under /Fields of the FIELDS files
  int layers = 2;
  int iterations = 100;
  double weight_n = 1.0;
  double power_weight = 0.0; // the loss's power-spectrum term (pm/baryons/ldl_fit.hpp)
  double power_kmax = 0.0;   // its largest k [h/Mpc]; 0: the mesh Nyquist frequency
  bool displacement_only = false; // output layer held at the identity: a matter painter
  std::string init; // an earlier fit's ldl.json to start from (same field, layers, mesh, box)
  // Run settings the parameters depend on (linearly in the optimiser's variables), read from
  // each target file's /Parameters, e.g. baryons.log10_mc: one painter for a range of them.
  std::vector<std::string> conditions;
  // A product painter: the ldl.json records of its factors (two or more, e.g. the gas density's
  // and the gas temperature's painters), fitted jointly to the target from their parameters.
  std::vector<std::string> factors;
  // A halo layer (pm/baryons/ldl_halo.hpp) after the painter, fitted with it: every pair needs
  // its FoF catalogue (SNAPSHOT=FIELDS=HALOS).
  bool halo_layer = false;
  // Instead, a halo displacement (a plain painter's particles moved radially around the haloes
  // before its layers: a mass-conserving matter painter), fitted with it.
  bool halo_displacement = false;
  std::vector<double> halo_radius_nodes; // r / R200m nodes of either (empty: the defaults)
  double profile_weight = 0.0; // the loss's stacked-profile term (needs the catalogues)
  bool hold_painter = false;   // with halo_layer: fit the layer alone, the painter as started
  std::string output = "output/ldl";
  bool overwrite = false;
};
// `caustic ldl-fit`: fits an LDL painter to target fields and measures it on held-out pairs
// (src/ldl_command.cpp). Returns the exit code.
int runLdlFitCommand(RunContext& ctx, const LdlFitCommandOptions& opt);

struct CampaignCommandOptions {
  std::string action; // make | status | submit
  std::string target; // campaign file (make) or campaign directory
  bool all = false;   // submit: also members marked queued/running
};
// `caustic campaign`: parameter designs, member files, SLURM array job, status, resubmission.
// Returns the exit code (status: 0 when every member is done, 1 otherwise).
int runCampaignCommand(RunContext& ctx, const CampaignCommandOptions& opt);

struct TrainCommandOptions {
  std::string config;
  std::vector<std::string> sets;
  bool resume = false;
  int stop_after = -1;
};
// `caustic train`: trains a U-Net emulator on paired HDF5 fields. Returns the exit code.
int runTrainCommand(RunContext& ctx, const TrainCommandOptions& opt);
// `caustic train` with [model] kind = "force_correction": fits a force correction of the hybrid
// PM to high-resolution references through the adjoint (src/train_force_command.cpp).
int runForceTrainCommand(RunContext& ctx, const TrainCommandOptions& opt);
// `caustic train` with [model] kind = "halo_groups": the per-group halo surrogate
// (emulators/training/group_training.hpp; src/train_command.cpp).
int runGroupTrainCommand(RunContext& ctx, const TrainCommandOptions& opt);

struct InferOptions {
  bool overwrite = false; // replace an earlier inference in output.directory
  bool resume = false;    // continue from the checkpoint in output.directory
};
// `caustic infer`: the MAP of the initial white noise (and of the parameters in inference.fit)
// given an observed field or a mock (src/infer_command.cpp). Returns the exit code (0; 128 +
// signal when stopped, after writing the iterate reached).
int runInferCommand(RunContext& ctx, const InferParams& params, const InferOptions& opt);

} // namespace caustic
