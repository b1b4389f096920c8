#include "emulators/hooks.hpp"

#include "io/fields.hpp"
#include "pm/painter.hpp"

#include <cmath>

namespace caustic {

namespace {
ApplicationDomain domainAt(const Params& params, const std::string& input, double a) {
  ApplicationDomain dom;
  dom.cell_size = params.simulation.box / params.simulation.mesh;
  dom.box = params.simulation.box;
  dom.redshift = 1.0 / a - 1.0;
  dom.cosmology = params.cosmology;
  dom.input_channels = {input};
  return dom;
}
} // namespace

EmulatorHook::EmulatorHook(const Params& params, const EmulatorHookParams& hook, OutputCallback cb)
    : _params(params), _hook(hook), _model(Model::load(hook.model, hook.metadata)),
      _cb(std::move(cb)) {
  // Refuse at start-up, before anything is written, rather than at the first output.
  for (double a : _hook.a)
    enforceValidity(_model.metadata(), domainAt(params, _hook.input, a), _hook.force, _hook.name);
  if (_hook.radius >= 0 && _hook.radius < _model.metadata().receptive_field)
    throw std::runtime_error("emulators." + _hook.name +
                             ".radius = " + std::to_string(_hook.radius) +
                             ": smaller than the model's receptive field (" +
                             std::to_string(_model.metadata().receptive_field) + " cells)");
}

void EmulatorHook::observe(Event, const SimulationState& s) {
  bool wanted = false;
  for (double a : _hook.a)
    wanted = wanted || std::abs(a - s.a) <= 1e-10 * s.a;
  if (!wanted)
    return;
  const auto& meta = _model.metadata();
  const auto warnings =
      enforceValidity(meta, domainAt(_params, _hook.input, s.a), _hook.force, _hook.name);
  // Input: the density contrast painted on the PM mesh (CIC), single precision.
  Field<float> in(s.mesh, "caustic::EmulatorHook::input"),
      out(s.mesh, "caustic::EmulatorHook::output");
  paintDensityContrast(in, Painter<float>(s.mesh, Window::CIC), *s.particles, s.total_particles);
  InferenceOptions io;
  io.radius = _hook.radius >= 0 ? _hook.radius : meta.receptive_field;
  io.tile_planes = _hook.tile_planes;
  applyDistributed(_model, {&in}, {&out}, io);
  std::map<std::string, std::string> attrs = {{"model", _hook.model},
                                              {"model_metadata", meta.toJson().dump()},
                                              {"forced", warnings.empty() ? "false" : "true"}};
  std::string w;
  for (const auto& x : warnings)
    w += (w.empty() ? "" : "; ") + x;
  attrs["validity_warnings"] = w;
  const std::string path = outputName(_params.output.directory, _hook.name, s.a, ".hdf5");
  const std::string channel = meta.outputs.empty() ? _hook.name : meta.outputs.front().name;
  writeField(path, out, channel, "emulator output (" + meta.kind + ")", s.a, _params, attrs);
  if (s.mesh->comm().rank() == 0) {
    if (!warnings.empty())
      std::fprintf(
          stderr,
          "caustic: warning: emulator %s applied outside its validity domain (force = true): %s\n",
          _hook.name.c_str(), w.c_str());
    if (_cb)
      _cb("emulator", path);
  }
}

} // namespace caustic
