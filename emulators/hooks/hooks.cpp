#include "emulators/hooks/hooks.hpp"

#include "emulators/inference/halo_field.hpp"
#include "emulators/inference/superres.hpp"
#include "io/fields.hpp"
#include "io/format.hpp"
#include "io/snapshot.hpp"
#include "io/tables.hpp"
#include "pm/analysis/fof.hpp"
#include "pm/analysis/group_contraction.hpp"
#include "pm/analysis/halo_sampler.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/force/painter.hpp"
#include "pm/force/pgd.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/stepping/simulation.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace caustic {

namespace {
void warnOutsideDomain(const std::string& hook, const std::vector<std::string>& warnings) {
  if (!warnings.empty())
    std::fprintf(
        stderr,
        "caustic: warning: emulator %s applied outside its validity domain (force = true): %s\n",
        hook.c_str(), joined(warnings, "; ").c_str());
}
} // namespace

ApplicationDomain EmulatorHook::domainAt(double a) const {
  const auto& sim = _params.simulation;
  ApplicationDomain dom;
  dom.cell_size =
      sim.box / (_space == FieldSpace::Eulerian ? (_hook.mesh > 0 ? _hook.mesh : sim.mesh)
                                                : sim.particles);
  dom.conditioning = _conditioning;
  dom.box = sim.box;
  dom.redshift = 1.0 / a - 1.0;
  dom.cosmology = _params.cosmology;
  dom.input_channels = _hook.inputs;
  dom.fof_b = _params.halos.b;
  dom.fof_min_particles = _params.halos.min_particles;
  return dom;
}

EmulatorHook::EmulatorHook(const Params& params, const EmulatorHookParams& hook, OutputCallback cb)
    : _params(params), _hook(hook), _space(fieldSpaceFromName(hook.space)),
      _model(Model::load(hook.model, hook.metadata)), _cb(std::move(cb)) {
  checkChannels(_space, _hook.inputs, "emulators." + _hook.name + ".inputs");
  // The settings the model is conditioned on come from the run's parameters (e.g. a baryon
  // painter's BCM parameters from [baryons]); a name the run cannot supply is an error even
  // when forced.
  std::vector<double> values;
  for (const auto& k : _model.metadata().conditioning) {
    const auto v = numericSetting(params, k.name);
    if (!v)
      throw std::runtime_error("emulators." + _hook.name + ": the model " + _hook.model +
                               " is conditioned on \"" + k.name +
                               "\", which is not a numeric setting of a run; known: " +
                               numericSettingNames());
    _conditioning.emplace_back(k.name, *v);
    values.push_back(*v);
  }
  _model.setConditioning(values);
  if (_model.metadata().super_resolution) { // before the domain: its cell is the lattice's
    if (_space != FieldSpace::Lagrangian)
      throw std::runtime_error("emulators." + _hook.name + ".space = \"" + _hook.space +
                               "\": the model " + _hook.model +
                               " makes particles from the Lagrangian lattice; set space = "
                               "\"lagrangian\"");
    std::vector<std::string> want;
    for (const auto& c : _model.metadata().inputs)
      want.push_back(c.name);
    if (_hook.inputs != want) {
      std::string list;
      for (const auto& c : want)
        list += (list.empty() ? "" : ", ") + c;
      throw std::runtime_error("emulators." + _hook.name + ".inputs: the super-resolution model " +
                               _hook.model + " takes [" + list + "] in this order");
    }
    if (_hook.every_step)
      throw std::runtime_error("emulators." + _hook.name +
                               ".every_step = true: a super-resolution model runs at output "
                               "scale factors only (it writes a snapshot each time)");
  }
  // Refuse at start-up, before anything is written, rather than at the first output. An
  // every-step hook runs from a_start to a_end.
  std::vector<double> as = _hook.a;
  if (_hook.every_step) {
    as.push_back(params.simulation.a_start);
    as.push_back(params.simulation.a_end);
  }
  for (double a : as)
    enforceValidity(_model.metadata(), domainAt(a), _hook.force, _hook.name);
  const auto& meta = _model.metadata();
  if (_hook.selection == "threshold")
    throw std::runtime_error("emulators." + _hook.name +
                             ".selection = \"threshold\": only for per-group halo surrogates; the "
                             "model " +
                             _hook.model + " (" + meta.kind +
                             ") is not one (voxel surrogates: \"sample\" or \"top\")");
  if (!_hook.selection.empty() && _hook.selection != "sample" && !meta.halo)
    throw std::runtime_error("emulators." + _hook.name + ".selection = \"" + _hook.selection +
                             "\": the model " + _hook.model + " (" + meta.kind +
                             ") is not a halo surrogate; only halo surrogates select halos");
  if (_hook.pgd && !meta.super_resolution)
    throw std::runtime_error("emulators." + _hook.name + ".pgd: the model " + _hook.model + " (" +
                             meta.kind +
                             ") is not a particle super-resolution model; only super-resolved "
                             "particles are sharpened by PGD");
  if (_hook.contract && !meta.super_resolution)
    throw std::runtime_error("[emulators." + _hook.name + ".contract]: the model " + _hook.model +
                             " (" + meta.kind +
                             ") is not a particle super-resolution model; only super-resolved "
                             "particles have their groups contracted");
  if (_hook.seed && !meta.halo)
    throw std::runtime_error("emulators." + _hook.name + ".seed = " + std::to_string(*_hook.seed) +
                             ": the model " + _hook.model + " (" + meta.kind +
                             ") is not a halo surrogate; only halo surrogates sample");
  if (meta.halo && _hook.name == "halos" && params.halos.enabled)
    throw std::runtime_error("[emulators.halos]: a halo surrogate named \"halos\" would write its "
                             "catalogue over the FoF catalogue (halos_a*.0.hdf5) of [halos]; "
                             "choose another name");
  if (meta.halo && _space != FieldSpace::Eulerian)
    throw std::runtime_error("emulators." + _hook.name + ".space = \"" + _hook.space +
                             "\": the model " + _hook.model +
                             " is a halo surrogate, whose fields are Eulerian");
  if (_hook.radius >= 0 && _hook.radius < _model.metadata().receptive_field)
    throw std::runtime_error("emulators." + _hook.name +
                             ".radius = " + std::to_string(_hook.radius) +
                             ": smaller than the model's receptive field (" +
                             std::to_string(_model.metadata().receptive_field) + " cells)");
}

void EmulatorHook::observe(Event e, const SimulationState& s) {
  const bool at_output = isOutputScaleFactor(s.a, _hook.a);
  // An output step is handled once, at its Output event.
  if (e == Event::Output && !at_output)
    return;
  if (e == Event::Step && at_output)
    return;
  const auto& meta = _model.metadata();
  const ApplicationDomain dom = domainAt(s.a);
  const auto warnings = enforceValidity(meta, dom, _hook.force, _hook.name);
  if (meta.super_resolution) {
    observeSuperResolution(e, s, warnings);
    return;
  }
  // The hook works on double-precision particles (a converted copy in a run with
  // simulation.particle_precision = "single").
  std::unique_ptr<Particles> converted;
  const Particles& run = s.particles.asDouble(converted);
  const int cin = static_cast<int>(_hook.inputs.size()),
            cout = static_cast<int>(meta.outputs.size());

  // Inputs on the PM mesh or on the particle lattice.
  std::shared_ptr<const SlabDecomposition> decomp = s.mesh;
  std::unique_ptr<LagrangianExchange> exchange;
  // An Eulerian hook with its own mesh paints a copy of the particles, migrated to its slabs.
  std::unique_ptr<Particles> copy;
  if (_space == FieldSpace::Eulerian && _hook.mesh > 0 && _hook.mesh != s.mesh->n()) {
    if (!_fieldMesh)
      _fieldMesh =
          std::make_shared<SlabDecomposition>(s.mesh->comm().get(), _hook.mesh, s.mesh->box());
    decomp = _fieldMesh;
    copy = std::make_unique<Particles>(copyWithoutAttributes(run));
    migrate(*copy, *_fieldMesh);
  }
  if (_space == FieldSpace::Lagrangian) {
    if (!_lattice)
      _lattice =
          std::make_shared<SlabDecomposition>(s.mesh->comm().get(), s.particle_grid, s.mesh->box());
    decomp = _lattice;
    exchange = std::make_unique<LagrangianExchange>(_lattice, run);
  }
  std::vector<Field<float>> in, out;
  for (int c = 0; c < cin; ++c)
    in.emplace_back(decomp, "caustic::EmulatorHook::input");
  for (int c = 0; c < cout; ++c)
    out.emplace_back(decomp, "caustic::EmulatorHook::output");
  std::vector<Field<float>*> inp, outp;
  for (auto& f : in)
    inp.push_back(&f);
  for (auto& f : out)
    outp.push_back(&f);
  const std::vector<const Field<float>*> cinp(inp.begin(), inp.end());
  std::vector<const Field<float>*> coutp(outp.begin(), outp.end());
  if (_space == FieldSpace::Eulerian) {
    const Painter<float> painter(decomp, Window::CIC);
    // fof_count: the run's own FoF with the [halos] settings the validity guard checked.
    FofChannel fof;
    fof.mean_separation = s.mesh->box() / s.particle_grid;
    fof.options.b = dom.fof_b;
    fof.options.min_particles = dom.fof_min_particles;
    for (int c = 0; c < cin; ++c)
      paintEulerian(_hook.inputs[c], in[c], painter, copy ? *copy : run, s.total_particles, &fof);
  } else {
    std::vector<std::vector<double>> values;
    for (const auto& ch : _hook.inputs)
      values.push_back(lagrangianValues(ch, run, s.particle_grid, s.mesh->box(), s.lattice_offset));
    exchange->toLattice(values, inp);
  }

  InferenceOptions io;
  io.radius = _hook.radius >= 0 ? _hook.radius : meta.receptive_field;
  io.tile_planes = _hook.tile_planes;
  applyDistributed(_model, cinp, outp, io);

  std::vector<std::string> names;
  for (const auto& c : meta.outputs)
    names.push_back(c.name);
  // A halo surrogate: the expected halo-mass field, and a catalogue sampled from the fields.
  std::unique_ptr<Field<float>> expected;
  std::string catalogue_path, mass_function_path;
  if (meta.halo) {
    const Particles& parts = copy ? *copy : run;
    // The density input, when the model takes it, is the one the velocities need.
    const auto d = std::find(_hook.inputs.begin(), _hook.inputs.end(), "density");
    const Field<float>* density =
        _space == FieldSpace::Eulerian && d != _hook.inputs.end() ? &in[d - _hook.inputs.begin()]
                                                                  : nullptr;
    expected = sampleHaloSurrogate(decomp, out[meta.outputIndex(meta.halo->presence)],
                                   out[meta.outputIndex(meta.halo->mass)], density, parts, s,
                                   catalogue_path, mass_function_path);
    coutp.push_back(expected.get());
    names.push_back("halo_mass_density");
  }
  copy.reset();
  std::string cond;
  for (const auto& [k, v] : _conditioning)
    cond += (cond.empty() ? "" : ", ") + k + " = " + format("%.10g", v);
  std::map<std::string, std::string> attrs = {{"model", _hook.model},
                                              {"conditioning", cond},
                                              {"model_metadata", meta.toJson().dump()},
                                              {"space", _hook.space},
                                              {"forced", warnings.empty() ? "false" : "true"}};
  std::string inputs;
  for (const auto& x : _hook.inputs)
    inputs += (inputs.empty() ? "" : ",") + x;
  attrs["validity_warnings"] = joined(warnings, "; ");
  attrs["inputs"] = inputs;
  const std::string stem =
      e == Event::Step ? format("%s_step%04d", _hook.name.c_str(), s.step) : _hook.name;
  const std::string path = outputName(_params.output.directory, stem, s.a, ".hdf5");
  if (_space == FieldSpace::Eulerian) {
    writeFields<float>(path, coutp, names, "emulator output (" + meta.kind + ")", s.a, _params,
                       attrs);
  } else {
    const auto values = exchange->fromLattice(coutp);
    writeParticleValues(path, s.mesh->comm(), run, values, names, s.a, _params, attrs);
  }
  if (s.mesh->comm().rank() == 0) {
    warnOutsideDomain(_hook.name, warnings);
    if (_cb) {
      _cb("emulator", path);
      if (!catalogue_path.empty()) {
        _cb("halos", catalogue_path);
        _cb("mass_function", mass_function_path);
      }
    }
  }
}

void EmulatorHook::observeSuperResolution(Event, const SimulationState& s,
                                          const std::vector<std::string>& warnings) {
  const auto& meta = _model.metadata();
  const int f = meta.super_resolution->factor;
  if (!_lattice)
    _lattice =
        std::make_shared<SlabDecomposition>(s.mesh->comm().get(), s.particle_grid, s.mesh->box());
  InferenceOptions io;
  io.radius = _hook.radius >= 0 ? _hook.radius : meta.receptive_field;
  io.tile_planes = _hook.tile_planes;
  Particles hr = [&] {
    std::unique_ptr<Particles> converted; // in a single-precision run
    return superResolveParticles(_model, s.particles.asDouble(converted), _lattice,
                                 s.lattice_offset, io);
  }();
  const double total = s.total_particles * f * f * f;
  const double mass = s.particle_mass / (f * f * f);
  // On the slabs of the PM mesh or of the hook's own mesh (power spectrum, FoF).
  const int nm = _hook.mesh > 0 ? _hook.mesh : s.mesh->n();
  if (!_fieldMesh || _fieldMesh->n() != nm)
    _fieldMesh = nm == s.mesh->n() ? s.mesh
                                   : std::make_shared<const SlabDecomposition>(
                                         s.mesh->comm().get(), nm, s.mesh->box());
  migrate(hr, *_fieldMesh);
  if (_hook.pgd) {
    // Potential gradient descent on the super-resolved particles (their own density, the exact
    // kernel on the hook's mesh), then back to their owning ranks: everything below sees them.
    if (!_pgdWorkspace || &_pgdWorkspace->decomp() != _fieldMesh.get())
      _pgdWorkspace = std::make_shared<Workspace<float>>(_fieldMesh, FFTW_ESTIMATE, 2);
    GravityOptions go;
    go.kernel = GravityKernel::Exact;
    PgdDisplacement<float> pgd(_pgdWorkspace, _params.cosmology.Omega_m, go);
    pgd.displace(hr, total, s.a, *_hook.pgd);
    migrate(hr, *_fieldMesh);
  }
  std::size_t contracted = 0;
  if (_hook.contract) {
    // FoF on the (sharpened) super-resolved particles, then the cores of its small groups pulled
    // in (pm/analysis/group_contraction.hpp), then back to the owning ranks.
    FofOptions co;
    co.b = _hook.contract->b;
    co.min_particles = _hook.contract->min_members;
    const HaloCatalogue groups =
        findHalos(hr, *_fieldMesh, s.mesh->box() / (s.particle_grid * f), co);
    contracted = contractGroups(hr, groups, s.mesh->box(), _hook.contract->shape);
    migrate(hr, *_fieldMesh);
  }
  const auto& dir = _params.output.directory;
  const std::string path = outputName(dir, _hook.name, s.a, ".hdf5");
  SnapshotInfo info;
  info.a = s.a;
  info.particle_mass = mass;
  info.total_particles = static_cast<std::uint64_t>(std::llround(total));
  writeSnapshot(path, s.mesh->comm(), hr, info, _params);

  PowerOptions po;
  po.window = windowFromName(_params.output.window);
  po.interlace = _params.output.interlace;
  const FFT<float> fft(_fieldMesh);
  const PowerSpectrum ps = measurePower<float>(hr, total, _fieldMesh, fft, po);
  const std::string ppath = outputName(dir, _hook.name + "_power", s.a, ".txt");
  if (s.mesh->comm().rank() == 0) {
    const int n = s.particle_grid * f;
    const double L = s.mesh->box();
    writePowerTable(
        ppath, ps,
        {format("caustic power spectrum of the super-resolved particles of [emulators.%s] at a = "
                "%.6g (z = %.6g)",
                _hook.name.c_str(), s.a, 1.0 / s.a - 1.0),
         format("box %g Mpc/h, %d^3 particles (x%d of the run's %d^3), mesh %d^3, window %s%s, "
                "compensated; model %s",
                L, n, f, s.particle_grid, nm, _params.output.window.c_str(),
                _params.output.interlace ? ", interlaced" : "", _hook.model.c_str()),
         format("k_nyquist_particles = %.6g h/Mpc", M_PI * n / L),
         _hook.pgd ? format("PGD-sharpened: alpha = %.6g, k_l = %.6g h/Mpc, k_s = %.6g h/Mpc",
                            (*_hook.pgd)[0], (*_hook.pgd)[1], (*_hook.pgd)[2])
                   : std::string("PGD-sharpened: no"),
         _hook.contract
             ? format("group-contracted: lambda = %.6g, R = %.6g Mpc/h, groups of %d to %llu "
                      "members (FoF b = %.6g): %zu groups",
                      _hook.contract->shape.lambda, _hook.contract->shape.radius,
                      _hook.contract->min_members,
                      static_cast<unsigned long long>(_hook.contract->shape.max_members),
                      _hook.contract->b, contracted)
             : std::string("group-contracted: no")});
  }
  RunHaloPaths halos;
  const auto& h = _params.halos;
  if (h.enabled && isOutputScaleFactor(s.a, h.a)) {
    FofOptions opt;
    opt.b = h.b;
    opt.min_particles = h.min_particles;
    opt.member_ids = h.member_ids;
    const HaloCatalogue cat =
        findHalos(hr, *_fieldMesh, s.mesh->box() / (s.particle_grid * f), opt);
    halos = writeRunHalos(_params, s.mesh->comm().get(), cat, s.a, mass, h.b, h.min_particles,
                          _hook.name + "_halos", _hook.name + "_mass_function");
  }
  if (s.mesh->comm().rank() == 0) {
    warnOutsideDomain(_hook.name, warnings);
    if (_cb) {
      _cb("emulator", path);
      _cb("power_spectrum", ppath);
      if (!halos.catalogue.empty()) {
        _cb("halos", halos.catalogue);
        _cb("mass_function", halos.mass_function);
      }
    }
  }
}

std::unique_ptr<Field<float>>
EmulatorHook::sampleHaloSurrogate(const std::shared_ptr<const SlabDecomposition>& decomp,
                                  const Field<float>& presence, const Field<float>& mass,
                                  const Field<float>* density, const Particles& parts,
                                  const SimulationState& s, std::string& catalogue_path,
                                  std::string& mass_function_path) {
  const HaloSurrogateInfo& h = *_model.metadata().halo;
  // The matter velocity per voxel: the CIC momentum over the CIC density, p = (1 + delta) p /
  // (1 + delta) (0 where the voxel holds no mass).
  const Painter<float> painter(decomp, Window::CIC);
  std::unique_ptr<Field<float>> painted;
  if (!density) {
    painted = std::make_unique<Field<float>>(decomp, "caustic::EmulatorHook::rho");
    paintEulerian("density", *painted, painter, parts, s.total_particles);
    density = painted.get();
  }
  const Field<float>& rho = *density;
  std::array<std::unique_ptr<Field<float>>, 3> mom;
  const char* comp[3] = {"momentum_x", "momentum_y", "momentum_z"};
  for (int a = 0; a < 3; ++a) {
    mom[a] = std::make_unique<Field<float>>(decomp, "caustic::EmulatorHook::momentum");
    paintEulerian(comp[a], *mom[a], painter, parts, s.total_particles);
    const auto m = mom[a]->real(), r = rho.real();
    decomp->forEachPoint("caustic::EmulatorHook::velocity", KOKKOS_LAMBDA(const MeshPoint& q) {
      const float w = 1.0f + r(q.index);
      m(q.index) = w > 1e-3f ? m(q.index) / w : 0.0f;
    });
  }
  HaloSamplerOptions opt;
  opt.seed = _hook.seed ? *_hook.seed : static_cast<std::uint64_t>(_params.simulation.seed);
  opt.output = static_cast<std::uint32_t>(std::lround(s.a * 1e4));
  opt.log_mass_scatter = h.log_mass_scatter;
  opt.min_mass = h.min_mass;
  opt.particle_mass = s.particle_mass * 1e10;
  opt.top = _hook.selection == "top";
  const HaloCatalogue cat = sampleHalos(presence, mass, {mom[0].get(), mom[1].get(), mom[2].get()},
                                        opt);
  const auto paths = writeRunHalos(
      _params, s.mesh->comm().get(), cat, s.a, s.particle_mass, h.linking_length,
      static_cast<int>(std::max(1L, std::lround(h.min_mass / opt.particle_mass))), _hook.name,
      _hook.name + "_mass_function");
  catalogue_path = paths.catalogue;
  mass_function_path = paths.mass_function;
  // The expected halo mass per voxel: presence x E[M], E[M] = M exp(sigma^2 / 2) for the
  // lognormal draw (the truncation at min_mass neglected).
  auto expected = std::make_unique<Field<float>>(decomp, "caustic::EmulatorHook::halo_mass");
  expectedHaloMass(presence, mass, h.log_mass_scatter, *expected);
  return expected;
}

} // namespace caustic
