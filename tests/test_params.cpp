// Parameter parsing: a valid file, overrides, and a table of bad inputs with their messages.
#include "io/params.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

using namespace caustic;

namespace {

const char* kValid = R"(
[cosmology]
Omega_m = 0.3
Omega_b = 0.05
h = 0.7
n_s = 0.96
sigma8 = 0.8

[simulation]
box = 100.0
particles = 32
mesh = 64
a_start = 0.02
a_end = 1.0
steps = 10
seed = 7

[output]
directory = "out"
a = [0.5, 1.0]
)";

std::string tempFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

struct BadCase {
  std::string name;
  std::string text;                   // full TOML, or empty for kValid
  std::vector<std::string> overrides; // applied on top
  int nranks;
  std::string expected; // substring of the message
};

} // namespace

TEST(Params, ValidFileParses) {
  const Params p = parseParams(kValid, {}, 2);
  EXPECT_DOUBLE_EQ(p.cosmology.Omega_m, 0.3);
  EXPECT_DOUBLE_EQ(p.cosmology.w0, -1.0);
  EXPECT_EQ(p.simulation.particles, 32);
  EXPECT_EQ(p.simulation.mesh, 64);
  EXPECT_EQ(p.simulation.seed, 7u);
  EXPECT_EQ(p.simulation.lpt_order, 2);
  EXPECT_EQ(p.power.type, PowerParams::Type::EisensteinHu);
  ASSERT_EQ(p.output.a.size(), 2u);
  EXPECT_DOUBLE_EQ(p.output.a[0], 0.5);
  EXPECT_EQ(p.hash().size(), 16u);
}

TEST(Params, OverridesApplyWithTomlTypes) {
  const Params p =
      parseParams(kValid,
                  {"simulation.steps=20", "simulation.spacing=log", "cosmology.w0=-0.9",
                   "output.a=[0.25, 0.5]", "simulation.precision=\"double\""},
                  1);
  EXPECT_EQ(p.simulation.steps, 20);
  EXPECT_EQ(p.simulation.spacing, SimulationParams::Spacing::Log);
  EXPECT_DOUBLE_EQ(p.cosmology.w0, -0.9);
  EXPECT_DOUBLE_EQ(p.output.a[0], 0.25);
  EXPECT_TRUE(p.simulation.double_precision);
  EXPECT_FALSE(p.simulation.single_particles); // particles in double unless asked
  EXPECT_TRUE(
      parseParams(kValid, {"simulation.particle_precision=single"}, 1).simulation.single_particles);
  // The effective parameters change the hash.
  EXPECT_NE(p.hash(), parseParams(kValid, {}, 1).hash());
  // A bare word, also a relative path, is a string.
  const Params q = parseParams(kValid, {"output.directory=../out/run_1.5"}, 1);
  EXPECT_EQ(q.output.directory, "../out/run_1.5");
}

TEST(Params, TabulatedPowerFileResolvesRelativeToParameterFile) {
  std::string table = "# k P\n";
  for (int i = 0; i <= 100; ++i) {
    const double k = std::pow(10.0, -4.0 + 6.0 * i / 100.0);
    table += std::to_string(k) + " " + std::to_string(1e4 * k / (1 + std::pow(k / 0.02, 3))) + "\n";
  }
  tempFile("caustic_params_pk.dat", table);
  const std::string params = tempFile(
      "caustic_params_tab.toml",
      std::string(kValid) + "\n[power]\ntype = \"tabulated\"\nfile = \"caustic_params_pk.dat\"\n");
  const Params p = loadParams(params, {}, 1);
  EXPECT_EQ(p.power.type, PowerParams::Type::Tabulated);
  EXPECT_FALSE(p.power.normalize);
}

TEST(Params, BadInputsAreRefusedWithClearMessages) {
  const std::string malformed =
      tempFile("caustic_bad_table.dat", "# k P\n0.001 10\n0.01 100\nnot-a-number\n");
  const std::string narrow =
      tempFile("caustic_narrow_table.dat", "0.1 10\n0.2 9\n0.3 8\n0.4 7\n0.5 6\n");
  const std::string unsorted =
      tempFile("caustic_unsorted_table.dat", "0.001 10\n0.1 9\n0.01 8\n1 7\n10 6\n");
  const std::vector<BadCase> cases = {
      {"negative box",
       "",
       {"simulation.box=-5"},
       1,
       "simulation.box = -5: out of range; allowed: > 0"},
      {"zero box", "", {"simulation.box=0"}, 1, "simulation.box = 0: out of range"},
      {"Omega_m above 1",
       "",
       {"cosmology.Omega_m=1.5"},
       1,
       "cosmology.Omega_m = 1.5: out of range; allowed: (0, 1]"},
      {"Omega_m zero", "", {"cosmology.Omega_m=0"}, 1, "cosmology.Omega_m = 0: out of range"},
      {"Omega_b above Omega_m", "", {"cosmology.Omega_b=0.4"}, 1, "cosmology.Omega_b = 0.4"},
      {"a_start after a_end",
       "",
       {"simulation.a_start=0.5", "simulation.a_end=0.4", "output.a=[0.45]"},
       1,
       "simulation.a_end = 0.4: not allowed; expected a_start (0.5) < a_end"},
      {"a_start equal a_end",
       "",
       {"simulation.a_start=0.5", "simulation.a_end=0.5"},
       1,
       "simulation.a_end = 0.5"},
      {"mesh below particles",
       "",
       {"simulation.mesh=16"},
       1,
       "simulation.mesh = 16: smaller than the particle grid (simulation.particles = 32)"},
      {"more ranks than mesh planes",
       "",
       {},
       100,
       "simulation.mesh = 64: more MPI ranks (100) than mesh planes"},
      {"more ranks than lattice planes",
       "",
       {},
       40,
       "simulation.particles = 32: more MPI ranks (40) than lattice planes"},
      {"odd particle count",
       "",
       {"simulation.particles=33"},
       1,
       "simulation.particles = 33: not allowed"},
      {"typo in key", "", {"simulation.stpes=20"}, 1, "simulation.stpes = 20: unknown key"},
      {"unknown section",
       std::string(kValid) + "\n[simulaton]\nsteps = 3\n",
       {},
       1,
       "[simulaton]: unknown section"},
      {"string for integer",
       "",
       {"simulation.particles=\"64\""},
       1,
       "simulation.particles = \"64\": wrong type (string); expected"},
      {"boolean for number",
       "",
       {"simulation.box=true"},
       1,
       "simulation.box = true: wrong type (boolean)"},
      {"missing required key",
       "[cosmology]\nOmega_b = 0.05\nh = 0.7\nn_s = 0.96\nsigma8 = 0.8\n[simulation]\nbox = "
       "100.0\nparticles = 16\n",
       {},
       1,
       "cosmology.Omega_m: missing"},
      {"missing section",
       "[simulation]\nbox = 100.0\nparticles = 16\n",
       {},
       1,
       "[cosmology]: missing section"},
      {"missing power file",
       "",
       {"power.type=tabulated", "power.file=/nonexistent/pk.dat"},
       1,
       "power.file = \"/nonexistent/pk.dat\": no such file"},
      {"tabulated without file", "", {"power.type=tabulated"}, 1, "power.file: missing"},
      {"malformed table",
       "",
       {"power.type=tabulated", "power.file=\"" + malformed + "\""},
       1,
       "line 4 is malformed"},
      {"table misses k range",
       "",
       {"power.type=tabulated", "power.file=\"" + narrow + "\""},
       1,
       "the table covers k in [0.1, 0.5] h/Mpc but the simulation needs"},
      {"unsorted table",
       "",
       {"power.type=tabulated", "power.file=\"" + unsorted + "\""},
       1,
       "is not strictly increasing"},
      {"unknown power type",
       "",
       {"power.type=camb"},
       1,
       "power.type = \"camb\": not allowed; expected one of"},
      {"bad LPT order", "", {"simulation.lpt_order=3"}, 1, "simulation.lpt_order = 3: not allowed"},
      {"bad spacing",
       "",
       {"simulation.spacing=cubic"},
       1,
       "simulation.spacing = \"cubic\": not allowed"},
      {"negative seed", "", {"simulation.seed=-1"}, 1, "simulation.seed = -1: negative"},
      {"zero steps", "", {"simulation.steps=0"}, 1, "simulation.steps = 0: out of range"},
      {"output a outside run", "", {"output.a=[1.5]"}, 1, "output.a = 1.5: outside the run"},
      {"output a not ascending", "", {"output.a=[0.5, 0.3]"}, 1, "output.a = 0.3: not after 0.5"},
      {"TOML syntax error", "[cosmology]\nOmega_m = = 0.3\n", {}, 1, "TOML syntax error"},
      {"override without section", "", {"steps=3"}, 1, "--set steps=3: expected section.key=value"},
      {"override beyond 64 bits",
       "",
       {"simulation.seed=18446744073709551616"},
       1,
       "--set simulation.seed=18446744073709551616: 18446744073709551616 is not a number TOML can "
       "hold"},
      {"override beyond double",
       "",
       {"simulation.box=1e400"},
       1,
       "1e400 is not a number TOML can hold"},
      {"malformed number", "", {"cosmology.h=0.6.7"}, 1, "0.6.7 is not a number TOML can hold"},
      {"empty output list",
       "",
       {"output.a=[]"},
       1,
       "output.a = []: expected at least one scale factor"},
      {"mesh below the stencil",
       "",
       {"simulation.particles=4", "simulation.mesh=4"},
       1,
       "simulation.mesh = 4: not allowed; expected an even integer in [8, 16384]"},
      {"unknown gravity kernel",
       "",
       {"gravity.kernel=spectral"},
       1,
       "gravity.kernel = \"spectral\": not allowed; expected one of \"finite_difference\", "
       "\"exact\""},
      {"bad gravity window",
       "",
       {"gravity.window=ngp"},
       1,
       "gravity.window = \"ngp\": not allowed"},
      {"bad FFT planner",
       "",
       {"fft.plan=exhaustive"},
       1,
       "fft.plan = \"exhaustive\": not allowed; expected one of \"estimate\", \"measure\", "
       "\"patient\""},
      {"empty FFT wisdom path",
       "",
       {"fft.wisdom=\"\""},
       1,
       "fft.wisdom = \"\": expected a file path"},
      {"typo in fft key", "", {"fft.wisdon=\"w\""}, 1, "fft.wisdon = \"w\": unknown key"},
      {"bad linking length",
       "",
       {"halos.linking_length=1.5"},
       1,
       "halos.linking_length = 1.5: out of range"},
      {"halo a not an output",
       "",
       {"halos.a=[0.7]"},
       1,
       "halos.a = 0.7: not an output scale factor"},
      {"w0 + wa not negative",
       "",
       {"cosmology.w0=-0.5", "cosmology.wa=1.0"},
       1,
       "cosmology.wa = 1: out of range"},
      {"particle precision not a choice",
       "",
       {"simulation.particle_precision=half"},
       1,
       "simulation.particle_precision"},
      {"single-precision particles on a double mesh",
       "",
       {"simulation.particle_precision=single", "simulation.precision=double"},
       1,
       "simulation.particle_precision = \"single\": needs the single-precision mesh"},
  };
  ASSERT_GE(cases.size(), 15u);
  for (const auto& c : cases) {
    try {
      parseParams(c.text.empty() ? kValid : c.text, c.overrides, c.nranks);
      ADD_FAILURE() << c.name << ": accepted, expected an error containing: " << c.expected;
    } catch (const ParamError& e) {
      EXPECT_NE(std::string(e.what()).find(c.expected), std::string::npos)
          << c.name << ": message was\n  " << e.what() << "\nexpected it to contain\n  "
          << c.expected;
    }
  }
}

TEST(Params, EmulatorHookSections) {
  const std::string model = tempFile("hook_model.pt", "not read by the parser");
  const std::string base = std::string(kValid) + "\n[emulators.sr]\nmodel = \"" + model + "\"\n";
  const Params p = parseParams(base, {}, 1);
  ASSERT_EQ(p.emulators.size(), 1u);
  EXPECT_EQ(p.emulators[0].space, "eulerian");
  EXPECT_EQ(p.emulators[0].inputs, std::vector<std::string>{"density"});
  EXPECT_FALSE(p.emulators[0].every_step);
  const Params q =
      parseParams(base + "space = \"lagrangian\"\ninputs = [\"displacement_x\", \"momentum_z\"]\n"
                         "every_step = true\n",
                  {}, 1);
  EXPECT_EQ(q.emulators[0].inputs.size(), 2u);
  EXPECT_TRUE(q.emulators[0].every_step);
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"space = \"fourier\"\n", "emulators.sr.space = \"fourier\""},
      {"inputs = [\"velocity_x\"]\n", "\"velocity_x\" is not a eulerian channel"},
      {"space = \"lagrangian\"\ninputs = [\"density\"]\n", "\"density\" is not a lagrangian"},
      {"inputs = []\n", "expected at least one channel"},
      {"inputs = [1]\n", "expected a string"},
      {"every_step = 1\n", "emulators.sr.every_step"},
  };
  for (const auto& [extra, msg] : bad) {
    try {
      parseParams(base + extra, {}, 1);
      ADD_FAILURE() << "accepted: " << extra;
    } catch (const ParamError& e) {
      EXPECT_NE(std::string(e.what()).find(msg), std::string::npos) << extra << " -> " << e.what();
    }
  }
}
