#include "emulators/training/training_config.hpp"

#include "emulators/runtime/metadata.hpp"
#include "io/text_file.hpp"
#include "io/toml_section.hpp"

#include <filesystem>

namespace caustic {

using namespace tomlsec;

namespace {
std::vector<TrainingPair> pairs(toml::table& data, const std::string& key,
                                const std::string& base_dir, bool superres) {
  std::vector<TrainingPair> out;
  toml::node* n = data.get(key);
  if (!n)
    return out;
  const std::string where = "data." + key;
  if (!n->is_array())
    throw ParamError(where + " = " + show(*n) +
                     ": expected a list of {inputs = [...], targets = "
                     "[...]} tables");
  int i = 0;
  for (auto& e : *n->as_array()) {
    const std::string w = where + "[" + std::to_string(i++) + "]";
    if (!e.is_table())
      throw ParamError(w + " = " + show(e) + ": expected {inputs = [...], targets = [...]}");
    TrainingPair p;
    for (auto&& [k, v] : *e.as_table()) {
      const std::string ks(k.str());
      if (superres ? ks != "lr" && ks != "hr"
                   : ks != "inputs" && ks != "targets" && ks != "conditioning")
        throw ParamError(w + "." + ks + ": unknown key; allowed: " +
                         (superres ? "lr, hr (model.kind = \"particle_super_resolution\")"
                                   : "inputs, targets, conditioning"));
    }
    if (superres) { // two snapshots
      for (const char* side : {"lr", "hr"}) {
        toml::node* s = e.as_table()->get(side);
        if (!s || !s->is_string())
          throw ParamError(w + "." + side + ": missing; expected the path of a snapshot");
        std::filesystem::path f(s->as_string()->get());
        if (f.is_relative())
          f = std::filesystem::path(base_dir) / f;
        if (!std::filesystem::is_regular_file(f))
          throw ParamError(w + "." + side + " = \"" + s->as_string()->get() +
                           "\": no such file (looked for " + f.string() + ")");
        (side[0] == 'l' ? p.lr : p.hr) = f.string();
      }
      out.push_back(p);
      continue;
    }
    if (toml::node* cn = e.as_table()->get("conditioning")) {
      if (!cn->is_array())
        throw ParamError(w + ".conditioning = " + show(*cn) +
                         ": expected a list of numbers (one per model.conditioning name)");
      for (auto& v : *cn->as_array()) {
        if (!v.is_number())
          throw ParamError(w + ".conditioning: element " + show(v) + " is not a number");
        p.conditioning.push_back(v.value<double>().value());
      }
    }
    for (const char* side : {"inputs", "targets"}) {
      toml::node* s = e.as_table()->get(side);
      if (!s || !s->is_array() || s->as_array()->empty())
        throw ParamError(w + "." + side +
                         ": missing or empty; expected a list of \"file.hdf5:group/dataset\"");
      for (auto& spec : *s->as_array()) {
        if (!spec.is_string())
          throw ParamError(w + "." + side + ": element " + show(spec) + " is not a string");
        std::string v = spec.as_string()->get();
        const auto colon = v.rfind(':');
        if (colon == std::string::npos || colon == 0 || colon + 1 == v.size())
          throw ParamError(w + "." + side + ": \"" + v +
                           "\": expected \"file.hdf5:group/dataset\"");
        std::filesystem::path f(v.substr(0, colon));
        if (f.is_relative())
          f = std::filesystem::path(base_dir) / f;
        if (!std::filesystem::is_regular_file(f))
          throw ParamError(w + "." + side + ": \"" + v + "\": no such file (looked for " +
                           f.string() + ")");
        (side[0] == 'i' ? p.inputs : p.targets).push_back(f.string() + v.substr(colon));
      }
    }
    out.push_back(p);
  }
  return out;
}
} // namespace

void readScheduleKeys(Section& s, TrainingConfig& c, const TrainingKeyDefaults& d) {
  c.steps = static_cast<int>(s.integer("steps", d.steps, "an integer >= 1"));
  requireRange(c.steps >= 1 && c.steps <= 100000000, s.key("steps"), c.steps, ">= 1");
  c.learning_rate = s.number("learning_rate", d.learning_rate, "a number in (0, 1)");
  requireRange(c.learning_rate > 0 && c.learning_rate < 1, s.key("learning_rate"), c.learning_rate,
               "(0, 1)");
  c.lr_min = s.number("lr_min", d.lr_min(c.learning_rate), "a number in [0, learning_rate]");
  requireRange(c.lr_min >= 0 && c.lr_min <= c.learning_rate, s.key("lr_min"), c.lr_min,
               "[0, learning_rate]");
  c.schedule = s.choice("schedule", "cosine", {"cosine", "constant"});
  c.warmup = static_cast<int>(s.integer("warmup", 0, "an integer in [0, steps)"));
  requireRange(c.warmup >= 0 && c.warmup < c.steps, s.key("warmup"), c.warmup, "[0, steps)");
  const auto seed = s.integer("seed", 1, "an integer >= 0");
  requireRange(seed >= 0, s.key("seed"), double(seed), ">= 0");
  c.seed = static_cast<std::uint64_t>(seed);
  c.validate_every =
      static_cast<int>(s.integer("validate_every", d.validate_every, "an integer >= 1"));
  requireRange(c.validate_every >= 1, s.key("validate_every"), c.validate_every, ">= 1");
  c.checkpoint_every =
      static_cast<int>(s.integer("checkpoint_every", d.checkpoint_every, "an integer >= 1"));
  requireRange(c.checkpoint_every >= 1, s.key("checkpoint_every"), c.checkpoint_every, ">= 1");
}

TrainingConfig parseTrainingConfig(const std::string& text,
                                   const std::vector<std::string>& overrides,
                                   const std::string& base_dir, const std::string& source) {
  toml::table root = parseTomlText(text, source);
  for (const auto& ov : overrides)
    applyOverride(root, ov);
  for (auto&& [k, v] : root) {
    const std::string ks(k.str());
    if (ks != "data" && ks != "model" && ks != "training" && ks != "output")
      throw ParamError("[" + ks +
                       "]: unknown section; allowed: [data], [model], [training], "
                       "[output]");
  }
  TrainingConfig c;
  c.source = source;
  {
    toml::node* d = root.get("data");
    if (!d || !d->is_table())
      throw ParamError("[data]: missing section (train and validation pairs)");
    for (auto&& [k, v] : *d->as_table()) {
      const std::string ks(k.str());
      if (ks != "train" && ks != "validation")
        throw ParamError("data." + ks + ": unknown key; allowed: train, validation");
    }
    // The model's kind decides the form of the pairs.
    const bool superres =
        root["model"]["kind"].value_or(std::string()) == "particle_super_resolution";
    c.train = pairs(*d->as_table(), "train", base_dir, superres);
    c.validation = pairs(*d->as_table(), "validation", base_dir, superres);
    if (c.train.empty())
      throw ParamError("data.train: missing or empty; expected at least one pair");
    if (c.validation.empty())
      throw ParamError("data.validation: missing or empty; a held-out set is required");
  }
  {
    Section s(&root, "model", false);
    c.kind = s.string("kind").value_or("");
    c.linking_length = s.number("linking_length", 0.2,
                                "a number in (0, 1) (the truth's FoF b, halo surrogates)");
    requireRange(c.linking_length > 0 && c.linking_length < 1, s.key("linking_length"),
                 c.linking_length, "(0, 1)");
    c.factor = static_cast<int>(s.integer("factor", 2, "an integer in [2, 4]"));
    requireRange(c.factor >= 2 && c.factor <= 4, s.key("factor"), c.factor, "[2, 4]");
    c.depth = static_cast<int>(s.integer("depth", 2, "an integer in [0, 5]"));
    requireRange(c.depth >= 0 && c.depth <= 5, s.key("depth"), c.depth, "[0, 5]");
    c.width = static_cast<int>(s.integer("width", 16, "an integer in [1, 256]"));
    requireRange(c.width >= 1 && c.width <= 256, s.key("width"), c.width, "[1, 256]");
    c.input_names = s.strings("inputs").value_or(std::vector<std::string>{});
    c.output_names = s.strings("outputs").value_or(std::vector<std::string>{});
    c.conditioning = s.strings("conditioning").value_or(std::vector<std::string>{});
    c.floor = s.number("floor", 1e-3, "a number > 0 (argument floor of the log transforms)");
    requireRange(c.floor > 0, s.key("floor"), c.floor, "> 0");
    if (const toml::node* t = s.find("floors")) {
      if (!t->is_table())
        throw ParamError("model.floors = " + show(*t) + ": expected a table {channel = number}");
      for (auto&& [k, v] : *t->as_table()) {
        const std::string key = "model.floors." + std::string(k.str());
        if (!(v.is_integer() || v.is_floating_point()))
          throw ParamError(key + " = " + show(v) + ": expected a number > 0");
        const double f = v.value<double>().value();
        requireRange(f > 0, key, f, "> 0");
        c.floors[std::string(k.str())] = f;
      }
    }
    // Tables {channel = "value"}.
    for (const char* key : {"transforms", "residual"}) {
      const toml::node* t = s.find(key);
      if (!t)
        continue;
      const std::string where = std::string("model.") + key;
      if (!t->is_table())
        throw ParamError(where + " = " + show(*t) + ": expected a table {channel = \"" +
                         (key[0] == 't' ? "log" : "input channel") + "\", ...}");
      for (auto&& [k, v] : *t->as_table()) {
        if (!v.is_string())
          throw ParamError(where + "." + std::string(k.str()) + " = " + show(v) +
                           ": expected a string");
        const std::string val = v.as_string()->get();
        if (key[0] == 't') {
          if (!isChannelTransform(val))
            throw ParamError(where + "." + std::string(k.str()) + " = \"" + val +
                             "\": allowed: " + kChannelTransforms);
          c.transforms[std::string(k.str())] = val;
        } else {
          c.residual_of[std::string(k.str())] = val;
        }
      }
    }
    s.finish();
  }
  {
    Section s(&root, "training", false);
    readScheduleKeys(s, c, TrainingKeyDefaults{});
    c.batch = static_cast<int>(s.integer("batch", 4, "an integer in [1, 1024]"));
    requireRange(c.batch >= 1 && c.batch <= 1024, s.key("batch"), c.batch, "[1, 1024]");
    c.crop = static_cast<int>(s.integer("crop", 32, "a multiple of 2^depth"));
    requireRange(c.crop >= (1 << c.depth) && c.crop % (1 << c.depth) == 0, s.key("crop"), c.crop,
                 "a positive multiple of 2^depth = " + std::to_string(1 << c.depth));
    c.augment = s.boolean("augment", true);
    c.loss_margin = static_cast<int>(s.integer("loss_margin", -1, "an integer >= -1"));
    requireRange(c.loss_margin >= -1, s.key("loss_margin"), c.loss_margin,
                 ">= 0 cells, or -1 (automatic)");
    c.weight = s.string("weight").value_or("");
    c.density_weight = s.number("density_weight", 1.0, "a number >= 0");
    requireRange(c.density_weight >= 0 && c.density_weight < 1e6, s.key("density_weight"),
                 c.density_weight, "[0, 1e6)");
    c.power_weight = s.number("power_weight", 1.0, "a number >= 0");
    requireRange(c.power_weight >= 0 && c.power_weight < 1e6, s.key("power_weight"),
                 c.power_weight, "[0, 1e6)");
    c.loss = s.choice("loss", "mse", {"mse", "halo"});
    c.focal_gamma = s.number("focal_gamma", 2.0, "a number in [0, 10]");
    requireRange(c.focal_gamma >= 0 && c.focal_gamma <= 10, s.key("focal_gamma"), c.focal_gamma,
                 "[0, 10]");
    c.focal_alpha = s.number("focal_alpha", 0.5, "a number in (0, 1)");
    requireRange(c.focal_alpha > 0 && c.focal_alpha < 1, s.key("focal_alpha"), c.focal_alpha,
                 "(0, 1)");
    c.mass_weight = s.number("mass_weight", 1.0, "a number >= 0");
    requireRange(c.mass_weight >= 0, s.key("mass_weight"), c.mass_weight, ">= 0");
    c.validation_crops = static_cast<int>(s.integer("validation_crops", 4, "an integer >= 1"));
    requireRange(c.validation_crops >= 1, s.key("validation_crops"), c.validation_crops, ">= 1");
    s.finish();
  }
  {
    Section s(&root, "output", false);
    // Relative to the working directory, as output.directory of a run.
    c.directory = s.string("directory").value_or("output/train");
    if (c.directory.empty())
      throw ParamError("output.directory = \"\": expected a directory path");
    s.finish();
  }
  return c;
}

TrainingConfig loadTrainingConfig(const std::string& path,
                                  const std::vector<std::string>& overrides) {
  const std::string text = readTextFile(path, "training configuration");
  const auto base = std::filesystem::path(path).parent_path().string();
  return parseTrainingConfig(text, overrides, base.empty() ? "." : base, path);
}

} // namespace caustic
