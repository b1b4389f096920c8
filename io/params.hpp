#pragma once
// Run parameters: one immutable, validated struct built from a TOML file plus command-line
// overrides. Every defect raises ParamError naming the key, the value and what is allowed.
#include "pm/analysis/group_contraction.hpp"
#include "pm/baryons/bcm.hpp"
#include "pm/cosmology/cosmology.hpp"
#include "pm/stepping/stepping.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace caustic {

class ParamError : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

struct PowerParams {
  enum class Type { EisensteinHu, Tabulated };
  Type type = Type::EisensteinHu;
  std::string file;      // tabulated k [h/Mpc], P(k) [(Mpc/h)^3] at a = 1 (resolved path)
  bool normalize = true; // rescale to cosmology.sigma8 (default: true for EH, false for tables)
};

struct SimulationParams {
  double box = 0;    // side [Mpc/h]
  int particles = 0; // per side
  int mesh = 0;      // PM mesh per side
  double a_start = 0.02;
  double a_end = 1.0;
  int steps = 10;
  enum class Spacing { Linear, Log };
  Spacing spacing = Spacing::Linear; // of the time steps in a
  int lpt_order = 2;
  std::uint64_t seed = 0;
  bool fixed_amplitude = false;
  bool paired = false;
  bool double_precision = false; // mesh precision (float by default, as is usual for PM)
  bool single_particles = false; // x and p stored as float (particle_precision = "single")
  double lattice_offset = 0.0;   // [Mpc/h] of the particle lattice on every axis (default: half
                                 // a PM cell)
};

// A force correction of the hybrid PM, [gravity.correction]: a trained record (a potential
// correction applied at every force, or PGD at the outputs) or PGD with parameters given here.
struct ForceCorrectionParams {
  bool enabled = false;
  std::string model;  // JSON record written by `caustic train` (resolved path); "" for inline PGD
  bool force = false; // apply outside the record's validity domain (recorded in the outputs)
  // Inline PGD (kind = "pgd"): parameters at scale factors a (one entry: the same at all a).
  std::vector<double> a, alpha, k_l, k_s;
};

// The engine's step spacing of these parameters.
inline Spacing stepSpacing(const SimulationParams& s) {
  return s.spacing == SimulationParams::Spacing::Log ? Spacing::Log : Spacing::Linear;
}

struct GravityParams {
  std::string window = "cic";               // paint/readout window: cic | tsc
  std::string kernel = "finite_difference"; // finite_difference | exact
  bool deconvolve = false;                  // divide by the paint and readout windows
  ForceCorrectionParams correction;
};

struct HalosParams {
  bool enabled = false;    // in-situ FoF at the halo scale factors
  double b = 0.2;          // linking length in units of the mean particle separation
  int min_particles = 20;  // smallest group in the catalogue
  bool member_ids = false; // write the members' IDs
  std::vector<double> a;   // scale factors (default: output.a); each must be an output a
};

// FFT planning, [fft].
// [baryons]: the baryon correction model (pm/baryons/bcm.hpp) used by `caustic baryonify`.
struct BaryonsParams {
  BcmParameters bcm; // log10_mc, mu, theta_ej, gamma, delta, eta, delta_eta, r_max_factor, f_nt
  double t_igm = 1e4; // temperature of the gas outside haloes [K]
  int mesh = 0;       // mesh of the power spectra (0: twice the particle grid)
  int field_mesh = 0; // mesh of the gas, temperature and pressure fields (0: the particle grid)
  int min_particles = 0; // smallest FoF group baryonified (0: every group of the catalogue)
  bool enabled = false;  // `caustic run`: baryonify at the scale factors a (in-situ)
  std::vector<double> a; // default: halos.a; each must be one of halos.a
};

struct FftParams {
  std::string plan = "measure"; // FFTW planner: estimate | measure | patient
  std::string wisdom;           // wisdom file shared between runs (read, then updated); "": none
  // Without `wisdom`: keep the plans in the per-user cache (wisdomCachePath in src/common), one
  // file per mesh, rank count and precision, so that only the first run of a configuration
  // measures.
  bool cache = true;
};

// Checkpoints, [checkpoint].
struct CheckpointParams {
  int every_steps = 0;        // 0: not by step count
  double every_minutes = 0.0; // wall-clock minutes between checkpoints; 0: not by time
  bool on_signal = true;      // write one when stopped by SIGTERM/SIGUSR1/SIGINT
  int keep = 2;               // newest checkpoints kept
  std::string directory;      // default: <output.directory>/checkpoints
};

// An in-situ emulator hook, [emulators.NAME].
struct EmulatorHookParams {
  std::string name;
  // "torch": a TorchScript or native model run by the emulator runtime (LibTorch); "ldl": an LDL
  // baryon painter record of `caustic ldl-fit` (ldl.json), run without LibTorch on the particles.
  std::string kind = "torch";
  std::string model;               // TorchScript file or LDL record (resolved path)
  std::string metadata;            // its JSON record (default: model path with .json)
  std::string space = "eulerian";  // eulerian (PM mesh) | lagrangian (particle lattice)
  std::vector<std::string> inputs; // channels given to the model (see hookChannels)
  std::vector<double> a;           // output scale factors where it runs (default: output.a)
  bool every_step = false;         // also run after every step
  int radius = -1;                 // ghost planes per side (default: the model's receptive field)
  int tile_planes = 32;            // x-planes evaluated at once
  int mesh = 0; // eulerian: the mesh the input channels are painted on (0: the PM mesh)
  bool force = false; // apply outside the model's validity domain (recorded in the output)
  // Halo surrogates: the seed of the catalogue sampler (default: simulation.seed); an error for
  // other models.
  std::optional<std::uint64_t> seed;
  // Halo surrogates: "sample" (a Bernoulli draw per voxel or group) or "top" (the round(sum of
  // presence) most probable voxels; pm/analysis/halo_sampler.hpp) or "threshold" (per-group
  // surrogates: emulators/hooks/group_hook.hpp); empty: the model's default ("sample" for voxel
  // surrogates, "threshold" for per-group ones).
  std::string selection;
  // Particle super-resolution: potential gradient descent (PGD; Dai, Feng & Seljak 2018) applied
  // to the super-resolved particles before anything is written, (alpha, k_l [h/Mpc], k_s [h/Mpc])
  // (pm/force/pgd.hpp, on the PM mesh with the exact kernel); an error for other models.
  std::optional<std::array<double, 3>> pgd;
  // Particle super-resolution, [emulators.NAME.contract]: after the PGD, FoF (linking length `b`,
  // groups of `min_members` or more) on the super-resolved particles and the contraction of the
  // cores of the groups of at most max_members members (pm/analysis/group_contraction.hpp);
  // an error for other models.
  struct Contraction {
    GroupContraction shape; // lambda, radius [Mpc/h], max_members
    double b = 0.2;
    int min_members = 20;
  };
  std::optional<Contraction> contract;
};

// Channels an emulator hook can give a model, per field space ("eulerian": density,
// momentum_x|y|z on the PM mesh; "lagrangian": displacement_x|y|z, momentum_x|y|z on the
// particle lattice). Throws std::invalid_argument for another space.
const std::vector<std::string>& hookChannels(const std::string& space);

struct OutputParams {
  std::string directory = "output";
  std::vector<double> a;          // output scale factors, ascending, in [a_start, a_end]
  bool initial_conditions = true; // write the IC snapshot
  bool snapshots = true;          // write snapshots at output a
  bool power_spectrum = true;     // write power spectrum tables
  bool density = false;           // write the painted density field
  int density_mesh = 0;           // its mesh per side (0: the PM mesh); another mesh is painted
                                  // from a copy of the particles migrated to its slabs
  bool double_precision = false;  // snapshot Coordinates/Velocities as float64
  std::string window = "cic";     // power-spectrum window: cic | tsc
  bool interlace = true;
  bool subtract_shot_noise = false;
};

struct Params {
  CosmologyParams cosmology;
  PowerParams power;
  SimulationParams simulation;
  GravityParams gravity;
  FftParams fft;
  OutputParams output;
  HalosParams halos;
  CheckpointParams checkpoint;
  BaryonsParams baryons;
  std::vector<EmulatorHookParams> emulators;
  std::string toml;   // the effective parameters (file plus overrides) as TOML text
  std::string source; // path of the parameter file

  // FNV-1a 64-bit hash of the effective TOML text, as 16 hex digits.
  std::string hash() const;
};

// The value of a numeric setting by its dotted name, for models conditioned on settings:
// baryons.{log10_mc, mu, theta_ej, gamma, delta, eta, delta_eta, f_nt, t_igm} and
// cosmology.{Omega_m, Omega_b, h, n_s, sigma8, w0, wa}; nullopt for any other name.
std::optional<double> numericSetting(const Params& p, const std::string& name);
// The names numericSetting knows, comma separated (for error messages).
std::string numericSettingNames();

// Parses `path` with "section.key=value" overrides (values in TOML syntax; bare words are
// strings) and validates everything, including that `nranks` MPI ranks fit the mesh.
Params loadParams(const std::string& path, const std::vector<std::string>& overrides, int nranks);
// Same from TOML text; relative file paths resolve against `base_dir`.
Params parseParams(const std::string& text, const std::vector<std::string>& overrides, int nranks,
                   const std::string& base_dir = ".", const std::string& source = "<string>");

} // namespace caustic
