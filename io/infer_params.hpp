#pragma once
// Parameters of `caustic infer`: a run's parameter file (the forward model: [cosmology] is the
// starting point, [simulation] the model, [output] the directory) plus an [inference] section
// (the data, its noise, the unknowns, the annealing schedule) and, for mocks, [inference.mock].
#include "io/params.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace caustic {

struct InferMockParams {
  std::uint64_t seed = 0;       // white noise of the truth (default: simulation.seed)
  std::uint64_t noise_seed = 1; // the data's noise
  double Omega_m = 0.0;         // the truth (default: [cosmology])
  double sigma8 = 0.0;
  double bias = 1.0;
};

struct InferHmcParams {
  bool enabled = false; // [inference.hmc] present
  int samples = 200;
  int burn_in = 50;
  int leapfrog_steps = 10;
  double step_size = 0.05;
  std::uint64_t seed = 1;
  // The fitted parameters' expected posterior widths (inference.fit's order): their momenta's
  // masses 1 / sigma^2. Empty: the Laplace Hessian's diagonal, or unit masses without Laplace.
  std::vector<double> parameter_sigma;
  // The noise partially centred on the fitted parameters while HMC moves them
  // (PosteriorObjective's centring, weights c / (1 + c) from the preconditioner's curvature).
  bool centring = false;
};

// [inference.muse]: the parameters by MUSE (infer/muse.hpp) instead of the joint MAP. Simulation
// i draws its white noise from seed + 2 i and its data noise from seed + 2 i + 1.
struct InferMuseParams {
  bool enabled = false; // [inference.muse] present
  int simulations = 20;
  int iterations = 2;     // Newton steps (the most, with a tolerance)
  double tolerance = 0.0; // > 0: stop at a step shorter than this many sigmas (infer/muse.hpp)
  double step = 0.02;
  double max_step = 0.25;
  bool final_covariance = true; // H and J measured again at the estimate
  bool broyden = true;          // the Newton steps' H updated by Broyden after each step
  std::uint64_t seed = 1000000;
};

struct InferParams {
  Params run;                    // everything but [inference]
  std::string data;              // HDF5 field file (io/fields.hpp layout); "" with a mock
  std::string dataset = "delta"; // /Fields/<dataset>
  std::string mask;              // dataset of weights in the data file ("" = none)
  double variance = 0.0;         // noise variance per cell, or
  double number_density = 0.0;   // a tracer density [(h/Mpc)^3]: variance 1 / (n V_cell)
  std::vector<std::string> fit;  // free parameters: Omega_m, sigma8, bias
  double bias = 1.0;             // b (its start when fitted)
  std::vector<double> smoothing; // the annealing stages' R [Mpc/h], descending
  std::vector<int> iterations;   // L-BFGS iterations per stage
  int fit_from_stage = 0;        // the first stage that moves the parameters (= stages: none)
  int memory = 10;
  double gradient_tolerance = 1e-5;
  int preconditioner_probes = 2; // Gauss-Newton probes of the Fourier preconditioner (0: none)
  int checkpoint_every = 20;     // MAP iterations (HMC trajectories) between checkpoints (0: only on a stop)
  bool laplace = true;           // the Laplace covariance of the fitted parameters
  bool centred_prior = true;     // prior = "centred" (1/2 log det S(theta) included) or "white"
  InferHmcParams hmc;
  InferMuseParams muse;
  bool mock = false; // [inference.mock] present
  InferMockParams truth;
  std::string toml; // the effective text, [inference] included

  // Noise variance per cell of the mesh.
  double cellVariance() const;
  std::string hash() const;
};

// Reads `path` with "section.key=value" overrides (any section, [inference] included) and
// validates everything; ParamError names the setting, its value and what is allowed.
InferParams loadInferParams(const std::string& path, const std::vector<std::string>& overrides,
                            int nranks);
InferParams parseInferParams(const std::string& text, const std::vector<std::string>& overrides,
                             int nranks, const std::string& base_dir = ".",
                             const std::string& source = "<string>");

} // namespace caustic
