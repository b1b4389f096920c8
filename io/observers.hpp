#pragma once
// Observers that write a run's outputs at output scale factors: snapshots, power spectra,
// density fields and FoF halos. File names carry the scale factor (outputName): e.g.
// snapshot_a0.5000.hdf5, power_a0.5000.txt, density_a0.5000.hdf5, halos_a0p5000.0.hdf5 (the group-file name yt reads) and
// mass_function_a0.5000.txt. The initial conditions (ic.hdf5, power_ic.txt) are written by the
// commands, not by these observers.
#include "io/params.hpp"
#include "pm/analysis/power_spectrum.hpp"
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
// buffer is free between steps): two meshes, the second for the interlaced copy.
template <class T> class PowerSpectrumWriter : public Observer {
public:
  PowerSpectrumWriter(const Params& params, Workspace<T>& workspace,
                      std::function<double(double)> linear_power, OutputCallback cb);
  std::string name() const override { return "power_spectrum"; }
  void observe(Event e, const SimulationState& s) override;

private:
  const Params& _params;
  Workspace<T>& _ws;
  std::function<double(double)> _plin;
  OutputCallback _cb;
};

// Density contrast delta = rho / mean - 1 painted on the PM mesh (window of [output]), in a
// mesh leased from the run's workspace.
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
};

// In-situ friends-of-friends at the [halos] scale factors: catalogue and mass function.
class HaloFinder : public Observer {
public:
  HaloFinder(const Params& params, OutputCallback cb) : _params(params), _cb(std::move(cb)) {}
  std::string name() const override { return "fof"; }
  void observe(Event e, const SimulationState& s) override;

private:
  const Params& _params;
  OutputCallback _cb;
};

} // namespace caustic
