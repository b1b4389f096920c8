#pragma once
// The `caustic train` configuration file:
//
//   [data]     # each pair: one "file.hdf5:group/dataset" per channel; paths relative to this file
//   train = [{inputs = ["lr/density_a1.0000.hdf5:Fields/density"],
//             targets = ["hr/density_a1.0000.hdf5:Fields/density"]}, ...]
//   validation = [...]                       # held out, required
//   [model]    kind = "super_resolution", depth = 2, width = 16,
//              inputs = ["density"], outputs = ["density_hr"]   # channel names (optional)
//   [training] steps, batch, crop, learning_rate, lr_min, schedule, warmup, seed, augment,
//              loss_margin, validate_every, checkpoint_every, validation_crops
//   [output]   directory = "output/train"   # relative to the working directory
//
// Errors throw ParamError naming the key, the value and what is allowed.
#include "emulators/training/training.hpp"
#include "io/toml_section.hpp"

#include <algorithm>
#include <functional>

#include <string>
#include <vector>

namespace caustic {

// The [training] keys every trainer of `caustic train` reads (steps, learning_rate, lr_min,
// schedule, warmup, seed, validate_every, checkpoint_every), with their defaults per trainer.
struct TrainingKeyDefaults {
  int steps = 1000;
  double learning_rate = 1e-3;
  std::function<double(double)> lr_min = [](double lr) { return std::min(1e-5, lr); };
  int validate_every = 50, checkpoint_every = 100;
};
void readScheduleKeys(tomlsec::Section& s, TrainingConfig& c, const TrainingKeyDefaults& d);

TrainingConfig loadTrainingConfig(const std::string& path,
                                  const std::vector<std::string>& overrides);
TrainingConfig parseTrainingConfig(const std::string& text,
                                   const std::vector<std::string>& overrides,
                                   const std::string& base_dir, const std::string& source);

} // namespace caustic
