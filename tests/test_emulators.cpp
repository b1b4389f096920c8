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
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases = {
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
  for (const auto& [mutate, expected] : cases) {
    auto j = baseMeta();
    mutate(j);
    try {
      ModelMetadata::fromJson(j, "case");
      ADD_FAILURE() << "accepted; expected: " << expected;
    } catch (const std::runtime_error& e) {
      EXPECT_NE(std::string(e.what()).find(expected), std::string::npos) << e.what();
    }
  }
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
