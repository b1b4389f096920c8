#pragma once
// The hook interface between the PM loop and everything that looks at a run in-situ: writers,
// power spectra, halo finders, emulators. The loop knows only this interface; observers get
// read access to the distributed state at events.
//
// (It lives in pm/ rather than emulators/ because pm/ may not depend on emulators/; the
// emulator hooks implement it.)
#include "pm/cosmology/cosmology.hpp"
#include "pm/mesh/mesh.hpp"
#include "pm/particles/particles.hpp"

#include <memory>
#include <string>

namespace caustic {

enum class Event {
  InitialConditions, // particles at a_start, before the first step
  Step,              // after every step
  Output,            // at each output scale factor (after InitialConditions or Step)
  BeforeForce,       // before each force computation (particles migrated; state.a: the force's a)
  AfterForce         // after it (the kick fused with the readout is applied already)
};

struct SimulationState {
  double a = 0.0;
  int step = 0;                                  // steps done
  int steps_total = 0;                           // steps in the run
  ParticlesRef particles;                        // this rank's particles, on their slabs
  std::shared_ptr<const SlabDecomposition> mesh; // the PM mesh decomposition
  const Cosmology* cosmology = nullptr;
  double total_particles = 0.0; // over all ranks
  double particle_mass = 0.0;   // [1e10 Msun/h]
  int particle_grid = 0;        // N_p: particles on an N_p^3 Lagrangian lattice
  double lattice_offset = 0.0;  // [Mpc/h] q = (i, j, k) L / N_p + offset on every axis
};

class Observer {
public:
  virtual ~Observer() = default;
  virtual std::string name() const = 0;
  // Which events this observer wants (default: outputs only).
  virtual bool wants(Event e) const { return e == Event::Output; }
  // Collective over the mesh communicator.
  virtual void observe(Event e, const SimulationState& state) = 0;
};

} // namespace caustic
