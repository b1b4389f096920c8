#pragma once
// Observers that write a run's outputs at output scale factors: snapshots, power spectra,
// density fields and FoF halos. File names carry the scale factor (outputName): e.g.
// snapshot_a0.5000.hdf5, power_a0.5000.txt, density_a0.5000.hdf5, halos_a0p5000.0.hdf5 (the
// group-file name yt reads) and mass_function_a0.5000.txt. The initial conditions (ic.hdf5,
// power_ic.txt) are written by the commands, not by these observers.
#include "io/params.hpp"
#include "pm/analysis/fof.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/force/gravity.hpp"
#include "pm/mesh/workspace.hpp"
#include "pm/stepping/observer.hpp"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace caustic {

// Called with (kind, path) for every file written, on rank 0.
using OutputCallback = std::function<void(const std::string&, const std::string&)>;

std::string outputName(const std::string& dir, const std::string& stem, double a,
                       const std::string& ext);

// Writes an in-situ halo catalogue found or made at scale factor a: <dir>/<stem>_a<a> as a
// Gadget-4 group file (haloCatalogueName) with the run's box and cosmology in its header, and the
// mass function <dir>/<mf_stem>_a<a>.txt (rank 0); returns their paths. Collective.
struct RunHaloPaths {
  std::string catalogue, mass_function;
};
RunHaloPaths writeRunHalos(const Params& params, MPI_Comm comm, const HaloCatalogue& cat, double a,
                           double particle_mass, double b, int min_particles,
                           const std::string& stem, const std::string& mf_stem);

class SnapshotWriter : public Observer {
public:
  SnapshotWriter(const Params& params, OutputCallback cb) : _params(params), _cb(std::move(cb)) {}
  std::string name() const override { return "snapshot"; }
  void observe(Event e, const SimulationState& s) override;

private:
  const Params& _params;
  OutputCallback _cb;
};

// Power spectrum of the particles on the PM mesh, with linear theory D1(a)^2 P_lin(k). Meshes
// and FFT plans are leased from the run's workspace (shared with the gravity solver, whose
// buffer is free between steps): one mesh, and the binned modes of the unshifted copy while
// the mesh takes the interlaced one (0.53 mesh).
template <class T> class PowerSpectrumWriter : public Observer {
public:
  PowerSpectrumWriter(const Params& params, Workspace<T>& workspace,
                      std::function<double(double)> linear_power, OutputCallback cb);
  ~PowerSpectrumWriter() override;
  PowerSpectrumWriter(const PowerSpectrumWriter&) = delete;
  PowerSpectrumWriter& operator=(const PowerSpectrumWriter&) = delete;
  std::string name() const override { return "power_spectrum"; }
  void observe(Event e, const SimulationState& s) override;
  // Measures the spectra from `gravity`'s painted density at the force computed at each output's
  // positions (the closing force of the step that ends there), so that an output adds only the
  // interlaced copy's paint and FFT (in the force's mesh, after the force) and the binning. Not
  // when the gravity paints with another window than [output] asks for, nor when the outputs see
  // other positions than the forces (PGD's displaced copy): those keep painting their own. The
  // force at `a_start`, where the run starts or resumes, is not measured (its output, if any, is
  // made without it). Returns whether the tap was attached.
  bool measureAtForces(Gravity<T>& gravity, double a_start);

private:
  PowerOptions options() const;
  const Params& _params;
  Workspace<T>& _ws;
  std::function<double(double)> _plin;
  OutputCallback _cb;
  Gravity<T>* _gravity = nullptr;             // the tap's owner (detached on destruction)
  double _measured_a = -1.0;                  // a of the last spectrum measured or written
  bool _pending = false;                      // a force at an output was measured, not written yet:
  PowerSpectrum _spectrum;                    // its spectrum (not interlaced), or
  std::unique_ptr<BinnedModes<T>> _unshifted; // its binned modes (interlaced)
};

// Density contrast delta = rho / mean - 1 painted on the PM mesh (window of [output]), in a
// mesh leased from the run's workspace; with output.density_mesh set to another size, on that
// mesh, from a copy of the particles migrated to its slabs (the emulator hooks' `mesh`).
template <class T> class DensityWriter : public Observer {
public:
  DensityWriter(const Params& params, Workspace<T>& workspace, OutputCallback cb)
      : _params(params), _ws(workspace), _cb(std::move(cb)) {}
  std::string name() const override { return "density"; }
  void observe(Event e, const SimulationState& s) override;

private:
  const Params& _params;
  Workspace<T>& _ws;
  OutputCallback _cb;
  std::shared_ptr<const SlabDecomposition> _own; // output.density_mesh, made on first use
};

// In-situ friends-of-friends at the [halos] scale factors: catalogue and mass function. The last
// catalogue is kept for the observers after it (the baryons) until the next output.
class HaloFinder : public Observer {
public:
  HaloFinder(const Params& params, OutputCallback cb) : _params(params), _cb(std::move(cb)) {}
  std::string name() const override { return "fof"; }
  void observe(Event e, const SimulationState& s) override;
  // The catalogue found at scale factor a, or nullptr if the last one is of another a.
  const HaloCatalogue* catalogue(double a) const;

private:
  const Params& _params;
  OutputCallback _cb;
  HaloCatalogue _last;
  double _last_a = -1.0;
};

// An LDL baryon painter ([emulators.NAME] kind = "ldl", model = an ldl.json of `caustic
// ldl-fit`): at its scale factors (and after every step with every_step) it paints the particles
// onto the record's mesh and writes NAME_a<a>.hdf5 (/Fields/<the record's field>, double). The
// record's box must be the run's and its scale factor within 0.05 of every a it runs at (the
// painter is fitted at one redshift), unless force = true (then a warning, recorded in the file).
// Checked at construction, before anything is written. A record with a halo layer reads the
// run's FoF catalogue of the same output (setHaloFinder; the finder runs before the hooks): it
// needs [halos] at every a of the hook, made with the record's b and min_particles (else a
// domain warning, refused without force), and no every_step.
class LdlHook : public Observer {
public:
  LdlHook(const Params& params, const EmulatorHookParams& hook, OutputCallback cb);
  ~LdlHook() override;
  void setHaloFinder(const HaloFinder* finder) { _finder = finder; }
  std::string name() const override { return "emulator:" + _hook.name; }
  bool wants(Event e) const override {
    return e == Event::Output || (_hook.every_step && e == Event::Step);
  }
  void observe(Event e, const SimulationState& s) override;

private:
  const Params& _params;
  const EmulatorHookParams& _hook;
  OutputCallback _cb;
  const HaloFinder* _finder = nullptr;
  struct State;
  std::unique_ptr<State> _state;
};

// In-situ baryonification ([baryons] enabled) at its scale factors, from the catalogue of the
// HaloFinder observed before it: a copy of the particles is baryonified and its outputs
// (io/baryon_outputs.hpp) written to <output.directory>/baryons_a<a>/. The run's particles are
// not changed.
class BaryonWriter : public Observer {
public:
  BaryonWriter(const Params& params, const HaloFinder& halos, OutputCallback cb,
               std::function<void(const std::string&, double)> timer,
               std::function<void(const std::string&)> log)
      : _params(params), _halos(halos), _cb(std::move(cb)), _timer(std::move(timer)),
        _log(std::move(log)) {}
  std::string name() const override { return "baryons"; }
  void observe(Event e, const SimulationState& s) override;

private:
  const Params& _params;
  const HaloFinder& _halos;
  OutputCallback _cb;
  std::function<void(const std::string&, double)> _timer;
  std::function<void(const std::string&)> _log;
};

} // namespace caustic
