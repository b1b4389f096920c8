// The per-group halo surrogate's pieces: the mutual best match of groups by their members
// (emulators/training/group_training), and the record (emulators/runtime/group_surrogate): its
// network against a forward pass written out here, the JSON round trip and refused records.
#include "emulators/runtime/group_surrogate.hpp"
#include "emulators/training/group_training.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

using namespace caustic;

namespace {
struct Groups {
  std::vector<std::uint64_t> offset, count, members;
  void add(const std::vector<std::uint64_t>& ids) {
    offset.push_back(members.size());
    count.push_back(ids.size());
    members.insert(members.end(), ids.begin(), ids.end());
  }
};
std::vector<std::uint64_t> range(std::uint64_t a, std::uint64_t b) {
  std::vector<std::uint64_t> v;
  for (auto i = a; i < b; ++i)
    v.push_back(i);
  return v;
}
std::vector<std::uint64_t> join(std::vector<std::uint64_t> a, const std::vector<std::uint64_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

GroupSurrogateRecord smallRecord(unsigned seed) {
  GroupSurrogateRecord r;
  r.radii = {2.0};
  r.features = {"ln_members", "ln_radius", "ln_sigma_v", "ln_density_R2"};
  r.feature_mean = {3.0, -1.0, 1.0, 0.5};
  r.feature_std = {0.5, 0.4, 0.3, 1.2};
  r.hidden = {3};
  r.log_mass_offset = 28.0;
  r.log_mass_scatter = 0.2;
  r.min_particles = 50;
  r.feature_mesh = 64;
  r.box = 64.0;
  r.particle_mass = 1e11;
  r.a = 1.0;
  r.omega_m = 0.3;
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g(0.0, 0.7);
  r.weight = {std::vector<double>(12), std::vector<double>(6)};
  r.bias = {std::vector<double>(3), std::vector<double>(2)};
  for (auto& l : r.weight)
    for (auto& w : l)
      w = static_cast<float>(g(rng)); // float-exact: the network runs in float32
  for (auto& l : r.bias)
    for (auto& w : l)
      w = static_cast<float>(g(rng));
  return r;
}
} // namespace

TEST(GroupMatch, MutualBestByMembers) {
  Groups a, b;
  a.add(range(0, 10));                     // a0: 8 members in b0, 2 unmatched -> b0
  a.add(range(10, 15));                    // a1: 2 in b0, 3 in b1 -> b1
  a.add(range(15, 18));                    // a2: members in no group of b -> none
  a.add(range(20, 26));                    // a3 and a4 split b3; a3 holds more of it -> b3
  a.add(range(26, 30));                    // a4: its best is b3, whose best is a3 -> none
  a.add({40, 41, 50, 51});                 // a5: a tie between b4 and b5 -> the smaller index, b4
  b.add(join(range(0, 8), range(10, 12))); // b0
  b.add(range(12, 15));                    // b1
  b.add({100, 101});                       // b2: no member in a
  b.add(range(20, 30));                    // b3
  b.add({40, 41, 60});                     // b4
  b.add({50, 51, 61});                     // b5: its best is a5, but a5 chose b4
  std::vector<long> picked;
  const auto m = matchGroups(a.offset, a.count, a.members, b.offset, b.count, b.members, &picked);
  ASSERT_EQ(m.size(), 6u);
  // Each group of b's best partner in a (what model.mass_target = "assigned" sums over): b0 -> a0
  // (8 of 10), b1 -> a1, b2 -> none, b3 -> a3 (6 against a4's 4), b4 -> a5, b5 -> a5.
  EXPECT_EQ(picked, (std::vector<long>{0, 1, -1, 3, 5, 5}));
  EXPECT_EQ(m[0], 0);
  EXPECT_EQ(m[1], 1);
  EXPECT_EQ(m[2], -1);
  EXPECT_EQ(m[3], 3);
  EXPECT_EQ(m[4], -1);
  EXPECT_EQ(m[5], 4);
  // No group matched twice.
  const auto back = matchGroups(b.offset, b.count, b.members, a.offset, a.count, a.members);
  for (std::size_t g = 0; g < m.size(); ++g)
    if (m[g] >= 0) {
      EXPECT_EQ(back[m[g]], static_cast<long>(g));
    }
}

TEST(GroupSurrogate, NetworkMatchesAForwardPassWrittenOut) {
  const auto rec = smallRecord(3);
  const GroupSurrogate model(rec);
  const std::vector<double> f = {3.2, -0.8, 1.4, 0.1, 4.5, -1.5, 0.2, 2.0};
  const auto p = model.predict(f);
  ASSERT_EQ(p.presence.size(), 2u);
  for (int g = 0; g < 2; ++g) {
    double x[4], h[3], o[2];
    for (int i = 0; i < 4; ++i)
      x[i] = (f[4 * g + i] - rec.feature_mean[i]) / rec.feature_std[i];
    for (int j = 0; j < 3; ++j) {
      double s = rec.bias[0][j];
      for (int i = 0; i < 4; ++i)
        s += rec.weight[0][4 * j + i] * x[i];
      h[j] = s / (1.0 + std::exp(-s)); // SiLU
    }
    for (int j = 0; j < 2; ++j) {
      o[j] = rec.bias[1][j];
      for (int i = 0; i < 3; ++i)
        o[j] += rec.weight[1][3 * j + i] * h[i];
    }
    EXPECT_NEAR(p.presence[g], 1.0 / (1.0 + std::exp(-o[0])), 1e-5);
    EXPECT_NEAR(p.log_mass[g], o[1] + rec.log_mass_offset, 1e-5);
  }
  // The JSON round trip gives the same network.
  const auto again = GroupSurrogateRecord::fromJson(rec.toJson(), "test");
  const auto q = GroupSurrogate(again).predict(f);
  for (int g = 0; g < 2; ++g) {
    EXPECT_EQ(q.presence[g], p.presence[g]);
    EXPECT_EQ(q.log_mass[g], p.log_mass[g]);
  }
  EXPECT_THROW(model.predict({1.0, 2.0, 3.0}), std::invalid_argument);
}

TEST(GroupSurrogate, RefusesBadRecords) {
  const auto good = smallRecord(4).toJson();
  auto expectRefused = [&](const std::function<void(nlohmann::json&)>& edit,
                           const std::string& key) {
    auto j = good;
    edit(j);
    try {
      GroupSurrogateRecord::fromJson(j, "record");
      ADD_FAILURE() << "accepted a record with a bad " << key;
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find(key), std::string::npos) << e.what();
    }
  };
  expectRefused([](auto& j) { j["format"] = "other"; }, "format");
  expectRefused([](auto& j) { j["kind"] = "unet"; }, "kind");
  expectRefused([](auto& j) { j["feature_std"][1] = 0.0; }, "feature_std");
  expectRefused([](auto& j) { j["features"].push_back("extra"); }, "features");
  expectRefused([](auto& j) { j["layers"][0]["weight"].erase(0); }, "weight");
  expectRefused([](auto& j) { j["layers"][1]["bias"].push_back(1.0); }, "weight/bias");
  expectRefused([](auto& j) { j["layers"].erase(1); }, "layers");
  expectRefused([](auto& j) { j["presence_threshold"] = 1.5; }, "presence_threshold");
  expectRefused([](auto& j) { j["min_particles"] = 0; }, "min_particles");
  expectRefused([](auto& j) { j.erase("box"); }, "box");
  auto withShift = [](nlohmann::json& j) {
    j["position_vectors"] = {"momentum", "displacement"};
    j["position_coefficients"] = {0.1, -0.2};
  };
  EXPECT_NO_THROW(GroupSurrogateRecord::fromJson(
      [&] {
        auto j = good;
        withShift(j);
        return j;
      }(),
      "record"));
  expectRefused(
      [&](auto& j) {
        withShift(j);
        j["position_vectors"][1] = "velocity";
      },
      "position_vectors");
  expectRefused(
      [&](auto& j) {
        withShift(j);
        j["position_coefficients"].erase(1);
      },
      "position_coefficients");
  expectRefused(
      [&](auto& j) {
        withShift(j);
        j.erase("position_vectors");
      },
      "position_vectors");
}

TEST(GroupSurrogate, PositionShiftIsTheLinearCombinationOfTheVectors) {
  auto rec = smallRecord(5);
  // No correction: zeros.
  const std::vector<double> u = {1, 2, 3, 0.5, -1, 2,  // group 0: p, psi
                                 0, 0, 1, 2,   2,  2}; // group 1
  EXPECT_EQ(GroupSurrogate(rec).positionShift(u), std::vector<double>(6, 0.0));
  rec.position_vectors = {"momentum", "displacement"};
  rec.position_coefficients = {0.01, -0.25};
  const auto again = GroupSurrogateRecord::fromJson(rec.toJson(), "test");
  EXPECT_EQ(again.position_coefficients, rec.position_coefficients);
  const auto shift = GroupSurrogate(again).positionShift(u);
  ASSERT_EQ(shift.size(), 6u);
  for (int g = 0; g < 2; ++g)
    for (int a = 0; a < 3; ++a) {
      const double* v = &u[6 * g];
      EXPECT_DOUBLE_EQ(shift[3 * g + a], 0.01 * v[a] - 0.25 * v[3 + a]);
    }
  EXPECT_THROW(GroupSurrogate(again).positionShift({1.0, 2.0, 3.0, 4.0}), std::invalid_argument);
}

TEST(GroupTrainingLoss, EqualsTheSumsWrittenOut) {
  // Five groups: logits, mu, presence, target l. Group 3 is absent with an l that would overflow
  // exp(): the loss must ignore it.
  const std::vector<double> logit = {0.3, -1.2, 2.0, -0.4, 0.9}, mu = {0.1, -0.5, 1.3, 0.2, -2.0};
  const std::vector<double> pres = {1, 0, 1, 0, 1}, tgt = {0.4, 0.0, 1.0, 1000.0, -1.5};
  std::vector<float> o;
  for (int g = 0; g < 5; ++g)
    o.insert(o.end(), {static_cast<float>(logit[g]), static_cast<float>(mu[g])});
  const auto to = torch::tensor(o).reshape({5, 2}).to(torch::kFloat64);
  const auto tp = torch::tensor(pres, torch::kFloat64), tl = torch::tensor(tgt, torch::kFloat64);
  const double n = 7, np = 4, w = 2.5, c = 0.8; // the full batch: 7 groups, 4 present
  double bce = 0, mse = 0, field = 0;
  for (int g = 0; g < 5; ++g) {
    const double x = static_cast<float>(logit[g]), m = static_cast<float>(mu[g]);
    const double s = 1 / (1 + std::exp(-x));
    bce -= pres[g] * std::log(s) + (1 - pres[g]) * std::log(1 - s);
    mse += pres[g] * (m - tgt[g]) * (m - tgt[g]);
    const double d = c * (s * std::exp(m) - (pres[g] > 0 ? std::exp(tgt[g]) : 0.0));
    field += d * d;
  }
  const double plain = groupTrainingLoss(to, tp, tl, n, np, 0.0, c).item<double>();
  EXPECT_NEAR(plain, bce / n + mse / np, 1e-12);
  const double full = groupTrainingLoss(to, tp, tl, n, np, w, c).item<double>();
  EXPECT_NEAR(full, bce / n + mse / np + w * field / n, 1e-12);
  // Shares of the batch (ranks) add up to the whole.
  const double a = groupTrainingLoss(to.slice(0, 0, 2), tp.slice(0, 0, 2), tl.slice(0, 0, 2), n, np,
                                     w, c)
                       .item<double>(),
               b = groupTrainingLoss(to.slice(0, 2, 5), tp.slice(0, 2, 5), tl.slice(0, 2, 5), n, np,
                                     w, c)
                       .item<double>();
  EXPECT_NEAR(a + b, full, 1e-12);
  // The gradient with respect to the outputs against central differences.
  auto x = to.clone().requires_grad_(true);
  groupTrainingLoss(x, tp, tl, n, np, w, c).backward();
  const auto grad = x.grad();
  for (int g = 0; g < 5; ++g)
    for (int k = 0; k < 2; ++k) {
      const double h = 1e-6;
      auto up = to.clone(), dn = to.clone();
      up[g][k] += h;
      dn[g][k] -= h;
      const double fd = (groupTrainingLoss(up, tp, tl, n, np, w, c).item<double>() -
                         groupTrainingLoss(dn, tp, tl, n, np, w, c).item<double>()) /
                        (2 * h);
      EXPECT_NEAR(grad[g][k].item<double>(), fd, 1e-7) << "group " << g << ", output " << k;
    }
}
