#include "io/observers.hpp"

#include "io/atomic_file.hpp"
#include "io/baryon_outputs.hpp"
#include "io/fields.hpp"
#include "io/format.hpp"
#include "io/halos.hpp"
#include "io/ldl_record.hpp"
#include "io/snapshot.hpp"
#include "io/tables.hpp"
#include "pm/baryons/ldl.hpp"
#include "pm/baryons/ldl_fit.hpp"
#include "pm/force/painter.hpp"
#include "pm/particles/migrate.hpp"
#include "pm/stepping/simulation.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>

namespace caustic {

std::string outputName(const std::string& dir, const std::string& stem, double a,
                       const std::string& ext) {
  return (std::filesystem::path(dir) / format("%s_a%.4f%s", stem.c_str(), a, ext.c_str())).string();
}

void SnapshotWriter::observe(Event, const SimulationState& s) {
  const std::string path = outputName(_params.output.directory, "snapshot", s.a, ".hdf5");
  s.particles.visit([&](const auto& parts) {
    writeSnapshot(path, s.mesh->comm(), parts,
                  {s.a, s.particle_mass, static_cast<std::uint64_t>(s.total_particles)}, _params);
  });
  if (s.mesh->comm().rank() == 0 && _cb)
    _cb("snapshot", path);
}

template <class T>
PowerSpectrumWriter<T>::PowerSpectrumWriter(const Params& params, Workspace<T>& workspace,
                                            std::function<double(double)> linear_power,
                                            OutputCallback cb)
    : _params(params), _ws(workspace), _plin(std::move(linear_power)), _cb(std::move(cb)) {}

template <class T> PowerSpectrumWriter<T>::~PowerSpectrumWriter() {
  if (_gravity)
    _gravity->setDensityTap("", nullptr);
}

template <class T> PowerOptions PowerSpectrumWriter<T>::options() const {
  const auto& out = _params.output;
  PowerOptions po;
  po.window = windowFromName(out.window);
  po.interlace = out.interlace;
  po.subtract_shot_noise = out.subtract_shot_noise;
  return po;
}

template <class T>
bool PowerSpectrumWriter<T>::measureAtForces(Gravity<T>& gravity, double a_start) {
  const PowerOptions po = options();
  if (gravity.painter().window() != po.window || &gravity.workspace() != &_ws)
    return false;
  _gravity = &gravity;
  _measured_a = a_start;
  const std::vector<double> outputs = _params.output.a;
  gravity.setDensityTap(
      "observer:" + name(), [this, po, outputs](const Field<T>& rho_k, double total, double a) {
        // Once per output: the opening force of the next step sees the same positions again.
        if (!isOutputScaleFactor(a, outputs) || isOutputScaleFactor(a, {_measured_a}))
          return;
        if (po.interlace) {
          // The interlaced copy is painted in observe(), in the force's mesh once the force is
          // done with it: meanwhile only the binned modes of this one are kept (0.53 mesh).
          _unshifted = std::make_unique<BinnedModes<T>>(rho_k);
        } else {
          _spectrum = binCompensatedPower<T>(rho_k, nullptr, po.window);
          addShotNoise(_spectrum, rho_k.decomp().box(), total, po.subtract_shot_noise);
        }
        _pending = true;
        _measured_a = a;
      });
  return true;
}

template <class T> void PowerSpectrumWriter<T>::observe(Event, const SimulationState& s) {
  const auto& out = _params.output;
  const PowerOptions po = options();
  PowerSpectrum ps;
  if (_pending && isOutputScaleFactor(s.a, {_measured_a})) {
    // Measured at the force at these positions; interlaced: the copy at x + H/2 now.
    if (_unshifted) {
      const auto shifted = _ws.lease("interlaced");
      const int nm = s.mesh->n();
      s.particles.visit([&](const auto& parts) {
        _gravity->painter().paint(*shifted, parts.x, parts.size(),
                                  double(nm) * nm * nm / s.total_particles, 0.5);
      });
      _ws.fft().forward(*shifted);
      ps = binCompensatedPower(*_unshifted, &*shifted, po.window);
      addShotNoise(ps, s.mesh->box(), s.total_particles, po.subtract_shot_noise);
    } else {
      ps = std::move(_spectrum);
    }
  } else {
    const auto work = _ws.lease("power");
    ps = s.particles.visit([&](const auto& parts) {
      return measurePower(*work, _ws.fft(), parts, s.total_particles, po);
    });
  }
  _unshifted.reset();
  _pending = false;
  _measured_a = s.a;
  if (s.mesh->comm().rank() != 0)
    return;
  const auto& sim = _params.simulation;
  const std::string path = outputName(out.directory, "power", s.a, ".txt");
  const double g = s.cosmology->D1(s.a);
  std::ostringstream h1, h2, h3;
  h1 << "caustic power spectrum at a = " << s.a << " (z = " << 1.0 / s.a - 1.0 << "), step "
     << s.step << " of " << s.steps_total;
  h2 << "box " << sim.box << " Mpc/h, " << sim.particles << "^3 particles, mesh " << sim.mesh
     << "^3, window " << out.window << (out.interlace ? ", interlaced" : "")
     << ", compensated; parameter hash " << _params.hash();
  h3 << "k_nyquist_particles = " << M_PI * sim.particles / sim.box << " h/Mpc";
  writePowerTable(
      path, ps, {h1.str(), h2.str(), h3.str(), "P_lin: linear theory at the same a, D1(a)^2 P(k)"},
      [&](double k) { return g * g * _plin(k); });
  if (_cb)
    _cb("power_spectrum", path);
}

template <class T> void DensityWriter<T>::observe(Event, const SimulationState& s) {
  const std::string path = outputName(_params.output.directory, "density", s.a, ".hdf5");
  const std::string what = "density contrast rho/mean - 1 (dimensionless)";
  const int n = _params.output.density_mesh;
  if (n > 0 && n != s.mesh->n()) {
    if (!_own)
      _own = std::make_shared<SlabDecomposition>(s.mesh->comm().get(), n, s.mesh->box());
    Field<T> rho(_own, "caustic::DensityWriter::rho");
    s.particles.visit([&](const auto& parts) {
      auto copy = copyWithoutAttributes(parts);
      migrate(copy, *_own);
      paintDensityContrast(rho, Painter<T>(_own, windowFromName(_params.output.window)), copy,
                           s.total_particles);
    });
    writeField(path, rho, "density", what, s.a, _params);
  } else {
    const auto lease = _ws.lease("density");
    Field<T>& rho = *lease;
    s.particles.visit([&](const auto& parts) {
      paintDensityContrast(rho, Painter<T>(s.mesh, windowFromName(_params.output.window)), parts,
                           s.total_particles);
    });
    writeField(path, rho, "density", what, s.a, _params);
  }
  if (s.mesh->comm().rank() == 0 && _cb)
    _cb("density", path);
}

void HaloFinder::observe(Event, const SimulationState& s) {
  const auto& h = _params.halos;
  if (!isOutputScaleFactor(s.a, h.a))
    return;
  FofOptions opt;
  opt.b = h.b;
  opt.min_particles = h.min_particles;
  opt.member_ids = h.member_ids;
  const double sep = _params.simulation.box / _params.simulation.particles;
  _last = s.particles.visit([&](const auto& parts) { return findHalos(parts, *s.mesh, sep, opt); });
  _last_a = s.a;
  const auto paths = writeRunHalos(_params, s.mesh->comm().get(), _last, s.a, s.particle_mass, h.b,
                                   h.min_particles, "halos", "mass_function");
  if (s.mesh->comm().rank() == 0 && _cb) {
    _cb("halos", paths.catalogue);
    _cb("mass_function", paths.mass_function);
  }
}

RunHaloPaths writeRunHalos(const Params& params, MPI_Comm comm, const HaloCatalogue& cat, double a,
                           double particle_mass, double b, int min_particles,
                           const std::string& stem, const std::string& mf_stem) {
  HaloMeta meta{a, params.simulation.box, particle_mass, b, min_particles};
  meta.omega_m = params.cosmology.Omega_m;
  meta.omega_lambda = 1.0 - params.cosmology.Omega_m;
  meta.hubble = params.cosmology.h;
  RunHaloPaths paths;
  paths.catalogue = (std::filesystem::path(params.output.directory) /
                     haloCatalogueName(format("%s_a%.4f", stem.c_str(), a)))
                        .string();
  writeHaloCatalogue(paths.catalogue, comm, cat, meta, &params);
  paths.mass_function = outputName(params.output.directory, mf_stem, a, ".txt");
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  if (rank == 0)
    writeMassFunction(paths.mass_function, cat, meta);
  return paths;
}

struct LdlHook::State {
  LdlRecord record;
  std::vector<double> params; // at this run's settings (a conditioned record's)
  std::string settings;       // "name = value, ..." of a conditioned record
  std::string warnings;
  std::shared_ptr<const SlabDecomposition> decomp;
  std::unique_ptr<LdlModel> painter; // an LdlPainter, or an LdlProduct of a product record,
                                     // in an LdlHaloModel for a record with a halo layer
  LdlHaloSet halos;                  // the catalogue of the output being painted
};

LdlHook::LdlHook(const Params& params, const EmulatorHookParams& hook, OutputCallback cb)
    : _params(params), _hook(hook), _cb(std::move(cb)), _state(std::make_unique<State>()) {
  _state->record = readLdlRecord(hook.model);
  const LdlRecord& r = _state->record;
  const std::string key = "emulators." + hook.name;
  std::vector<std::string> bad;
  const double box = params.simulation.box;
  if (std::abs(r.box - box) > 1e-6 * box)
    bad.push_back("box " + format("%g", box) + " Mpc/h, record " + format("%g", r.box) +
                  " (the painter's scales are in h/Mpc on a " + std::to_string(r.mesh) +
                  "^3 mesh of that box)");
  std::vector<double> as = hook.a;
  if (hook.every_step) {
    as.push_back(params.simulation.a_start);
    as.push_back(params.simulation.a_end);
  }
  for (double a : as)
    if (std::abs(a - r.a) > 0.05)
      bad.push_back("a = " + format("%.4f", a) + ", fitted at a = " + format("%.4f", r.a));
  // A conditioned painter: its parameters at this run's settings, within the fitted range.
  std::vector<std::vector<double>> slopes;
  std::vector<double> c;
  std::vector<std::string> settings;
  for (const auto& k : r.conditioning) {
    const double v = numericSetting(params, k.name).value_or(NAN);
    if (!k.fitted(v))
      bad.push_back(k.name + " = " + format("%g", v) + ", fitted for " + format("%g", k.min) +
                    " to " + format("%g", k.max));
    slopes.push_back(k.slope);
    c.push_back(k.at(v));
    settings.push_back(k.name + " = " + format("%g", v));
  }
  if (r.halo_layer) {
    const auto& h = params.halos;
    if (!h.enabled || hook.every_step)
      throw ParamError(key + ".model = " + hook.model +
                       ": a painter with a halo layer reads the run's FoF catalogue at its "
                       "outputs; set [halos] enabled = true with the hook's scale factors" +
                       std::string(hook.every_step ? " and every_step = false" : ""));
    for (double a : hook.a)
      if (!isOutputScaleFactor(a, h.a))
        throw ParamError(key + ".a includes " + format("%.4f", a) +
                         ", which is not among [halos].a: the halo layer needs the FoF "
                         "catalogue of every output it paints");
    if (std::abs(h.b - r.halo_layer->fof_b) > 1e-9 ||
        h.min_particles != r.halo_layer->fof_min_particles)
      bad.push_back("[halos] b = " + format("%g", h.b) + ", min_particles = " +
                    std::to_string(h.min_particles) + "; the halo layer was fitted to catalogues " +
                    "of b = " + format("%g", r.halo_layer->fof_b) +
                    ", min_particles = " + std::to_string(r.halo_layer->fof_min_particles));
  }
  _state->params = r.halo_layer ? r.parameters : ldlParametersAt(r.parameters, slopes, c, r.layers);
  _state->settings = joined(settings, ", ");
  _state->warnings = joined(bad, "; ");
  if (!bad.empty() && !hook.force)
    throw ParamError(key + ".model = " + hook.model + ": outside the painter's domain: " +
                     _state->warnings + "; set " + key + ".force = true to apply it anyway");
}

LdlHook::~LdlHook() = default;

void LdlHook::observe(Event e, const SimulationState& s) {
  if (e == Event::Output && !isOutputScaleFactor(s.a, _hook.a))
    return;
  State& st = *_state;
  if (!st.painter) {
    st.decomp = std::make_shared<const SlabDecomposition>(s.mesh->comm().get(), st.record.mesh,
                                                          _params.simulation.box);
    if (st.record.factors.empty()) {
      st.painter = std::make_unique<LdlPainter>(st.decomp, st.record.layers);
    } else {
      std::vector<int> layers;
      for (const auto& f : st.record.factors)
        layers.push_back(f.layers);
      st.painter = std::make_unique<LdlProduct>(st.decomp, layers, st.record.scale);
    }
    if (st.record.halo_layer) {
      const LdlHaloLayout layout{st.record.halo_layer->mass_nodes,
                                 st.record.halo_layer->radius_nodes};
      if (st.record.halo_layer->kind == "displacement") // a plain painter (checked on reading)
        st.painter = std::make_unique<LdlHaloDisplacement>(
            st.decomp, std::unique_ptr<LdlPainter>(static_cast<LdlPainter*>(st.painter.release())),
            layout);
      else
        st.painter = std::make_unique<LdlHaloModel>(st.decomp, std::move(st.painter), layout);
    }
  }
  if (st.record.halo_layer) {
    const HaloCatalogue* cat = _finder ? _finder->catalogue(s.a) : nullptr;
    if (!cat)
      throw std::logic_error("emulator " + _hook.name + " at a = " + format("%.4f", s.a) +
                             ": no FoF catalogue of this output for its halo layer");
    std::vector<double> mass(cat->size());
    for (std::size_t g = 0; g < mass.size(); ++g)
      mass[g] = cat->count[g] * s.particle_mass * 1e10; // Msun/h
    st.halos = ldlHaloSet(cat->pos, mass, _params.cosmology.Omega_m);
    st.painter->setHalos(&st.halos);
  }
  Field<double> out(st.decomp, "caustic::ldl_hook::out");
  std::unique_ptr<Particles> converted;
  const Particles& parts = s.particles.asDouble(converted);
  st.painter->forward(parts.x, parts.size(), st.params, out);
  converted.reset();
  const std::string stem =
      e == Event::Step ? format("%s_step%04d", _hook.name.c_str(), s.step) : _hook.name;
  const std::string path = outputName(_params.output.directory, stem, s.a, ".hdf5");
  std::map<std::string, std::string> attrs = {{"model", _hook.model},
                                              {"kind", "ldl"},
                                              {"forced", st.warnings.empty() ? "false" : "true"},
                                              {"validity_warnings", st.warnings},
                                              {"conditioning", st.settings}};
  writeField<double>(path, out, st.record.field,
                     "LDL painter (" + st.record.field + ", units of its training target)", s.a,
                     _params, attrs);
  if (s.mesh->comm().rank() == 0) {
    if (!st.warnings.empty())
      std::fprintf(stderr,
                   "caustic: warning: emulator %s applied outside its domain (force = true): %s\n",
                   _hook.name.c_str(), st.warnings.c_str());
    if (_cb)
      _cb("emulator", path);
  }
}

const HaloCatalogue* HaloFinder::catalogue(double a) const {
  return _last_a >= 0 && std::abs(_last_a - a) <= 1e-9 * a ? &_last : nullptr;
}

void BaryonWriter::observe(Event, const SimulationState& s) {
  const auto& b = _params.baryons;
  if (!isOutputScaleFactor(s.a, b.a))
    return;
  const HaloCatalogue* cat = _halos.catalogue(s.a);
  if (!cat)
    throw std::logic_error("baryons at a = " + format("%.4f", s.a) +
                           ": no FoF catalogue of this output (the halo finder must run first)");
  BaryonInput in;
  in.source = format("run output a = %.4f", s.a);
  in.a = s.a;
  in.box = _params.simulation.box;
  in.particle_mass = s.particle_mass;
  in.total_particles = static_cast<std::uint64_t>(s.total_particles);
  in.np = s.particle_grid;
  in.count = cat->count;
  in.mass.resize(cat->size());
  for (std::size_t g = 0; g < cat->size(); ++g)
    in.mass[g] = cat->count[g] * s.particle_mass;
  in.pos = cat->pos;
  // A copy of the positions (momenta and IDs for the snapshot); the run's particles are untouched.
  Particles copy =
      s.particles.visit([](const auto& parts) { return convertWithoutAttributes<double>(parts); });
  const std::string dir =
      (std::filesystem::path(_params.output.directory) / format("baryons_a%.4f", s.a)).string();
  if (s.mesh->comm().rank() == 0)
    std::filesystem::create_directories(dir);
  MPI_Barrier(s.mesh->comm().get());
  const nlohmann::json figures =
      writeBaryonOutputs(s.mesh->comm(), copy, in, _params, dir, _timer, _log, _cb);
  if (s.mesh->comm().rank() == 0)
    writeTextFile((std::filesystem::path(dir) / "baryons_summary.json").string(),
                  figures.dump(2) + "\n");
}

template class PowerSpectrumWriter<float>;
template class PowerSpectrumWriter<double>;
template class DensityWriter<float>;
template class DensityWriter<double>;

} // namespace caustic
