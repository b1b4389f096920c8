// Emulator runtime: metadata parsing, the validity guard, TorchScript models through Model.
#include "emulators/runtime/model.hpp"

#include <gtest/gtest.h>

#include <fstream>

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
