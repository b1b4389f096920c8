#include "emulators/hooks/group_hook.hpp"

#include "io/format.hpp"
#include "io/hdf5_util.hpp"
#include "io/snapshot.hpp"
#include "pm/analysis/fof.hpp"
#include "pm/analysis/group_features.hpp"
#include "pm/core/profiling.hpp"
#include "pm/ic/white_noise.hpp"
#include "pm/stepping/simulation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <stdexcept>

namespace caustic {

namespace {

// E[M 1(M >= M_min)] for ln M ~ N(mu, sigma^2): exp(mu + sigma^2/2) Phi((mu + sigma^2 - ln M_min)
// / sigma), times the presence probability p. sigma = 0: p exp(mu) when exp(mu) >= M_min.
double expectedMass(double p, double mu, double sigma, double lnmin) {
  if (!(sigma > 0))
    return mu >= lnmin ? p * std::exp(mu) : 0.0;
  const double z = (mu + sigma * sigma - lnmin) / sigma;
  return p * std::exp(mu + 0.5 * sigma * sigma) * 0.5 * std::erfc(-z / std::sqrt(2.0));
}

// Every FoF group the surrogate saw, with its presence probability, mean ln M, expected halo mass
// and whether the catalogue kept it (rank 0 writes; the groups are the same on every rank).
void writeCandidates(const std::string& path, MPI_Comm comm, const HaloCatalogue& groups,
                     const GroupPrediction& pred, const std::vector<double>& expected,
                     const std::vector<std::uint8_t>& selected, double a, double box,
                     double particle_mass, double min_mass, double sigma,
                     const std::string& selection, const std::string& model) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string ctx = "writing halo candidates " + path;
  const std::uint64_t ng = groups.size();
  const hsize_t mine = rank == 0 ? ng : 0;
  const double vfac = 100.0 / (a * std::sqrt(a)); // Gadget: v_pec / sqrt(a) [km/s]
  std::vector<double> pos(groups.pos.begin(), groups.pos.end()), vel(3 * ng), wexp(ng);
  std::vector<std::uint32_t> len(ng);
  for (std::uint64_t g = 0; g < ng; ++g) {
    len[g] = static_cast<std::uint32_t>(groups.count[g]);
    wexp[g] = expected[g] / 1e10;
    for (int c = 0; c < 3; ++c)
      vel[3 * g + c] = groups.vel[3 * g + c] * vfac;
  }
  h5::writeParallelFile(path, comm, [&](hid_t file) {
    {
      h5::Handle hdr = h5::createGroup(file, "Header", ctx);
      h5::attr(hdr, "BoxSize", box, ctx);
      h5::attr(hdr, "Time", a, ctx);
      h5::attr(hdr, "Redshift", 1.0 / a - 1.0, ctx);
      h5::attr(hdr, "ParticleMass", particle_mass, ctx);
      h5::attr(hdr, "MinHaloMass", min_mass / 1e10, ctx);
      h5::attr(hdr, "LogMassScatter", sigma, ctx);
      h5::attr(hdr, "Ncandidates", std::int64_t(ng), ctx);
      h5::attr(hdr, "Selection", selection, ctx);
      h5::attr(hdr, "Model", model, ctx);
    }
    h5::Handle grp = h5::createGroup(file, "Candidates", ctx);
    const hsize_t g1[1] = {ng}, l1[1] = {mine}, s0[2] = {0, 0};
    const hsize_t g3[2] = {ng, 3}, l3[2] = {mine, 3};
    h5::writeBlock(grp, "Pos", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, pos.data(), 2, g3, s0, l3,
                   "Mpc/h (the FoF group's comoving centre of mass, moved by the record's "
                   "position correction when it has one)",
                   ctx);
    h5::writeBlock(grp, "Vel", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, vel.data(), 2, g3, s0, l3,
                   "km/s (mean peculiar velocity / sqrt(a), Gadget convention)", ctx);
    h5::writeBlock(grp, "Len", H5T_NATIVE_UINT32, H5T_STD_U32LE, len.data(), 1, g1, s0, l1,
                   "particles in the cheap run's FoF group", ctx);
    h5::writeBlock(grp, "Label", H5T_NATIVE_UINT64, H5T_STD_U64LE, groups.label.data(), 1, g1, s0,
                   l1, "smallest member ParticleID (GroupMinID of the catalogue)", ctx);
    h5::writeBlock(grp, "Presence", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, pred.presence.data(), 1, g1,
                   s0, l1, "probability that the group is a high-resolution halo", ctx);
    h5::writeBlock(grp, "LogMass", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, pred.log_mass.data(), 1, g1,
                   s0, l1, "mean ln(M / (Msun/h)) of that halo (scatter: Header LogMassScatter)",
                   ctx);
    h5::writeBlock(grp, "ExpectedMass", H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, wexp.data(), 1, g1, s0,
                   l1,
                   "1e10 Msun/h: E[M 1(M >= MinHaloMass)] = Presence exp(mu + s^2/2) "
                   "Phi((mu + s^2 - ln MinHaloMass) / s)",
                   ctx);
    h5::writeBlock(grp, "Selected", H5T_NATIVE_UINT8, H5T_STD_U8LE, selected.data(), 1, g1, s0, l1,
                   "1 when the halo catalogue holds the group", ctx);
  });
}

} // namespace

GroupSurrogateHook::GroupSurrogateHook(const Params& params, const EmulatorHookParams& hook,
                                       OutputCallback cb)
    : _params(params), _hook(hook), _model(GroupSurrogate::load(hook.model)), _cb(std::move(cb)) {
  torch::set_num_threads(1); // parallelism comes from the MPI ranks
  const std::string key = "emulators." + _hook.name;
  const auto& r = _model.record();
  if (_hook.name == "halos" && params.halos.enabled)
    throw std::runtime_error("[emulators.halos]: a halo surrogate named \"halos\" would write its "
                             "catalogue over the FoF catalogue (halos_a*.0.hdf5) of [halos]; "
                             "choose another name");
  if (_hook.every_step)
    throw std::runtime_error(key + ".every_step = true: a per-group halo surrogate runs at "
                                   "output scale factors only (it writes a catalogue each time)");
  if (_hook.mesh != 0 || _hook.space != "eulerian" || _hook.pgd || _hook.contract)
    throw std::runtime_error(key +
                             ": mesh, space, pgd and contract do not apply to the per-group "
                             "halo surrogate " +
                             _hook.model +
                             " (its features are computed on the PM mesh); remove them");
  // The record's domain: features on the training's mesh and box, its particle mass, its a.
  const auto& sim = params.simulation;
  const double mp = particleMass(params) * 1e10;
  std::vector<std::string> bad;
  if (sim.mesh != r.feature_mesh || std::fabs(sim.box - r.box) > 1e-6 * r.box)
    bad.push_back(format("simulation.mesh = %d and box = %g Mpc/h; the model was trained with "
                         "features on a %d^3 mesh in %g Mpc/h",
                         sim.mesh, sim.box, r.feature_mesh, r.box));
  if (std::fabs(mp - r.particle_mass) > 1e-3 * r.particle_mass)
    bad.push_back(
        format("particle mass %.6g Msun/h; the model's is %.6g Msun/h", mp, r.particle_mass));
  for (double a : _hook.a)
    if (std::fabs(a - r.a) > 1e-3)
      bad.push_back(format("%s.a contains %g; the model was trained at a = %g (one model per "
                           "output time)",
                           key.c_str(), a, r.a));
  if (!bad.empty()) {
    std::string all;
    for (const auto& b : bad)
      all += (all.empty() ? "" : "; ") + b;
    if (!_hook.force)
      throw std::runtime_error(key + ": the run lies outside the validity domain of " +
                               _hook.model + ": " + all + " (set " + key +
                               ".force = true to apply it anyway)");
    _warnings = bad;
  }
}

void GroupSurrogateHook::observe(Event e, const SimulationState& s) {
  if (e != Event::Output || !isOutputScaleFactor(s.a, _hook.a))
    return;
  ScopedRegion region("caustic::GroupSurrogateHook");
  const auto& r = _model.record();
  std::unique_ptr<Particles> converted;
  const Particles& run = s.particles.asDouble(converted);
  FofOptions opt;
  opt.b = r.fof_b;
  opt.min_particles = r.fof_min_particles;
  const bool move = !r.position_coefficients.empty();
  if (move) { // the displacement vector needs the members' mean lattice position
    opt.lattice_grid = s.particle_grid;
    opt.lattice_offset = s.lattice_offset;
  }
  const double L = s.mesh->box();
  HaloCatalogue groups = findHalos(run, *s.mesh, L / s.particle_grid, opt);
  std::vector<double> vectors;
  const auto features =
      groupFeatures(groups, run, s.mesh, s.total_particles, r.radii, move ? &vectors : nullptr);
  const GroupPrediction pred = _model.predict(features);
  if (move) { // the centres' correction, after the features (computed at the FoF centres)
    const auto shift = _model.positionShift(vectors);
    for (std::size_t k = 0; k < groups.pos.size(); ++k)
      groups.pos[k] = periodicWrap(groups.pos[k] + shift[k], L);
  }
  const double mp = s.particle_mass * 1e10, lnmin = std::log(r.min_particles * mp);
  const bool sample = _hook.selection == "sample", top = _hook.selection == "top";
  // "top": the round(sum q) groups of highest q = p Phi((mu - ln M_min) / sigma), the probability
  // that a group is a halo of at least the minimum mass (ties: the smaller label).
  std::vector<char> chosen(groups.size(), 0);
  if (top) {
    std::vector<double> q(groups.size());
    double total = 0;
    for (std::size_t g = 0; g < groups.size(); ++g) {
      const double z = pred.log_mass[g] - lnmin;
      const double above = r.log_mass_scatter > 0
                               ? 0.5 * std::erfc(-z / (std::sqrt(2.0) * r.log_mass_scatter))
                               : (z >= 0 ? 1.0 : 0.0);
      q[g] = pred.presence[g] * above;
      total += q[g];
    }
    std::vector<std::size_t> order(groups.size());
    for (std::size_t g = 0; g < order.size(); ++g)
      order[g] = g;
    std::sort(order.begin(), order.end(), [&](std::size_t i, std::size_t j) {
      return q[i] != q[j] ? q[i] > q[j] : groups.label[i] < groups.label[j];
    });
    const auto k =
        std::min<std::size_t>(order.size(), static_cast<std::size_t>(std::llround(total)));
    for (std::size_t i = 0; i < k; ++i)
      chosen[order[i]] = 1;
  }
  const std::uint64_t seed =
      _hook.seed ? *_hook.seed : static_cast<std::uint64_t>(_params.simulation.seed);
  const auto output = static_cast<std::uint32_t>(std::lround(s.a * 1e4));
  HaloCatalogue cat;
  cat.linking_length = groups.linking_length;
  std::vector<double> expected(groups.size());
  std::vector<std::uint8_t> selected(groups.size(), 0);
  for (std::size_t g = 0; g < groups.size(); ++g) {
    expected[g] = expectedMass(pred.presence[g], pred.log_mass[g], r.log_mass_scatter, lnmin);
    double lnm = pred.log_mass[g];
    bool keep = pred.presence[g] >= r.presence_threshold;
    if (sample) {
      // Counter (label low, label high, output, stream): the same draws at any rank count.
      const std::uint64_t lab = groups.label[g];
      double u1, u2, v1, v2;
      philoxUniforms(seed, static_cast<std::uint32_t>(lab), static_cast<std::uint32_t>(lab >> 32),
                     output, 0x48470000u, u1, u2);
      philoxUniforms(seed, static_cast<std::uint32_t>(lab), static_cast<std::uint32_t>(lab >> 32),
                     output, 0x48470001u, v1, v2);
      keep = u1 < pred.presence[g];
      lnm += r.log_mass_scatter * std::sqrt(-2.0 * std::log(v1)) * std::cos(2 * M_PI * v2);
    }
    if (top) {
      keep = chosen[g] != 0;
      lnm = std::max(lnm, lnmin);
    }
    if (!keep || lnm < lnmin)
      continue;
    selected[g] = 1;
    cat.label.push_back(groups.label[g]);
    cat.count.push_back(std::max<std::uint64_t>(1, std::llround(std::exp(lnm) / mp)));
    for (int c = 0; c < 3; ++c) {
      cat.pos.push_back(groups.pos[3 * g + c]);
      cat.vel.push_back(groups.vel[3 * g + c]);
    }
    cat.sigma_v.push_back(groups.sigma_v[g]);
    cat.radius.push_back(groups.radius[g]);
  }
  const auto paths =
      writeRunHalos(_params, s.mesh->comm().get(), cat, s.a, s.particle_mass, r.fof_b,
                    r.min_particles, _hook.name, _hook.name + "_mass_function");
  const std::string candidates =
      outputName(_params.output.directory, _hook.name + "_candidates", s.a, ".hdf5");
  writeCandidates(candidates, s.mesh->comm().get(), groups, pred, expected, selected, s.a, L,
                  s.particle_mass, std::exp(lnmin), r.log_mass_scatter,
                  _hook.selection.empty() ? "threshold" : _hook.selection, _hook.model);
  if (s.mesh->comm().rank() == 0) {
    if (!_warnings.empty()) {
      std::string all;
      for (const auto& w : _warnings)
        all += (all.empty() ? "" : "; ") + w;
      std::fprintf(stderr,
                   "caustic: warning: emulator %s applied outside its validity domain (force = "
                   "true): %s\n",
                   _hook.name.c_str(), all.c_str());
    }
    if (_cb && !paths.catalogue.empty()) {
      _cb("halos", paths.catalogue);
      _cb("mass_function", paths.mass_function);
      _cb("halo_candidates", candidates);
    }
  }
}

} // namespace caustic
