#include "io/params.hpp"
#include "io/format.hpp"
#include "io/text_file.hpp"
#include "io/toml_section.hpp"

#include "pm/cosmology/linear_power.hpp"
#include "pm/stepping/simulation.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <map>
#include <set>
#include <sstream>

namespace caustic {

const std::vector<std::string>& hookChannels(const std::string& space) {
  static const std::vector<std::string> eulerian = {"density", "momentum_x", "momentum_y",
                                                    "momentum_z", "fof_count"};
  static const std::vector<std::string> lagrangian = {"displacement_x", "displacement_y",
                                                      "displacement_z", "momentum_x",
                                                      "momentum_y",     "momentum_z"};
  if (space == "eulerian")
    return eulerian;
  if (space == "lagrangian")
    return lagrangian;
  throw std::invalid_argument("field space \"" + space + "\": allowed: eulerian, lagrangian");
}

using namespace tomlsec;

namespace {
// Every value of `key` must be one of the output scale factors.
void requireOutputScaleFactors(const std::vector<double>& as, const std::vector<double>& outputs,
                               const std::string& key) {
  for (double a : as)
    if (!isOutputScaleFactor(a, outputs))
      throw ParamError(key + " = " + formatNumber(a) +
                       ": not an output scale factor; allowed: values of output.a");
}
} // namespace

std::string Params::hash() const { return fnv1aHex(toml); }

Params loadParams(const std::string& path, const std::vector<std::string>& overrides, int nranks) {
  const std::string text = readTextFile(path, "parameter file");
  const auto base = std::filesystem::path(path).parent_path().string();
  return parseParams(text, overrides, nranks, base.empty() ? "." : base, path);
}

Params parseParams(const std::string& text, const std::vector<std::string>& overrides, int nranks,
                   const std::string& base_dir, const std::string& source) {
  toml::table root = parseTomlText(text, source);
  for (const auto& ov : overrides)
    applyOverride(root, ov);

  const std::set<std::string> sections = {"cosmology", "power", "simulation", "gravity",   "fft",
                                          "output",    "halos", "emulators",  "checkpoint", "baryons"};
  for (auto&& [k, v] : root) {
    if (!sections.count(std::string(k.str())))
      throw ParamError(
          "[" + std::string(k.str()) +
          "]: unknown section; allowed: [cosmology], [power], [simulation], [gravity], "
          "[fft], [output], [halos], [checkpoint], [baryons], [emulators.NAME]");
  }

  Params p;
  p.source = source;

  { // [cosmology]
    Section s(&root, "cosmology");
    auto& c = p.cosmology;
    c.Omega_m = s.number("Omega_m", std::nullopt, "a number in (0, 1]");
    requireRange(c.Omega_m > 0 && c.Omega_m <= 1, s.key("Omega_m"), c.Omega_m, "(0, 1]");
    c.Omega_b = s.number("Omega_b", std::nullopt, "a number in (0, Omega_m)");
    requireRange(c.Omega_b > 0 && c.Omega_b < c.Omega_m, s.key("Omega_b"), c.Omega_b,
                 "(0, Omega_m = " + formatNumber(c.Omega_m) + ")");
    c.h = s.number("h", std::nullopt, "a number in (0, 2]");
    requireRange(c.h > 0 && c.h <= 2, s.key("h"), c.h, "(0, 2]");
    c.n_s = s.number("n_s", std::nullopt, "a number in (0.5, 1.5)");
    requireRange(c.n_s > 0.5 && c.n_s < 1.5, s.key("n_s"), c.n_s, "(0.5, 1.5)");
    c.sigma8 = s.number("sigma8", std::nullopt, "a number in (0, 3)");
    requireRange(c.sigma8 > 0 && c.sigma8 < 3, s.key("sigma8"), c.sigma8, "(0, 3)");
    c.w0 = s.number("w0", -1.0, "a number in [-3, 0)");
    requireRange(c.w0 >= -3 && c.w0 < 0, s.key("w0"), c.w0, "[-3, 0)");
    c.wa = s.number("wa", 0.0, "a number with w0 + wa < 0");
    requireRange(c.wa >= -5 && c.wa <= 5 && c.w0 + c.wa < 0, s.key("wa"), c.wa,
                 "[-5, 5] with w0 + wa < 0 (dark energy subdominant at early times)");
    c.T_cmb = s.number("T_cmb", 2.7255, "a number in (0, 10] K");
    requireRange(c.T_cmb > 0 && c.T_cmb <= 10, s.key("T_cmb"), c.T_cmb, "(0, 10] K");
    s.finish();
  }

  { // [simulation]
    Section s(&root, "simulation");
    auto& m = p.simulation;
    m.box = s.number("box", std::nullopt, "a box side in Mpc/h, > 0");
    requireRange(m.box > 0, s.key("box"), m.box, "> 0 (Mpc/h)");
    const auto np =
        s.integer("particles", std::nullopt, "an even integer >= 4 (particles per side)");
    if (np < 4 || np > 8192 || np % 2)
      throw ParamError(s.key("particles") + " = " + std::to_string(np) +
                       ": not allowed; expected an even integer in [4, 8192] (particles per side)");
    m.particles = static_cast<int>(np);
    const auto nm = s.integer("mesh", 2 * np, "an even integer >= simulation.particles");
    // The force's gradient readout reaches 5 planes beyond a slab (kGhostGradient in
    // pm/force/painter.cpp); a mesh must have at least that many planes beyond one.
    if (nm % 2 || nm < 8 || nm > 16384)
      throw ParamError(s.key("mesh") + " = " + std::to_string(nm) +
                       ": not allowed; expected an even integer in [8, 16384] (mesh cells per "
                       "side)");
    if (nm < np)
      throw ParamError(s.key("mesh") + " = " + std::to_string(nm) +
                       ": smaller than the particle grid (simulation.particles = " +
                       std::to_string(np) + "); allowed: mesh >= particles");
    m.mesh = static_cast<int>(nm);
    if (nranks > nm)
      throw ParamError(s.key("mesh") + " = " + std::to_string(nm) + ": more MPI ranks (" +
                       std::to_string(nranks) + ") than mesh planes; allowed: at most " +
                       std::to_string(nm) + " ranks");
    if (nranks > np)
      throw ParamError(s.key("particles") + " = " + std::to_string(np) + ": more MPI ranks (" +
                       std::to_string(nranks) + ") than lattice planes; allowed: at most " +
                       std::to_string(np) + " ranks");
    m.a_start = s.number("a_start", 0.02, "a scale factor in [1e-3, 1)");
    requireRange(m.a_start >= 1e-3 && m.a_start < 1, s.key("a_start"), m.a_start, "[1e-3, 1)");
    m.a_end = s.number("a_end", 1.0, "a scale factor in (a_start, 2]");
    if (!(m.a_end > m.a_start && m.a_end <= 2))
      throw ParamError(s.key("a_end") + " = " + formatNumber(m.a_end) +
                       ": not allowed; expected a_start (" + formatNumber(m.a_start) +
                       ") < a_end <= 2");
    const auto st = s.integer("steps", 10, "an integer in [1, 100000]");
    if (st < 1 || st > 100000)
      throw ParamError(s.key("steps") + " = " + std::to_string(st) +
                       ": out of range; allowed: [1, 100000]");
    m.steps = static_cast<int>(st);
    m.spacing = s.choice("spacing", "linear", {"linear", "log"}) == "log"
                    ? SimulationParams::Spacing::Log
                    : SimulationParams::Spacing::Linear;
    const auto lo = s.integer("lpt_order", 2, "1 (Zel'dovich) or 2 (2LPT)");
    if (lo != 1 && lo != 2)
      throw ParamError(s.key("lpt_order") + " = " + std::to_string(lo) +
                       ": not allowed; expected 1 (Zel'dovich) or 2 (2LPT)");
    m.lpt_order = static_cast<int>(lo);
    const auto seed = s.integer("seed", 1, "a non-negative integer");
    if (seed < 0)
      throw ParamError(s.key("seed") + " = " + std::to_string(seed) +
                       ": negative; expected an integer >= 0");
    m.seed = static_cast<std::uint64_t>(seed);
    m.fixed_amplitude = s.boolean("fixed_amplitude", false);
    m.paired = s.boolean("paired", false);
    m.double_precision = s.choice("precision", "single", {"single", "double"}) == "double";
    m.single_particles = s.choice("particle_precision", "double", {"single", "double"}) == "single";
    if (m.single_particles && m.double_precision)
      throw ParamError(s.key("particle_precision") +
                       " = \"single\": needs the single-precision mesh; allowed with " +
                       s.key("precision") + " = \"double\": \"double\"");
    // Default: half a PM cell, so that particles do not start on mesh points. Runs that must
    // share their particles with a run on another mesh (the references of a force correction)
    // set it to that run's value.
    m.lattice_offset = s.number("lattice_offset", 0.5 * m.box / m.mesh,
                                "a number in [0, box / particles) [Mpc/h]");
    requireRange(m.lattice_offset >= 0 && m.lattice_offset < m.box / m.particles,
                 s.key("lattice_offset"), m.lattice_offset,
                 "[0, box / particles) = [0, " + format("%g", m.box / m.particles) + ")");
    s.finish();
  }

  { // [power]
    Section s(&root, "power", false);
    const std::string type = s.choice("type", "eisenstein_hu", {"eisenstein_hu", "tabulated"});
    p.power.type =
        type == "tabulated" ? PowerParams::Type::Tabulated : PowerParams::Type::EisensteinHu;
    auto file = s.string("file");
    p.power.normalize = s.boolean("normalize", p.power.type == PowerParams::Type::EisensteinHu);
    if (p.power.type == PowerParams::Type::Tabulated) {
      if (!file || file->empty())
        throw ParamError(
            "power.file: missing; power.type = \"tabulated\" needs a file with columns "
            "k [h/Mpc], P(k) [(Mpc/h)^3]");
      std::filesystem::path fp(*file);
      if (fp.is_relative())
        fp = std::filesystem::path(base_dir) / fp;
      if (!std::filesystem::is_regular_file(fp))
        throw ParamError("power.file = \"" + *file + "\": no such file (looked for " + fp.string() +
                         ")");
      p.power.file = fp.string();
      // Read it now: a malformed table or a too-short k range is an input error.
      try {
        const auto lp = LinearPower::fromTable(p.power.file, p.cosmology, p.power.normalize);
        const double kf = 2 * M_PI / p.simulation.box;
        lp.requireRange(kf, kf * std::sqrt(3.0) * (p.simulation.particles / 2), "power.file");
      } catch (const std::runtime_error& e) {
        throw ParamError(e.what());
      }
    } else if (file) {
      throw ParamError("power.file = \"" + *file + "\": only used with power.type = \"tabulated\"");
    }
    s.finish();
  }

  { // [gravity]
    Section s(&root, "gravity", false);
    p.gravity.window = s.choice("window", "cic", {"cic", "tsc"});
    p.gravity.kernel = s.choice("kernel", "finite_difference", {"finite_difference", "exact"});
    p.gravity.deconvolve = s.boolean("deconvolve", false);
    if (s.find("correction")) { // [gravity.correction]
      Section c(root.get("gravity")->as_table(), "correction", true, "gravity.");
      auto& fc = p.gravity.correction;
      fc.enabled = true;
      const std::string kind = c.choice("kind", "model", {"model", "pgd"});
      fc.force = c.boolean("force", false);
      if (kind == "model") {
        const auto model = c.string("model");
        if (!model || model->empty())
          throw ParamError("gravity.correction.model: missing; expected the path of a force "
                           "correction record (model.json written by caustic train), or "
                           "kind = \"pgd\" with its parameters");
        std::filesystem::path mp(*model);
        if (mp.is_relative())
          mp = std::filesystem::path(base_dir) / mp;
        if (!std::filesystem::is_regular_file(mp))
          throw ParamError("gravity.correction.model = \"" + *model +
                           "\": no such file (looked for " + mp.string() + ")");
        fc.model = mp.string();
      } else {
        auto list = [&](const char* k, bool positive) {
          const auto v = c.numbers(k, "a number or a list of numbers");
          if (!v || v->empty())
            throw ParamError(c.key(k) + ": missing; kind = \"pgd\" needs alpha, k_l and k_s");
          for (double x : *v)
            if (positive ? !(x > 0) : !(x >= 0))
              throw ParamError(c.key(k) + " = " + format("%g", x) +
                               (positive ? ": allowed: > 0" : ": allowed: >= 0"));
          return *v;
        };
        fc.alpha = list("alpha", false);
        fc.k_l = list("k_l", false);
        fc.k_s = list("k_s", true);
        const auto a = c.numbers("a", "a list of increasing scale factors");
        fc.a = a ? *a : std::vector<double>{1.0};
        for (auto* v : {&fc.alpha, &fc.k_l, &fc.k_s}) {
          if (v->size() == 1) // one value for every a
            v->assign(fc.a.size(), v->front());
          if (v->size() != fc.a.size())
            throw ParamError("gravity.correction: alpha, k_l and k_s need one value, or one per "
                             "entry of a (" + std::to_string(fc.a.size()) + ")");
        }
        for (std::size_t i = 0; i < fc.a.size(); ++i)
          if (!(fc.a[i] > 0) || (i > 0 && !(fc.a[i] > fc.a[i - 1])))
            throw ParamError("gravity.correction.a = " + format("%g", fc.a[i]) +
                             " (entry " + std::to_string(i) + "): allowed: > 0 and increasing");
      }
      c.finish();
    }
    s.finish();
  }

  { // [fft]
    Section s(&root, "fft", false);
    p.fft.plan = s.choice("plan", "measure", {"estimate", "measure", "patient"});
    if (auto w = s.string("wisdom")) {
      if (w->empty())
        throw ParamError("fft.wisdom = \"\": expected a file path (leave the key out for the "
                         "per-user cache, or set fft.cache = false for none)");
      p.fft.wisdom = *w;
    }
    p.fft.cache = s.boolean("cache", true);
    s.finish();
  }

  { // [output]
    Section s(&root, "output", false);
    auto& o = p.output;
    if (auto d = s.string("directory")) {
      if (d->empty())
        throw ParamError("output.directory = \"\": expected a directory path");
      o.directory = *d;
    }
    const auto a = s.numbers("a", "a list of scale factors in [a_start, a_end]");
    if (a && a->empty())
      throw ParamError("output.a = []: expected at least one scale factor in [a_start, a_end] "
                       "(leave the key out for a_end only)");
    o.a = a ? *a : std::vector<double>{p.simulation.a_end};
    for (std::size_t i = 0; i < o.a.size(); ++i) {
      if (!(o.a[i] >= p.simulation.a_start && o.a[i] <= p.simulation.a_end))
        throw ParamError("output.a = " + formatNumber(o.a[i]) +
                         ": outside the run; allowed: [a_start, a_end] = [" +
                         formatNumber(p.simulation.a_start) + ", " +
                         formatNumber(p.simulation.a_end) + "]");
      if (i > 0 && !(o.a[i] > o.a[i - 1]))
        throw ParamError("output.a = " + formatNumber(o.a[i]) + ": not after " +
                         formatNumber(o.a[i - 1]) + "; the list must be strictly ascending");
    }
    o.initial_conditions = s.boolean("initial_conditions", true);
    o.snapshots = s.boolean("snapshots", true);
    o.power_spectrum = s.boolean("power_spectrum", true);
    o.density = s.boolean("density", false);
    const auto dm = s.integer("density_mesh", 0, "an integer >= 0 (0: the PM mesh)");
    if (dm < 0 || dm > 16384)
      throw ParamError(s.key("density_mesh") + " = " + std::to_string(dm) +
                       ": out of range; allowed: 0 (the PM mesh) or [1, 16384] cells per side");
    o.density_mesh = static_cast<int>(dm);
    o.double_precision = s.choice("snapshot_precision", "single", {"single", "double"}) == "double";
    o.window = s.choice("window", "cic", {"cic", "tsc"});
    o.interlace = s.boolean("interlace", true);
    o.subtract_shot_noise = s.boolean("subtract_shot_noise", false);
    s.finish();
  }

  { // [halos]
    Section s(&root, "halos", false);
    auto& h = p.halos;
    h.enabled = s.boolean("enabled", false);
    h.b = s.number("linking_length", 0.2,
                   "a number in (0, 1) (units of the mean particle separation)");
    requireRange(h.b > 0 && h.b < 1, s.key("linking_length"), h.b,
                 "(0, 1) (units of the mean particle separation)");
    const auto mp = s.integer("min_particles", 20, "an integer >= 2");
    if (mp < 2 || mp > 1000000000)
      throw ParamError(s.key("min_particles") + " = " + std::to_string(mp) +
                       ": out of range; allowed: [2, 1e9]");
    h.min_particles = static_cast<int>(mp);
    h.member_ids = s.boolean("member_ids", false);
    const auto ha = s.numbers("a", "a list of output scale factors (each in output.a)");
    h.a = ha ? *ha : p.output.a;
    requireOutputScaleFactors(h.a, p.output.a, "halos.a");
    s.finish();
  }

  { // [baryons]
    Section s(&root, "baryons", false);
    auto& b = p.baryons;
    BcmParameters& m = b.bcm;
    m.log10_mc = s.number("log10_mc", m.log10_mc, "a number (log10 M_c [Msun/h])");
    m.mu = s.number("mu", m.mu, "a number");
    m.theta_ej = s.number("theta_ej", m.theta_ej, "a number (r_ej / r200c)");
    m.gamma = s.number("gamma", m.gamma, "a number");
    m.delta = s.number("delta", m.delta, "a number");
    m.eta = s.number("eta", m.eta, "a number");
    m.delta_eta = s.number("delta_eta", m.delta_eta, "a number");
    m.r_max_factor = s.number("r_max_factor", m.r_max_factor, "a number (r_max / r200c)");
    m.f_nt = s.number("f_nt", m.f_nt, "a number in [0, 1)");
    const std::string err = m.check(); // "name = value: allowed ..."
    if (!err.empty())
      throw ParamError("baryons." + err);
    b.t_igm = s.number("t_igm", b.t_igm, "a temperature [K]");
    requireRange(b.t_igm >= 0 && b.t_igm <= 1e9, s.key("t_igm"), b.t_igm, "[0, 1e9] K");
    const auto mesh = s.integer("mesh", 0, "an even integer >= 8 (0: twice the particle grid)");
    if (mesh != 0 && (mesh < 8 || mesh > 8192 || mesh % 2))
      throw ParamError(s.key("mesh") + " = " + std::to_string(mesh) +
                       ": allowed 0 (twice the particle grid) or an even integer in [8, 8192]");
    b.mesh = static_cast<int>(mesh);
    const auto fmesh = s.integer("field_mesh", 0, "an even integer >= 8 (0: the particle grid)");
    if (fmesh != 0 && (fmesh < 8 || fmesh > 8192 || fmesh % 2))
      throw ParamError(s.key("field_mesh") + " = " + std::to_string(fmesh) +
                       ": allowed 0 (the particle grid) or an even integer in [8, 8192]");
    b.field_mesh = static_cast<int>(fmesh);
    const auto mp = s.integer("min_particles", 0, "an integer >= 0 (0: every group)");
    if (mp < 0 || mp > 1000000000)
      throw ParamError(s.key("min_particles") + " = " + std::to_string(mp) +
                       ": allowed [0, 1e9] (0: every group of the catalogue)");
    b.min_particles = static_cast<int>(mp);
    // In-situ: at these output scale factors (default: the [halos] ones), from the FoF catalogue.
    b.enabled = s.boolean("enabled", false);
    const auto ba = s.numbers("a", "a list of scale factors (each in halos.a)");
    b.a = ba ? *ba : p.halos.a;
    if (b.enabled) {
      if (!p.halos.enabled)
        throw ParamError(s.key("enabled") +
                         " = true: the model needs the FoF catalogue; set halos.enabled = true");
      for (double a : b.a)
        if (!isOutputScaleFactor(a, p.halos.a))
          throw ParamError(s.key("a") + " = " + formatNumber(a) +
                           ": no FoF catalogue at this scale factor; allowed: values of halos.a");
    }
    s.finish();
  }

  { // [checkpoint]
    Section s(&root, "checkpoint", false);
    auto& c = p.checkpoint;
    const auto es = s.integer("every_steps", 0, "an integer >= 0 (0: off)");
    if (es < 0 || es > 1000000000)
      throw ParamError(s.key("every_steps") + " = " + std::to_string(es) +
                       ": out of range; allowed: >= 0 (0: off)");
    c.every_steps = static_cast<int>(es);
    c.every_minutes = s.number("every_minutes", 0.0, "a number >= 0 (0: off)");
    requireRange(c.every_minutes >= 0, s.key("every_minutes"), c.every_minutes, ">= 0 (0: off)");
    c.on_signal = s.boolean("on_signal", true);
    const auto keep = s.integer("keep", 2, "an integer >= 1");
    if (keep < 1 || keep > 1000000)
      throw ParamError(s.key("keep") + " = " + std::to_string(keep) +
                       ": out of range; allowed: >= 1");
    c.keep = static_cast<int>(keep);
    c.directory =
        s.string("directory")
            .value_or((std::filesystem::path(p.output.directory) / "checkpoints").string());
    if (c.directory.empty())
      throw ParamError("checkpoint.directory = \"\": expected a directory path");
    s.finish();
  }

  if (toml::node* en = root.get("emulators")) { // [emulators.NAME]
    if (!en->is_table())
      throw ParamError("[emulators]: expected tables [emulators.NAME]");
    for (auto&& [name, node] : *en->as_table()) {
      const std::string nm(name.str());
      Section s(en->as_table(), nm, true, "emulators.");
      EmulatorHookParams e;
      e.name = nm;
      e.kind = s.choice("kind", "torch", {"torch", "ldl"});
      const auto model = s.string("model");
      if (!model || model->empty())
        throw ParamError("emulators." + nm + ".model: missing; expected the path of a " +
                         (e.kind == "ldl" ? "ldl.json record (caustic ldl-fit)"
                                          : "TorchScript model file"));
      std::filesystem::path mp(*model);
      if (mp.is_relative())
        mp = std::filesystem::path(base_dir) / mp;
      if (!std::filesystem::is_regular_file(mp))
        throw ParamError("emulators." + nm + ".model = \"" + *model +
                         "\": no such file (looked for " + mp.string() + ")");
      e.model = mp.string();
      if (auto md = s.string("metadata")) {
        std::filesystem::path mdp(*md);
        if (mdp.is_relative())
          mdp = std::filesystem::path(base_dir) / mdp;
        e.metadata = mdp.string();
      }
      e.space = s.choice("space", "eulerian", {"eulerian", "lagrangian"});
      const auto& allowed = hookChannels(e.space);
      const auto inputs = s.strings("inputs");
      if (e.kind == "ldl" && (inputs || e.space != "eulerian"))
        throw ParamError("emulators." + nm + (inputs ? ".inputs" : ".space = \"" + e.space + "\"") +
                         ": not used by kind = \"ldl\" (it paints the particles onto the mesh of "
                         "its record; remove the key)");
      e.inputs = inputs.value_or(std::vector<std::string>{allowed.front()});
      if (e.inputs.empty())
        throw ParamError("emulators." + nm + ".inputs = []: expected at least one channel");
      for (const auto& c : e.inputs)
        if (std::find(allowed.begin(), allowed.end(), c) == allowed.end()) {
          std::string list;
          for (const auto& x : allowed)
            list += (list.empty() ? "" : ", ") + x;
          throw ParamError("emulators." + nm + ".inputs: \"" + c + "\" is not a " + e.space +
                           " channel; allowed: " + list);
        }
      e.every_step = s.boolean("every_step", false);
      const auto ea = s.numbers("a", "a list of output scale factors (each in output.a)");
      e.a = ea ? *ea : p.output.a;
      requireOutputScaleFactors(e.a, p.output.a, "emulators." + nm + ".a");
      const auto r =
          s.integer("radius", -1, "ghost planes per side, >= the model's receptive field");
      if (r < -1 || r > 4096)
        throw ParamError("emulators." + nm + ".radius = " + std::to_string(r) +
                         ": out of range; allowed: [0, 4096]");
      e.radius = static_cast<int>(r);
      const auto tp = s.integer("tile_planes", 32, "an integer >= 1");
      if (tp < 1 || tp > 1 << 20)
        throw ParamError("emulators." + nm + ".tile_planes = " + std::to_string(tp) +
                         ": out of range; allowed: >= 1");
      e.tile_planes = static_cast<int>(tp);
      e.force = s.boolean("force", false);
      const auto em = s.integer("mesh", 0, "an integer >= 8 (0: the PM mesh)");
      if (em != 0 && (em < 8 || em > 65536))
        throw ParamError("emulators." + nm + ".mesh = " + std::to_string(em) +
                         ": out of range; allowed: 0 (the PM mesh) or [8, 65536]");
      if (em != 0 && (e.space != "eulerian" || e.kind != "torch"))
        throw ParamError("emulators." + nm + ".mesh = " + std::to_string(em) +
                         ": only for space = \"eulerian\" models of kind = \"torch\"");
      e.mesh = static_cast<int>(em);
      if (s.find("seed")) {
        const auto sd = s.integer("seed", 0, "an integer >= 0");
        if (sd < 0 || e.kind != "torch")
          throw ParamError("emulators." + nm + ".seed = " + std::to_string(sd) +
                           (sd < 0 ? ": allowed: an integer >= 0"
                                   : ": only for halo surrogates (kind = \"torch\")"));
        e.seed = static_cast<std::uint64_t>(sd);
      }
      // Empty: the model's default ("sample" for voxel surrogates, "threshold" per group).
      if (s.find("selection"))
        e.selection = s.choice("selection", "sample", {"sample", "top", "threshold"});
      if (!e.selection.empty() && e.kind != "torch")
        throw ParamError("emulators." + nm + ".selection = \"" + e.selection +
                         "\": only for halo surrogates (kind = \"torch\")");
      if (s.find("pgd")) {
        const std::string what = "[alpha, k_l, k_s] with alpha >= 0, k_l >= 0 and k_s > 0 [h/Mpc]";
        const auto v = s.numbers("pgd", what);
        std::ostringstream val;
        for (std::size_t i = 0; v && i < v->size(); ++i)
          val << (i ? ", " : "") << (*v)[i];
        const std::string shown = "emulators." + nm + ".pgd = [" + val.str() + "]";
        if (!v || v->size() != 3 || !((*v)[0] >= 0) || !((*v)[1] >= 0) || !((*v)[2] > 0) ||
            !std::isfinite((*v)[0]) || !std::isfinite((*v)[1]) || !std::isfinite((*v)[2]))
          throw ParamError(shown + ": allowed: " + what);
        if (e.kind != "torch" || e.space != "lagrangian")
          throw ParamError(shown + ": only for particle super-resolution models (kind = "
                                   "\"torch\", space = \"lagrangian\")");
        e.pgd = std::array<double, 3>{(*v)[0], (*v)[1], (*v)[2]};
      }
      if (s.find("contract")) {
        const std::string pre = "emulators." + nm + ".";
        Section c(en->as_table()->get(nm)->as_table(), "contract", true, pre);
        EmulatorHookParams::Contraction k;
        k.shape.lambda = c.number("lambda", std::nullopt, "a number in (0, 1]");
        requireRange(k.shape.lambda > 0 && k.shape.lambda <= 1, c.key("lambda"), k.shape.lambda,
                     "(0, 1]");
        const double box = p.simulation.box;
        k.shape.radius = c.number("radius", std::nullopt, "a radius in Mpc/h, in (0, box / 4]");
        requireRange(k.shape.radius > 0 && k.shape.radius <= box / 4, c.key("radius"),
                     k.shape.radius, "(0, box / 4] = (0, " + formatNumber(box / 4) + "] Mpc/h");
        k.b = c.number("b", 0.2, "a number in (0, 1) (units of the mean particle separation)");
        requireRange(k.b > 0 && k.b < 1, c.key("b"), k.b,
                     "(0, 1) (units of the mean particle separation)");
        const auto mm = c.integer("min_members", 20, "an integer >= 2");
        if (mm < 2 || mm > 1000000000)
          throw ParamError(c.key("min_members") + " = " + std::to_string(mm) +
                           ": out of range; allowed: [2, 1e9]");
        k.min_members = static_cast<int>(mm);
        const auto mx = c.integer("max_members", std::nullopt, "an integer >= min_members");
        if (mx < mm || mx > 4000000000000000000LL)
          throw ParamError(c.key("max_members") + " = " + std::to_string(mx) +
                           ": out of range; allowed: >= min_members = " + std::to_string(mm));
        k.shape.max_members = static_cast<std::uint64_t>(mx);
        c.finish();
        if (e.kind != "torch" || e.space != "lagrangian")
          throw ParamError("[" + pre +
                           "contract]: only for particle super-resolution models "
                           "(kind = \"torch\", space = \"lagrangian\")");
        e.contract = k;
      }
      s.finish();
      p.emulators.push_back(e);
    }
  }

  std::ostringstream t;
  t << root;
  p.toml = t.str();
  return p;
}

namespace {
// The numeric settings a model may be conditioned on: name and where a run keeps its value.
struct NumericSetting {
  const char* name;
  double (*value)(const Params&);
};
const NumericSetting kNumericSettings[] = {
    {"baryons.log10_mc", [](const Params& p) { return p.baryons.bcm.log10_mc; }},
    {"baryons.mu", [](const Params& p) { return p.baryons.bcm.mu; }},
    {"baryons.theta_ej", [](const Params& p) { return p.baryons.bcm.theta_ej; }},
    {"baryons.gamma", [](const Params& p) { return p.baryons.bcm.gamma; }},
    {"baryons.delta", [](const Params& p) { return p.baryons.bcm.delta; }},
    {"baryons.eta", [](const Params& p) { return p.baryons.bcm.eta; }},
    {"baryons.delta_eta", [](const Params& p) { return p.baryons.bcm.delta_eta; }},
    {"baryons.f_nt", [](const Params& p) { return p.baryons.bcm.f_nt; }},
    {"baryons.t_igm", [](const Params& p) { return p.baryons.t_igm; }},
    {"cosmology.Omega_m", [](const Params& p) { return p.cosmology.Omega_m; }},
    {"cosmology.Omega_b", [](const Params& p) { return p.cosmology.Omega_b; }},
    {"cosmology.h", [](const Params& p) { return p.cosmology.h; }},
    {"cosmology.n_s", [](const Params& p) { return p.cosmology.n_s; }},
    {"cosmology.sigma8", [](const Params& p) { return p.cosmology.sigma8; }},
    {"cosmology.w0", [](const Params& p) { return p.cosmology.w0; }},
    {"cosmology.wa", [](const Params& p) { return p.cosmology.wa; }},
};
} // namespace

std::optional<double> numericSetting(const Params& p, const std::string& name) {
  for (const auto& s : kNumericSettings)
    if (name == s.name)
      return s.value(p);
  return std::nullopt;
}

std::string numericSettingNames() {
  std::string out;
  for (const auto& s : kNumericSettings)
    out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

} // namespace caustic
