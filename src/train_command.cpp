#include "commands.hpp"
#include "common.hpp"

#include "emulators/training/group_training.hpp"
#include "emulators/training/training_config.hpp"
#include "io/format.hpp"
#include "io/text_file.hpp"
#include "io/toml_section.hpp"
#include "pm/core/memory.hpp"

#include <cmath>
#include <cstdio>
#include <unistd.h>

namespace caustic {

namespace {
void reportProgress(RunContext& ctx, const TrainingProgress& p, int every, bool tty) {
  char line[200];
  std::snprintf(line, sizeof line, "step %6d/%d  loss %.4e  validation %.4e  lr %.2e  ETA %6.0f s",
                p.step, p.steps, p.train_loss, p.validation_loss, p.lr, p.eta_seconds);
  if (tty) { // one updating line on a terminal
    const int width = 24, done = width * p.step / p.steps;
    std::fprintf(stderr, "\r[%.*s%*s] %s", done, "########################", width - done, "",
                 line);
    if (p.step == p.steps)
      std::fprintf(stderr, "\n");
    std::fflush(stderr);
  } else if (p.step % every == 0 || p.step == p.steps) {
    ctx.log(line);
  }
}
} // namespace

// [model] kind = "halo_groups": the per-group halo surrogate (group_training.hpp).
int runGroupTrainCommand(RunContext& ctx, const TrainCommandOptions& opt) {
  GroupTrainingConfig cfg = loadGroupTrainingConfig(opt.config, opt.sets);
  cfg.common.resume = opt.resume;
  cfg.common.stop_after = opt.stop_after;
  const bool tty = isatty(fileno(stderr)) != 0;
  ctx.log("caustic train (halo_groups): " + std::to_string(cfg.train.size()) + " training and " +
          std::to_string(cfg.validation.size()) + " validation pairs, " +
          std::to_string(cfg.common.steps) + " full-batch steps -> " + cfg.common.directory +
          (cfg.common.resume ? " (resuming)" : ""));
  const OutputClaim claim = claimOutputDirectory(ctx, cfg.common.directory, "caustic train");
  const int every = std::max(1, cfg.common.steps / 20);
  TrainingResult r;
  try {
    r = trainGroupSurrogate(cfg, ctx.comm().get(),
                            [&](const TrainingProgress& p) { reportProgress(ctx, p, every, tty); });
  } catch (const std::invalid_argument& e) {
    throw ParamError(e.what());
  }
  if (!r.finished) {
    ctx.log("stopped after step " + std::to_string(r.steps_done) + "; continue with --resume");
    return 0;
  }
  ctx.log("wrote " + r.model_path + "; loss curve: " + cfg.common.directory + "/loss.csv");
  ctx.log(format("held-out loss %.4e at step 0, %.4e at step %d", r.curve.front().validation,
                 r.curve.back().validation, r.curve.back().step));
  return 0;
}

int runTrainCommand(RunContext& ctx, const TrainCommandOptions& opt) {
  { // [model] kind = "force_correction" has its own trainer.
    toml::table root =
        tomlsec::parseTomlText(readTextFile(opt.config, "training configuration"), opt.config);
    for (const auto& ov : opt.sets)
      tomlsec::applyOverride(root, ov);
    const std::string kind = root["model"]["kind"].value_or(std::string());
    if (kind == "force_correction")
      return runForceTrainCommand(ctx, opt);
    if (kind == "halo_groups")
      return runGroupTrainCommand(ctx, opt);
  }
  TrainingConfig cfg = loadTrainingConfig(opt.config, opt.sets);
  configureAllocatorForReuse();
  cfg.resume = opt.resume;
  cfg.stop_after = opt.stop_after;
  const bool tty = isatty(fileno(stderr)) != 0;
  ctx.log("caustic train: " + std::to_string(cfg.train.size()) + " training and " +
          std::to_string(cfg.validation.size()) + " validation pairs, U-Net depth " +
          std::to_string(cfg.depth) + " width " + std::to_string(cfg.width) + ", " +
          std::to_string(cfg.steps) + " steps of " + std::to_string(cfg.batch) + " x " +
          std::to_string(ctx.comm().size()) + " crops of " + std::to_string(cfg.crop) + "^3 -> " +
          cfg.directory + (cfg.resume ? " (resuming)" : ""));
  // Locked against a second command writing into the same directory.
  const OutputClaim claim = claimOutputDirectory(ctx, cfg.directory, "caustic train");
  const int every = std::max(1, cfg.steps / 100);
  TrainingResult r;
  try {
    r = trainModel(cfg, ctx.comm().get(),
                   [&](const TrainingProgress& p) { reportProgress(ctx, p, every, tty); });
  } catch (const std::invalid_argument& e) {
    throw ParamError(e.what()); // a bad setting, met by every rank alike
  }
  if (!r.finished) {
    ctx.log("stopped after step " + std::to_string(r.steps_done) + "; continue with --resume");
    return 0;
  }
  ctx.log("wrote " + r.model_path + " and its metadata " + cfg.directory + "/model.json");
  ctx.log("loss curve: " + cfg.directory + "/loss.csv, " + cfg.directory + "/loss.svg");
  ctx.log(format("held-out loss %.4e at step 0, %.4e at step %d", r.curve.front().validation,
                 r.curve.back().validation, r.curve.back().step));
  return 0;
}

} // namespace caustic
