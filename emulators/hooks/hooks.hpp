#pragma once
// In-situ emulator hooks: [emulators.NAME] sections become observers that, at their output scale
// factors (and after every step if asked), build the model's input channels from the particles
// (Eulerian: painted on the PM mesh; Lagrangian: on the particle lattice, particles sent there by
// ID), check the model's validity domain, apply it distributed, and write the result with the
// model's metadata: Eulerian outputs as mesh fields, Lagrangian outputs sent back to the
// particles and written as a particle set.
#include "emulators/inference/adapters.hpp"
#include "emulators/inference/distributed_inference.hpp"
#include "io/observers.hpp"
#include "io/params.hpp"
#include "pm/mesh/workspace.hpp"

#include <memory>

namespace caustic {

class EmulatorHook : public Observer {
public:
  // Loads the model; throws std::runtime_error naming the file on failure, ValidityError when
  // the run lies outside the model's domain (unless forced).
  EmulatorHook(const Params& params, const EmulatorHookParams& hook, OutputCallback cb);
  std::string name() const override { return "emulator:" + _hook.name; }
  bool wants(Event e) const override {
    return e == Event::Output || (_hook.every_step && e == Event::Step);
  }
  void observe(Event e, const SimulationState& s) override;

private:
  ApplicationDomain domainAt(double a) const;
  // A particle super-resolution model: the high-resolution particles as a snapshot
  // NAME_a<a>.hdf5, their power spectrum NAME_power_a<a>.txt on the hook's mesh (default: the PM
  // mesh), and with [halos] at this a their FoF catalogue NAME_halos_a<a> and mass function.
  void observeSuperResolution(Event e, const SimulationState& s,
                              const std::vector<std::string>& warnings);
  // A halo surrogate's catalogue (written with its mass function; paths returned) sampled from
  // its presence and mass outputs with the particles' velocities, and its expected halo-mass
  // field (returned). `density`: the particles' CIC density contrast on `decomp` if already
  // painted (else painted here). Collective.
  std::unique_ptr<Field<float>>
  sampleHaloSurrogate(const std::shared_ptr<const SlabDecomposition>& decomp,
                      const Field<float>& presence, const Field<float>& mass,
                      const Field<float>* density, const Particles& parts,
                      const SimulationState& s, std::string& catalogue_path,
                      std::string& mass_function_path);

  const Params& _params;
  EmulatorHookParams _hook;
  FieldSpace _space;
  Model _model;
  OutputCallback _cb;
  std::shared_ptr<const SlabDecomposition> _lattice; // Lagrangian hooks, made on first use
  // The mesh of Eulerian hooks with their own mesh; for super-resolution, the mesh of the HR
  // particles' power spectrum and FoF (the PM mesh itself when its size is the one asked for).
  std::shared_ptr<const SlabDecomposition> _fieldMesh;
  // Super-resolution with `pgd`: meshes and FFT plans of the PGD on _fieldMesh, made on first use.
  std::shared_ptr<Workspace<float>> _pgdWorkspace;
  std::vector<std::pair<std::string, double>> _conditioning; // the run's conditioning values
};

} // namespace caustic
