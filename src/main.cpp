// The `caustic` command: parses the command line, sets up MPI and Kokkos, runs a subcommand.
#include "commands.hpp"
#include "emulator_runtime.hpp"
#include "signals.hpp"
#include "pm/core/comm.hpp"
#include "pm/core/memory.hpp"

#include <CLI/CLI.hpp>
#include <Kokkos_Core.hpp>
#include <hdf5.h>
#include <mpi.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

namespace {

// A stream that discards (the ranks other than 0 do not repeat command-line messages).
std::ostream& devnull() {
  static std::ostream null(nullptr);
  return null;
}

// The arguments Kokkos sees: the program name and --kokkos-* options only. Kokkos 3.4 also
// answers --help with its own 40-line help, which is not this command's.
std::vector<char*> kokkosArguments(int argc, char** argv) {
  std::vector<char*> args{argv[0]};
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]).rfind("--kokkos-", 0) == 0)
      args.push_back(argv[i]);
  args.push_back(nullptr);
  return args;
}

// An error every rank met alike (invalid input, or one decided collectively): rank 0 reports
// it once, every rank returns the exit code.
int reportOnce(int rank, const std::exception& e, int code) {
  if (rank == 0)
    std::fprintf(stderr, "caustic: error: %s\n", e.what());
  return code;
}

// parse_only: before MPI_Init (see main); returns -1 when the command line asks for more than
// help or the version.
int runCommand(int argc, char** argv, bool parse_only = false) {
  using namespace caustic;
  int rank = 0, size = 1;
  if (!parse_only) {
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
  }

  CLI::App app{"Caustic: distributed particle-mesh N-body simulations with in-situ emulators"};
  app.name("caustic");
  app.require_subcommand(1);
  std::string file;
  std::vector<std::string> sets;
  auto* ic = app.add_subcommand("ic", "Generate initial conditions: snapshot and power spectrum");
  ic->add_option("params", file, "TOML parameter file")->required();
  ic->add_option("--set", sets, "Override a parameter: section.key=value (repeatable)");
  bool ic_overwrite = false;
  ic->add_flag("--overwrite", ic_overwrite, "Replace the outputs of an earlier run or ic");
  auto* run = app.add_subcommand("run", "Run a simulation: initial conditions, PM steps, outputs");
  run->add_option("params", file, "TOML parameter file")->required();
  run->add_option("--set", sets, "Override a parameter: section.key=value (repeatable)");
  RunOptions run_opt;
  run->add_flag("--resume", run_opt.resume,
                "Continue from the newest checkpoint (same parameters and --set options)");
  auto* overwrite =
      run->add_flag("--overwrite", run_opt.overwrite, "Replace the outputs of an earlier run");
  run->get_option("--resume")->excludes(overwrite);
  FofCommandOptions fof_opt;
  auto* fof = app.add_subcommand(
      "fof", "Friends-of-friends halos of a snapshot: catalogue and mass function");
  fof->add_option("snapshot", fof_opt.snapshot, "Snapshot (Gadget-4 HDF5 layout)")->required();
  fof->add_option("--linking-length,-b", fof_opt.b, "Linking length in mean particle separations")
      ->check(CLI::Range(1e-3, 0.999));
  fof->add_option("--min-particles", fof_opt.min_particles, "Smallest group kept")
      ->check(CLI::Range(2, 1000000000));
  fof->add_flag("--member-ids", fof_opt.member_ids, "Write the members' IDs");
  fof->add_option("--output,-o", fof_opt.output,
                  "Catalogue path (default: halos_<snapshot>.hdf5 beside it)");
  fof->add_flag("--overwrite", fof_opt.overwrite,
                "Replace an existing catalogue and mass function (never the snapshot itself)");
  BaryonifyOptions bar_opt;
  auto* bar = app.add_subcommand(
      "baryonify", "Baryon correction model on a snapshot and its FoF catalogue: baryonified "
                   "snapshot, S(k), gas/temperature/pressure meshes, Compton-y map");
  bar->add_option("snapshot", bar_opt.snapshot, "Snapshot (Gadget-4 HDF5 layout)")->required();
  bar->add_option("halos", bar_opt.halos, "Its FoF catalogue (caustic fof or a run's halos_*)")
      ->required();
  bar->add_option("--output,-o", bar_opt.output,
                  "Output directory (default: baryons_<snapshot name>/ beside the snapshot)");
  bar->add_option("--set", bar_opt.sets,
                  "Override a parameter, e.g. baryons.log10_mc=13.5 (repeatable)");
  bar->add_flag("--overwrite", bar_opt.overwrite, "Replace the outputs of an earlier baryonify");
  LdlFitCommandOptions ldl_opt;
  auto* ldl = app.add_subcommand(
      "ldl-fit", "Fit a Lagrangian Deep Learning baryon painter to target fields (e.g. baryonify's)");
  ldl->add_option("--train", ldl_opt.train,
                  "SNAPSHOT=FIELDS[=HALOS] training pair, HALOS its FoF catalogue (repeatable)")
      ->required();
  ldl->add_option("--test", ldl_opt.test, "SNAPSHOT=FIELDS[=HALOS] held-out pair (repeatable)");
  ldl->add_option("--field", ldl_opt.field, "Target dataset under /Fields (default gas_density)");
  ldl->add_option("--layers", ldl_opt.layers, "Displacement layers (default 2)");
  ldl->add_option("--iterations", ldl_opt.iterations, "L-BFGS iterations (default 100)");
  ldl->add_option("--weight-n", ldl_opt.weight_n, "Fourier weight 1 + (k/k_F)^-n of the loss (default 1)");
  ldl->add_option("--power-weight", ldl_opt.power_weight,
                  "Weight of the loss's power-spectrum term: lambda mean (P/P_target - 1)^2 over "
                  "shells (default 0)");
  ldl->add_option("--power-kmax", ldl_opt.power_kmax,
                  "Largest k of the power-spectrum term [h/Mpc] (default 0: the mesh Nyquist "
                  "frequency)");
  ldl->add_flag("--displacement-only", ldl_opt.displacement_only,
                "Fit the displacement layers only; the output is the displaced particles' density "
                "(mass-conserving: for total-matter targets such as matter_density)");
  ldl->add_option("--init", ldl_opt.init,
                  "Start from an earlier fit's ldl.json (same field, layers, mesh and box)");
  ldl->add_option("--condition", ldl_opt.conditions,
                  "A run setting the painter's parameters depend on, read from each target's "
                  "/Parameters (e.g. baryons.log10_mc; repeatable)");
  ldl->add_option("--factor", ldl_opt.factors,
                  "Paint the target as the product of these painters' fields (their ldl.json; "
                  "repeatable, two or more; e.g. gas_density and gas_temperature for the electron "
                  "pressure), fitted jointly from their parameters; --layers is then theirs");
  ldl->add_flag(
      "--halo-layer", ldl_opt.halo_layer,
      "Multiply the painted field by a factor of the pairs' FoF catalogues (halo mass and "
      "r / R200m), fitted with the painter");
  ldl->add_flag("--halo-displacement", ldl_opt.halo_displacement,
                "Move the particles radially around the pairs' FoF haloes (halo mass and r / "
                "R200m) before the painter's layers, fitted with the painter (a matter painter)");
  ldl->add_option("--halo-radius-nodes", ldl_opt.halo_radius_nodes,
                  "r / R200m nodes of the halo layer or displacement, from 0, increasing (default "
                  "0 0.25 0.5 0.75 1 1.5 2 3)")
      ->delimiter(',');
  ldl->add_flag("--hold-painter", ldl_opt.hold_painter,
                "With --halo-layer: fit the halo layer alone, the painter's parameters held as "
                "started (--init or --factor)");
  ldl->add_option("--profile-weight", ldl_opt.profile_weight,
                  "Weight of the stacked-profile term of the loss (default 0: none; needs the "
                  "pairs' FoF catalogues)");
  ldl->add_option("--output,-o", ldl_opt.output, "Output directory (default output/ldl)");
  ldl->add_flag("--overwrite", ldl_opt.overwrite, "Replace an earlier fit's outputs");
  CampaignCommandOptions camp_opt;
  auto* camp = app.add_subcommand("campaign", "Campaigns of many runs: make, status, submit");
  camp->require_subcommand(1);
  auto* cmake_ =
      camp->add_subcommand("make", "Write member parameter files, manifest, sbatch script");
  cmake_->add_option("campaign_file", camp_opt.target, "Campaign TOML file")->required();
  auto* cstatus = camp->add_subcommand("status", "Done, running, failed, not started per member");
  cstatus->add_option("directory", camp_opt.target, "Campaign directory")->required();
  auto* csubmit = camp->add_subcommand("submit", "sbatch the members that are not done");
  csubmit->add_option("directory", camp_opt.target, "Campaign directory")->required();
  csubmit->add_flag("--all", camp_opt.all, "Also members marked queued or running");
  InferOptions infer_opt;
  auto* infer = app.add_subcommand(
      "infer", "Field-level inference: the initial conditions (and cosmology) behind a field");
  infer->add_option("params", file, "TOML parameter file with an [inference] section")->required();
  infer->add_option("--set", sets, "Override a parameter: section.key=value (repeatable)");
  auto* infer_overwrite =
      infer->add_flag("--overwrite", infer_opt.overwrite, "Replace an earlier inference's outputs");
  infer->add_flag("--resume", infer_opt.resume,
                  "Continue an interrupted inference from its checkpoint (same parameters, same "
                  "number of ranks)")
      ->excludes(infer_overwrite);
#ifdef CAUSTIC_WITH_TORCH
  TrainCommandOptions train_opt;
  auto* train = app.add_subcommand("train", "Train a U-Net emulator on paired HDF5 fields");
  train->add_option("config", train_opt.config, "TOML training configuration")->required();
  train->add_option("--set", train_opt.sets, "Override a setting: section.key=value (repeatable)");
  train->add_flag("--resume", train_opt.resume,
                  "Continue from the checkpoint in the output directory");
  train
      ->add_option("--stop-after", train_opt.stop_after, "Stop (with a checkpoint) after this step")
      ->check(CLI::Range(1, 1000000000));
#endif
  app.set_version_flag("--version", CAUSTIC_VERSION);
  // --kokkos-* options are Kokkos's (kokkosArguments), not the command's.
  std::vector<std::string> args;
  for (int i = argc - 1; i >= 1; --i)
    if (std::string(argv[i]).rfind("--kokkos-", 0) != 0)
      args.emplace_back(argv[i]); // CLI11 takes them in reverse order
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; every command-line error exits 2 (as input errors do),
    // with CLI11's message and a pointer to --help.
    const int code = app.exit(e, rank == 0 ? std::cout : devnull(), rank == 0 ? std::cerr : devnull());
    return code == 0 ? 0 : 2;
  }
  if (parse_only)
    return -1;

  Comm comm(MPI_COMM_WORLD);
  RunContext ctx(comm);
  // Peak memory per phase in the summaries of the commands whose phases are coarse (run, ic,
  // fof, baryonify); not infer, train or ldl-fit, which time thousands of small forces.
  if (*run || *ic || *fof || *bar)
    enableMemoryPhases();
  if (*fof) {
    try {
      runFofCommand(ctx, fof_opt);
    } catch (const std::runtime_error& e) {
      // Input errors (missing or malformed snapshot) are met on every rank alike.
      return reportOnce(rank, e, 2);
    }
    return 0;
  }
  if (*ldl) {
    try {
      return runLdlFitCommand(ctx, ldl_opt);
    } catch (const std::runtime_error& e) {
      return reportOnce(rank, e, 2);
    }
  }
  if (*bar) {
    try {
      return runBaryonifyCommand(ctx, bar_opt);
    } catch (const std::runtime_error& e) {
      // Input errors (snapshot, catalogue, parameters) are met on every rank alike.
      return reportOnce(rank, e, 2);
    }
  }
  if (*camp) {
    camp_opt.action = *cmake_ ? "make" : *cstatus ? "status" : "submit";
    try {
      return runCampaignCommand(ctx, camp_opt);
    } catch (const ParamError& e) {
      return reportOnce(rank, e, 2);
    }
  }
#ifdef CAUSTIC_WITH_TORCH
  if (*train) {
    try {
      return emulatorRuntimeOnEveryRank(ctx, "caustic train").train(ctx, train_opt);
    } catch (const ParamError& e) {
      return reportOnce(rank, e, 2);
    }
  }
#endif
  // `run` and `ic` take stop requests (SIGINT, SIGTERM, SIGUSR1) from the start: a signal
  // during the initial conditions stops them cleanly before anything is written, as one during
  // the steps stops the run at a step boundary. (The other commands keep the default action.)
  installStopHandlers();
  if (*infer) {
    try {
      const InferParams ip = loadInferParams(file, sets, size);
      return runInferCommand(ctx, ip, infer_opt);
    } catch (const ParamError& e) {
      return reportOnce(rank, e, 2);
    }
  }
  Params params;
  try {
    params = loadParams(file, sets, size);
  } catch (const ParamError& e) {
    // Every rank read the same input and fails the same way.
    return reportOnce(rank, e, 2);
  }
  try {
    if (*ic)
      return runInitialConditions(ctx, params, ic_overwrite);
    return runSimulationCommand(ctx, params, run_opt);
  } catch (const ParamError& e) {
    // Input errors found after parsing (e.g. an emulator refused by its validity guard) are
    // met on every rank alike and before anything is written.
    return reportOnce(rank, e, 2);
  }
}

// `caustic --help` or `--version` outside an MPI launcher: answered before MPI_Init, whose
// singleton start-up (it starts Open MPI's runtime daemon) is nearly all of the command's time.
bool helpOutsideLauncher(int argc, char** argv) {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_STEP_ID"})
    if (std::getenv(v))
      return false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h" || a == "--version")
      return true;
  }
  return false;
}

} // namespace

int main(int argc, char** argv) {
  if (helpOutsideLauncher(argc, argv)) {
    const int rc = runCommand(argc, argv, true);
    if (rc >= 0)
      return rc;
  }
  MPI_Init(&argc, &argv);
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); // errors are reported by caustic, with context
  int rc = 0;
  {
    auto kargs = kokkosArguments(argc, argv);
    int kargc = static_cast<int>(kargs.size()) - 1;
    Kokkos::ScopeGuard kokkos(kargc, kargs.data());
    caustic::configureAllocator();
    try {
      rc = runCommand(argc, argv);
    } catch (const caustic::CollectiveError& e) {
      // Met by every rank alike (e.g. a full disk seen before writing): report once, exit.
      int rank = 0;
      MPI_Comm_rank(MPI_COMM_WORLD, &rank);
      rc = reportOnce(rank, e, 1);
    } catch (const std::exception& e) {
      // A failure that may concern this rank only: stop all ranks rather than hang.
      std::fprintf(stderr, "caustic: error: %s\n", e.what());
      std::fflush(stderr);
      MPI_Abort(MPI_COMM_WORLD, 1);
    }
  }
  MPI_Finalize();
  return rc;
}
