// Emulator runtime: metadata parsing, the validity guard, TorchScript and native models through
// Model.
#include "emulators/runtime/model.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

using namespace caustic;

namespace {

nlohmann::json baseMeta() {
  return nlohmann::json::parse(R"({
    "kind": "test_affine", "version": "1.0",
    "inputs": [{"name": "delta", "mean": 0.5, "std": 2.0}],
    "outputs": [{"name": "delta_out", "mean": -1.0, "std": 3.0}],
    "receptive_field": 1,
    "cell_size": {"value": 2.0, "rtol": 0.05},
    "box": [64.0, 512.0],
    "redshift": [0.0, 2.0],
    "cosmology": {"Omega_m": [0.25, 0.35], "sigma8": [0.7, 0.9]},
    "provenance": "unit test"
  })");
}

ApplicationDomain validDomain() {
  ApplicationDomain d;
  d.cell_size = 2.0;
  d.box = 128.0;
  d.redshift = 1.0;
  d.cosmology.Omega_m = 0.3;
  d.cosmology.sigma8 = 0.8;
  d.input_channels = {"delta"};
  return d;
}

using JsonCases = std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>>;

// Each case's mutation of `base` is refused by ModelMetadata::fromJson with its message.
void expectRefused(const nlohmann::json& base, const JsonCases& cases) {
  for (const auto& [mutate, expected] : cases) {
    auto j = base;
    mutate(j);
    try {
      ModelMetadata::fromJson(j, "case");
      ADD_FAILURE() << "accepted; expected: " << expected;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
}

} // namespace

TEST(Metadata, RoundTripsThroughJson) {
  const auto m = ModelMetadata::fromJson(baseMeta(), "test");
  const auto m2 = ModelMetadata::fromJson(m.toJson(), "round trip");
  EXPECT_EQ(m2.kind, "test_affine");
  EXPECT_EQ(m2.inputs.size(), 1u);
  EXPECT_DOUBLE_EQ(m2.inputs[0].std, 2.0);
  EXPECT_DOUBLE_EQ(m2.cell_size, 2.0);
  ASSERT_TRUE(m2.redshift.has_value());
  EXPECT_DOUBLE_EQ(m2.redshift->second, 2.0);
  EXPECT_EQ(m2.cosmology.size(), 2u);
}

TEST(Metadata, MalformedRecordsAreRefused) {
  const JsonCases cases = {
      {[](nlohmann::json& j) { j.erase("kind"); }, "\"kind\": missing"},
      {[](nlohmann::json& j) { j["inputs"] = nlohmann::json::array(); },
       "\"inputs\": expected a non-empty"},
      {[](nlohmann::json& j) { j["inputs"][0]["std"] = 0.0; }, "must be > 0"},
      {[](nlohmann::json& j) {
         j["redshift"] = {2.0, 1.0};
       },
       "expected [low, high]"},
      {[](nlohmann::json& j) {
         j["cosmology"]["Omega_k"] = {0, 1};
       },
       "\"Omega_k\" unknown"},
      {[](nlohmann::json& j) { j["cell_sise"] = 1; }, "unknown metadata key \"cell_sise\""},
      {[](nlohmann::json& j) { j.erase("cell_size"); }, "\"cell_size\": missing"},
  };
  expectRefused(baseMeta(), cases);
}

TEST(ValidityGuard, RefusesEachOutOfDomainCase) {
  const auto meta = ModelMetadata::fromJson(baseMeta(), "test");
  EXPECT_TRUE(validityViolations(meta, validDomain()).empty());
  const std::vector<std::pair<std::function<void(ApplicationDomain&)>, std::string>> cases = {
      {[](ApplicationDomain& d) { d.cell_size = 1.0; }, "cell size 1 Mpc/h differs"},
      {[](ApplicationDomain& d) { d.cell_size = 2.2; }, "cell size 2.2 Mpc/h differs"},
      {[](ApplicationDomain& d) { d.redshift = 3.0; }, "redshift 3 outside"},
      {[](ApplicationDomain& d) { d.box = 1000.0; }, "box 1000 Mpc/h outside"},
      {[](ApplicationDomain& d) { d.cosmology.Omega_m = 0.4; }, "cosmology Omega_m = 0.4 outside"},
      {[](ApplicationDomain& d) { d.cosmology.sigma8 = 0.6; }, "cosmology sigma8 = 0.6 outside"},
      {[](ApplicationDomain& d) { d.input_channels = {"momentum"}; },
       "input channels [momentum] differ"},
      {[](ApplicationDomain& d) {
         d.input_channels = {"delta", "delta"};
       },
       "input channels [delta, delta]"},
  };
  for (const auto& [mutate, expected] : cases) {
    auto d = validDomain();
    mutate(d);
    try {
      enforceValidity(meta, d, false, "sr");
      ADD_FAILURE() << "accepted; expected: " << expected;
    } catch (const ValidityError& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("force = true"), std::string::npos);
    }
    // Forced: no throw, the violation is returned for the log and the output metadata.
    const auto warnings = enforceValidity(meta, d, true, "sr");
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_NE(warnings[0].find(expected), std::string::npos);
  }
}

TEST(Model, TorchScriptModuleMatchesDirectComputation) {
  // y = w * x + b with registered parameters, built as TorchScript, saved and loaded back.
  torch::jit::Module m("Affine");
  m.register_parameter("w", torch::tensor({1.5}), false);
  m.register_parameter("b", torch::tensor({-0.25}), false);
  m.define(R"(
def forward(self, x):
    return x * self.w + self.b
)");
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + "caustic_affine.pt";
  m.save(path);
  std::ofstream(dir + "caustic_affine.json") << baseMeta().dump(2);
  const Model model = Model::load(path);
  EXPECT_EQ(model.metadata().kind, "test_affine");

  torch::manual_seed(3);
  const auto x = torch::randn({2, 1, 4, 4, 4}, torch::kFloat32);
  const auto y = model.forward(x);
  // Direct computation with the metadata normalisation.
  const auto direct = ((x - 0.5) / 2.0 * 1.5 - 0.25) * 3.0 + (-1.0);
  EXPECT_LT((y - direct).abs().max().item<double>(), 1e-5);
  EXPECT_EQ(y.sizes(), x.sizes());
  // Wrong channel count is refused.
  EXPECT_THROW(model.forward(torch::zeros({1, 2, 4, 4, 4})), std::runtime_error);
  // Missing metadata file is reported with its path.
  try {
    Model::load(path, dir + "missing.json");
    ADD_FAILURE() << "loaded without metadata";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.json"), std::string::npos);
  }
}

namespace {
// A native U-Net saved as `caustic train` saves it (weights with torch::save, the record from the
// wrapping Model's metadata: architecture, stride) in the test's temporary directory; returns
// the model path. `wrapped` receives the in-memory model.
std::string saveNativeUNet(const std::string& stem, const UNetConfig& cfg,
                           std::unique_ptr<Model>* wrapped = nullptr) {
  torch::manual_seed(5);
  UNet3d net(cfg);
  ModelMetadata meta = ModelMetadata::fromJson(baseMeta(), "test");
  meta.receptive_field = cfg.receptiveField();
  auto model = std::make_unique<Model>(net, meta);
  const std::string dir = ::testing::TempDir();
  const std::string path = dir + stem + ".pt";
  torch::save(net, path);
  std::ofstream(dir + stem + ".json") << model->metadata().toJson().dump(2) << "\n";
  if (wrapped)
    *wrapped = std::move(model);
  return path;
}

nlohmann::json readJson(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

UNetConfig smallUNet() {
  UNetConfig cfg;
  cfg.depth = 2;
  cfg.width = 4;
  return cfg;
}
} // namespace

TEST(Model, NativeUNetLoadsWithItsRecord) {
  std::unique_ptr<Model> original;
  const std::string path = saveNativeUNet("caustic_unet_ok", smallUNet(), &original);
  const Model loaded = Model::load(path);
  EXPECT_EQ(loaded.metadata().architecture, smallUNet().toJson());
  EXPECT_EQ(loaded.metadata().stride, 4);
  torch::manual_seed(7);
  const auto x = torch::randn({1, 1, 8, 8, 8}, torch::kFloat32);
  const auto y = loaded.forward(x), y0 = original->forward(x);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_TRUE(torch::equal(y, y0)) << (y - y0).abs().max().item<double>();
}

TEST(Model, ArchitectureDisagreeingWithWeightsIsRefused) {
  // torch::load alone accepts these records: it replaces every parameter with the saved tensor
  // whatever its shape (a wrong width runs with the weights' width and is recorded with the
  // record's) and ignores saved levels the module lacks (a smaller depth drops them).
  const std::string path = saveNativeUNet("caustic_unet_bad", smallUNet());
  const std::string json = ::testing::TempDir() + "caustic_unet_bad.json";
  const nlohmann::json good = readJson(json);
  struct Case {
    std::string key;
    int value;
    std::vector<std::string> expected;
  };
  const std::string saved = "down0.0.weight has shape [4, 1, 3, 3, 3] (width 4)";
  const std::vector<Case> cases = {
      {"width", 8, {"\"architecture\".width = 8", saved}},
      {"width", 2, {"\"architecture\".width = 2", saved}},
      {"depth", 1, {"\"architecture\".depth = 1", "down0..down2 (depth 2)"}},
      {"depth", 3, {"\"architecture\".depth = 3", "(depth 2)"}},
  };
  for (const auto& c : cases) {
    nlohmann::json j = good;
    j["architecture"][c.key] = c.value;
    std::ofstream(json) << j.dump(2) << "\n";
    try {
      Model::load(path);
      ADD_FAILURE() << "architecture." << c.key << " = " << c.value << " accepted";
    } catch (const std::runtime_error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("model metadata " + json), std::string::npos) << msg;
      EXPECT_NE(msg.find("disagrees with the weights in " + path), std::string::npos) << msg;
      for (const auto& s : c.expected)
        EXPECT_NE(msg.find(s), std::string::npos) << "expected '" << s << "' in: " << msg;
    }
  }
  // The record restored: loads again.
  std::ofstream(json) << good.dump(2) << "\n";
  EXPECT_NO_THROW(Model::load(path));
}

namespace {
// A model with a log1p input, a logarithmic residual output, a logarithmic output and one
// conditioning scalar.
nlohmann::json conditionedMeta() {
  auto j = baseMeta();
  j["inputs"] = nlohmann::json::parse(
      R"([{"name": "density", "mean": 0.2, "std": 1.5, "transform": "log1p", "floor": 0.001}])");
  j["outputs"] = nlohmann::json::parse(R"([
    {"name": "matter_density", "mean": 0.1, "std": 2.0, "transform": "log", "floor": 0.001,
     "residual_of": "density"},
    {"name": "gas_density", "mean": -0.3, "std": 0.7, "transform": "log", "floor": 0.001}])");
  j["conditioning"] = nlohmann::json::parse(
      R"([{"name": "baryons.log10_mc", "mean": 13.5, "std": 0.5, "range": [13.0, 14.0]}])");
  return j;
}
} // namespace

TEST(Metadata, TransformsResidualsAndConditioningRoundTrip) {
  const auto m = ModelMetadata::fromJson(conditionedMeta(), "test");
  const auto m2 = ModelMetadata::fromJson(m.toJson(), "round trip");
  EXPECT_EQ(m2.inputs[0].transform, "log1p");
  EXPECT_DOUBLE_EQ(m2.inputs[0].floor, 1e-3);
  EXPECT_EQ(m2.outputs[0].residual_of, "density");
  EXPECT_EQ(m2.outputs[1].transform, "log");
  EXPECT_TRUE(m2.outputs[1].residual_of.empty());
  ASSERT_EQ(m2.conditioning.size(), 1u);
  EXPECT_EQ(m2.conditioning[0].name, "baryons.log10_mc");
  EXPECT_DOUBLE_EQ(m2.conditioning[0].std, 0.5);
  EXPECT_DOUBLE_EQ(m2.conditioning[0].hi, 14.0);

  const JsonCases cases = {
      {[](nlohmann::json& j) { j["inputs"][0]["transform"] = "sqrt"; }, "allowed: none, log"},
      {[](nlohmann::json& j) { j["outputs"][0]["residual_of"] = "rho"; },
       "residual_of = \"rho\" is not an input channel"},
      {[](nlohmann::json& j) { j["outputs"][0]["transform"] = "none"; },
       "both or neither must be logarithmic"},
      {[](nlohmann::json& j) { j["inputs"][0]["residual_of"] = "density"; },
       "residual_of is for outputs only"},
      {[](nlohmann::json& j) { j["inputs"][0]["floor"] = 0.0; }, "floor = 0 must be > 0"},
      {[](nlohmann::json& j) { j["conditioning"][0]["std"] = 0.0; }, "must be > 0"},
      {[](nlohmann::json& j) { j["conditioning"][0].erase("range"); }, "needs \"name\" and"},
  };
  expectRefused(conditionedMeta(), cases);
}

TEST(ValidityGuard, ConditioningOutsideItsRangeOrUnsetIsRefused) {
  const auto meta = ModelMetadata::fromJson(conditionedMeta(), "test");
  auto d = validDomain();
  d.input_channels = {"density"};
  d.conditioning = {{"baryons.log10_mc", 13.2}};
  EXPECT_TRUE(validityViolations(meta, d).empty());
  d.conditioning = {{"baryons.log10_mc", 14.5}};
  auto v = validityViolations(meta, d);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].find("conditioning baryons.log10_mc = 14.5 outside the trained range [13, 14]"),
            std::string::npos)
      << v[0];
  d.conditioning.clear();
  v = validityViolations(meta, d);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_NE(v[0].find("is not set by the run"), std::string::npos) << v[0];
}

TEST(Model, TransformsResidualAndConditioningMatchDirectComputation) {
  // Two input channels reach the module (the field and the constant conditioning channel):
  // out0 = w x0 + v x1, out1 = x0.
  torch::jit::Module m("Conditioned");
  m.register_parameter("w", torch::tensor({1.5}), false);
  m.register_parameter("v", torch::tensor({-0.75}), false);
  m.define(R"(
def forward(self, x):
    a = x[:, 0:1] * self.w + x[:, 1:2] * self.v
    return torch.cat([a, x[:, 0:1]], 1)
)");
  Model model(m, ModelMetadata::fromJson(conditionedMeta(), "test"));
  torch::manual_seed(11);
  // Densities with some empty cells (1 + delta = 0 -> the floor) and negative excursions.
  auto x = torch::rand({2, 1, 4, 4, 4}, torch::kFloat32) * 3.0 - 1.0;
  x.index_put_({0, 0, 0, 0, 0}, -1.0f);
  x.index_put_({1, 0, 1, 2, 3}, -1.5f);
  EXPECT_THROW(model.forward(x), std::runtime_error); // conditioning not set
  EXPECT_THROW(model.setConditioning({13.0, 1.0}), std::runtime_error);
  model.setConditioning({13.2});
  const auto y = model.forward(x).to(torch::kFloat64);
  const auto xd = x.to(torch::kFloat64);
  const auto t = torch::log(torch::clamp_min(xd + 1.0, 1e-3));
  const auto xn = (t - 0.2) / 1.5;
  const double c = (13.2 - 13.5) / 0.5;
  const auto direct0 = torch::exp((xn * 1.5 + c * -0.75) * 2.0 + 0.1 + t);
  const auto direct1 = torch::exp(xn * 0.7 - 0.3);
  EXPECT_LT(((y.select(1, 0) - direct0.select(1, 0)) / direct0.select(1, 0)).abs().max().item<double>(),
            1e-5);
  EXPECT_LT(((y.select(1, 1) - direct1.select(1, 0)) / direct1.select(1, 0)).abs().max().item<double>(),
            1e-5);
  // The conditioning value changes the output as the module says: d ln(out0) / d value.
  model.setConditioning({13.7});
  const auto y2 = model.forward(x).to(torch::kFloat64);
  const double ratio = (torch::log(y2.select(1, 0)) - torch::log(y.select(1, 0))).mean().item<double>();
  EXPECT_NEAR(ratio, (0.5 / 0.5) * -0.75 * 2.0, 1e-4);
}

namespace {
// A halo surrogate's record: a logit presence (Platt mean/std) and a log mass.
nlohmann::json haloMeta() {
  auto j = baseMeta();
  j["kind"] = "halo_surrogate";
  j["inputs"] = nlohmann::json::parse(
      R"([{"name": "density", "mean": 0.0, "std": 1.0, "transform": "log1p", "floor": 0.001}])");
  j["outputs"] = nlohmann::json::parse(R"([
    {"name": "halo_presence", "mean": -1.5, "std": 2.0, "transform": "logit", "floor": 1e-6},
    {"name": "halo_mass", "mean": 30.0, "std": 0.5, "transform": "log", "floor": 1.0}])");
  j["halo"] = nlohmann::json::parse(R"({"presence": "halo_presence", "mass": "halo_mass",
      "log_mass_scatter": 0.4, "min_mass": 5e12, "linking_length": 0.2,
      "number_density": 0.001})");
  return j;
}
} // namespace

TEST(Metadata, HaloSurrogateRecordRoundTripsAndMalformedOnesAreRefused) {
  const auto m = ModelMetadata::fromJson(haloMeta(), "test");
  const auto m2 = ModelMetadata::fromJson(m.toJson(), "round trip");
  ASSERT_TRUE(m2.halo.has_value());
  EXPECT_EQ(m2.halo->presence, "halo_presence");
  EXPECT_EQ(m2.halo->mass, "halo_mass");
  EXPECT_DOUBLE_EQ(m2.halo->log_mass_scatter, 0.4);
  EXPECT_DOUBLE_EQ(m2.halo->min_mass, 5e12);
  EXPECT_DOUBLE_EQ(m2.halo->number_density, 1e-3);
  EXPECT_EQ(m2.outputs[0].transform, "logit");
  EXPECT_EQ(m2.outputIndex("halo_mass"), 1);
  EXPECT_EQ(m2.outputIndex("nothing"), -1);
  EXPECT_FALSE(ModelMetadata::fromJson(baseMeta(), "test").halo.has_value());
  const JsonCases cases = {
      {[](nlohmann::json& j) { j["halo"]["presence"] = "halo_mass"; },
       "presence must name an output channel with transform logit"},
      {[](nlohmann::json& j) { j["halo"]["mass"] = "halo_presence"; },
       "mass must name an output channel with transform log"},
      {[](nlohmann::json& j) { j["halo"]["min_mass"] = -1.0; }, "min_mass must be > 0"},
      {[](nlohmann::json& j) { j["halo"].erase("min_mass"); }, "expected {\"presence\""},
      {[](nlohmann::json& j) { j["halo"]["log_mass_scatter"] = -0.1; }, "must be >= 0"},
      {[](nlohmann::json& j) { j["halo"]["linking_length"] = 1.5; }, "must be in (0, 1)"},
      {[](nlohmann::json& j) { j["outputs"][0]["floor"] = 0.5; }, "must be < 0.5 for a logit"},
      {[](nlohmann::json& j) {
         j["outputs"][1]["transform"] = "logit";
         j["outputs"][1]["floor"] = 0.1;
         j["outputs"][1]["residual_of"] = "density";
       },
       "neither a logit"},
  };
  expectRefused(haloMeta(), cases);
}

TEST(Metadata, FofInputSettingsRoundTripAndMustMatchTheRunsHalos) {
  // A record trained on fof_count fields of b = 0.2, >= 20 particles: a run whose [halos] has
  // the same is valid, another b or min_particles is a violation naming both settings; a record
  // without the keys (density-only models) checks nothing.
  auto j = haloMeta();
  j["halo"]["input_fof_b"] = 0.2;
  j["halo"]["input_fof_min_particles"] = 20;
  const auto m = ModelMetadata::fromJson(ModelMetadata::fromJson(j, "test").toJson(), "round trip");
  EXPECT_DOUBLE_EQ(m.halo->input_fof_b, 0.2);
  EXPECT_EQ(m.halo->input_fof_min_particles, 20);
  EXPECT_FALSE(
      ModelMetadata::fromJson(haloMeta(), "test").toJson()["halo"].contains("input_fof_b"));
  ApplicationDomain d = validDomain();
  d.input_channels = {"density"};
  d.fof_b = 0.2;
  d.fof_min_particles = 20;
  const auto base = validityViolations(m, d).size();
  d.fof_min_particles = 30;
  auto v = validityViolations(m, d);
  ASSERT_EQ(v.size(), base + 1);
  EXPECT_NE(v.back().find("min_particles = 30"), std::string::npos) << v.back();
  d.fof_min_particles = 20;
  d.fof_b = 0.17;
  EXPECT_EQ(validityViolations(m, d).size(), base + 1);
  EXPECT_EQ(validityViolations(ModelMetadata::fromJson(haloMeta(), "test"), d).size(), base);
  j["halo"]["input_fof_min_particles"] = -3;
  expectRefused(j, {{[](nlohmann::json&) {}, "must be >= 0"}});
}

TEST(Model, LogitOutputIsTheCalibratedSigmoid) {
  // An identity module on two channels: presence = sigmoid(-1.5 + 2 y), mass = exp(30 + 0.5 y).
  torch::jit::Module m("Two");
  m.define(R"(
def forward(self, x):
    return torch.cat([x, 2.0 * x], 1)
)");
  Model model(m, ModelMetadata::fromJson(haloMeta(), "test"));
  auto x = torch::rand({1, 1, 4, 4, 4}, torch::kFloat32) * 4.0 - 0.9;
  const auto y = model.forward(x).to(torch::kFloat64);
  const auto t = torch::log(torch::clamp_min(x.to(torch::kFloat64) + 1.0, 1e-3));
  const auto p = 1.0 / (1.0 + torch::exp(-(-1.5 + 2.0 * t)));
  const auto mass = torch::exp(30.0 + 0.5 * 2.0 * t);
  EXPECT_LT((y.select(1, 0) - p.select(1, 0)).abs().max().item<double>(), 1e-6);
  EXPECT_LT(((y.select(1, 1) - mass.select(1, 0)) / mass.select(1, 0)).abs().max().item<double>(),
            1e-5);
  // The transform and its inverse: logit of a probability clamped to [floor, 1 - floor].
  Channel c("p");
  c.transform = "logit";
  c.floor = 1e-3;
  const auto q = torch::tensor({0.0, 0.25, 0.5, 1.0}, torch::kFloat64);
  const auto tq = transformChannel(c, q);
  EXPECT_NEAR(tq[1].item<double>(), std::log(0.25 / 0.75), 1e-12);
  EXPECT_NEAR(tq[0].item<double>(), std::log(1e-3 / (1 - 1e-3)), 1e-9);
  EXPECT_NEAR(untransformChannel(c, tq)[1].item<double>(), 0.25, 1e-12);
}
