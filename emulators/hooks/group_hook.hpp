#pragma once
// The in-situ hook of a per-group halo surrogate ([emulators.NAME] whose model is a
// "halo_groups" record, emulators/runtime/group_surrogate.hpp): at its output scale factors it
// runs FoF on the run's particles with the record's settings (and, for the position correction,
// the members' mean lattice position as FoF's own partial sums), computes the groups' features on
// the PM mesh, applies the network and writes the selected groups as a halo catalogue NAME_a<a>
// (Gadget-4 group layout: velocities, radii and dispersions of the cheap groups, masses from the
// network, centres moved by the record's position correction when it has one) with its mass
// function NAME_mass_function_a<a>.txt, and every group it saw in NAME_candidates_a<a>.hdf5:
// /Candidates Pos, Vel, Len, Label, Presence p, LogMass mu, ExpectedMass E[M 1(M >= M_min)] =
// p exp(mu + s^2/2) Phi((mu + s^2 - ln M_min) / s) with s the record's log_mass_scatter, and
// Selected; painted with these weights, the candidates give the expected halo-mass field, which
// minimises the mean squared error of the halo-mass field over any one catalogue.
//
// Selection: "threshold" (the default) keeps the groups with p >= the record's
// presence_threshold and mu >= ln(min_particles m_p), with M = exp(mu); "sample" keeps each group
// with probability p and draws ln M from N(mu, log_mass_scatter^2) (Philox keyed by the seed, the
// output and the group's label: independent of the decomposition), keeping M >= min_particles
// m_p; "top" keeps the round(sum_g q_g) groups of highest q = p Phi((mu - ln M_min) /
// log_mass_scatter), the probability that the group is a halo of at least M_min = min_particles
// m_p (so the expected number of halos, which the threshold undercounts where the mass function
// is steep), with M = max(exp(mu), M_min). A catalogue halo has round(M / m_p) members (at least
// 1), the FoF catalogue's convention.
#include "emulators/runtime/group_surrogate.hpp"
#include "io/observers.hpp"
#include "io/params.hpp"

namespace caustic {

class GroupSurrogateHook : public Observer {
public:
  // Loads the record; throws std::runtime_error naming the setting when the run lies outside the
  // record's domain (unless hook.force) or a setting does not apply.
  GroupSurrogateHook(const Params& params, const EmulatorHookParams& hook, OutputCallback cb);
  std::string name() const override { return "emulator:" + _hook.name; }
  void observe(Event e, const SimulationState& s) override;

private:
  const Params& _params;
  EmulatorHookParams _hook;
  GroupSurrogate _model;
  OutputCallback _cb;
  std::vector<std::string> _warnings; // validity warnings (forced)
};

} // namespace caustic
