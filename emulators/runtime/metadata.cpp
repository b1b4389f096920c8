#include "emulators/runtime/metadata.hpp"

#include "io/format.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>
#include <tuple>

namespace caustic {

namespace {

// Numbers in the metadata and validity messages: six significant digits.
std::string fmt(double v) {
  return formatNumber(v, 6);
}

double cosmoValue(const CosmologyParams& c, const std::string& name, bool& known) {
  known = true;
  if (name == "Omega_m")
    return c.Omega_m;
  if (name == "Omega_b")
    return c.Omega_b;
  if (name == "h")
    return c.h;
  if (name == "n_s")
    return c.n_s;
  if (name == "sigma8")
    return c.sigma8;
  if (name == "w0")
    return c.w0;
  if (name == "wa")
    return c.wa;
  known = false;
  return 0.0;
}

std::pair<double, double> range(const nlohmann::json& j, const std::string& key,
                                const std::string& where) {
  if (!j.is_array() || j.size() != 2 || !j[0].is_number() || !j[1].is_number() ||
      !(j[0].get<double>() <= j[1].get<double>()))
    throw std::runtime_error(where + ": \"" + key + "\" = " + j.dump() +
                             ": expected [low, high] with low <= high");
  return {j[0].get<double>(), j[1].get<double>()};
}

std::vector<Channel> channels(const nlohmann::json& j, const std::string& key,
                              const std::string& where) {
  if (!j.contains(key) || !j[key].is_array() || j[key].empty())
    throw std::runtime_error(where + ": \"" + key + "\": expected a non-empty list of channels");
  std::vector<Channel> out;
  for (const auto& c : j[key]) {
    Channel ch;
    if (!c.contains("name") || !c["name"].is_string())
      throw std::runtime_error(where + ": \"" + key + "\" entry " + c.dump() +
                               ": needs a \"name\" string");
    ch.name = c["name"].get<std::string>();
    ch.mean = c.value("mean", 0.0);
    ch.std = c.value("std", 1.0);
    ch.transform = c.value("transform", std::string("none"));
    if (!isChannelTransform(ch.transform))
      throw std::runtime_error(where + ": channel \"" + ch.name + "\": transform = \"" +
                               ch.transform + "\"; allowed: " + kChannelTransforms);
    ch.floor = c.value("floor", 1e-3);
    if (!(ch.floor > 0))
      throw std::runtime_error(where + ": channel \"" + ch.name + "\": floor = " +
                               fmt(ch.floor) + " must be > 0");
    if (ch.transform == "logit" && !(ch.floor < 0.5))
      throw std::runtime_error(where + ": channel \"" + ch.name + "\": floor = " +
                               fmt(ch.floor) + " must be < 0.5 for a logit");
    ch.residual_of = c.value("residual_of", std::string());
    if (!ch.residual_of.empty() && key != "outputs")
      throw std::runtime_error(where + ": input channel \"" + ch.name +
                               "\": residual_of is for outputs only");
    if (!(ch.std > 0) || !std::isfinite(ch.mean))
      throw std::runtime_error(where + ": channel \"" + ch.name + "\": std = " + fmt(ch.std) +
                               " must be > 0 and mean finite");
    out.push_back(ch);
  }
  return out;
}

} // namespace

bool residualTransformsAgree(const std::string& in, const std::string& out) {
  const auto logarithmic = [](const std::string& t) { return t == "log" || t == "log1p"; };
  return in != "logit" && out != "logit" && logarithmic(in) == logarithmic(out);
}

bool isChannelTransform(const std::string& t) {
  return t == "none" || t == "log" || t == "log1p" || t == "logit";
}

ModelMetadata ModelMetadata::fromJson(const nlohmann::json& j, const std::string& where) {
  static const std::set<std::string> known = {
      "kind", "version",  "inputs",    "outputs",    "receptive_field", "cell_size",
      "box",  "redshift", "cosmology", "provenance", "stride",          "architecture",
      "conditioning", "halo", "super_resolution"};
  if (!j.is_object())
    throw std::runtime_error(where + ": model metadata must be a JSON object");
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!known.count(it.key()))
      throw std::runtime_error(where + ": unknown metadata key \"" + it.key() + "\"");
  ModelMetadata m;
  if (!j.contains("kind") || !j["kind"].is_string())
    throw std::runtime_error(where + ": \"kind\": missing (a string such as \"super_resolution\")");
  m.kind = j["kind"].get<std::string>();
  m.version = j.value("version", std::string("0"));
  m.inputs = channels(j, "inputs", where);
  m.outputs = channels(j, "outputs", where);
  m.receptive_field = j.value("receptive_field", 0);
  if (m.receptive_field < 0)
    throw std::runtime_error(where +
                             ": \"receptive_field\" = " + std::to_string(m.receptive_field) +
                             ": expected a radius in cells >= 0");
  if (!j.contains("cell_size") || !j["cell_size"].is_object() || !j["cell_size"].contains("value"))
    throw std::runtime_error(where +
                             ": \"cell_size\": missing; expected {\"value\": Mpc/h, \"rtol\": r}");
  m.cell_size = j["cell_size"]["value"].get<double>();
  m.cell_size_rtol = j["cell_size"].value("rtol", 0.02);
  if (!(m.cell_size > 0) || !(m.cell_size_rtol >= 0))
    throw std::runtime_error(where + ": \"cell_size\" = " + j["cell_size"].dump() +
                             ": value must be > 0 and rtol >= 0");
  if (j.contains("box"))
    m.box = range(j["box"], "box", where);
  if (j.contains("redshift"))
    m.redshift = range(j["redshift"], "redshift", where);
  if (j.contains("cosmology")) {
    if (!j["cosmology"].is_object())
      throw std::runtime_error(where + ": \"cosmology\": expected {\"name\": [low, high], ...}");
    for (auto it = j["cosmology"].begin(); it != j["cosmology"].end(); ++it) {
      bool ok;
      cosmoValue(CosmologyParams{}, it.key(), ok);
      if (!ok)
        throw std::runtime_error(where + ": cosmology parameter \"" + it.key() +
                                 "\" unknown; allowed: Omega_m, Omega_b, h, n_s, sigma8, w0, wa");
      m.cosmology.emplace_back(it.key(), range(it.value(), "cosmology." + it.key(), where));
    }
  }
  for (const auto& o : m.outputs)
    if (!o.residual_of.empty()) {
      const auto it = std::find_if(m.inputs.begin(), m.inputs.end(),
                                   [&](const Channel& c) { return c.name == o.residual_of; });
      if (it == m.inputs.end())
        throw std::runtime_error(where + ": output \"" + o.name + "\": residual_of = \"" +
                                 o.residual_of + "\" is not an input channel");
      if (!residualTransformsAgree(it->transform, o.transform))
        throw std::runtime_error(where + ": output \"" + o.name + "\" (transform " + o.transform +
                                 ") is a residual of input \"" + it->name + "\" (transform " +
                                 it->transform +
                                 "): both or neither must be logarithmic (log, log1p), and "
                                 "neither a logit");
    }
  if (j.contains("conditioning")) {
    if (!j["conditioning"].is_array())
      throw std::runtime_error(where + ": \"conditioning\": expected a list of {\"name\", "
                                       "\"mean\", \"std\", \"range\"}");
    for (const auto& c : j["conditioning"]) {
      if (!c.is_object() || !c.contains("name") || !c["name"].is_string() ||
          !c.contains("range"))
        throw std::runtime_error(where + ": \"conditioning\" entry " + c.dump() +
                                 ": needs \"name\" and \"range\"");
      Conditioning k;
      k.name = c["name"].get<std::string>();
      k.mean = c.value("mean", 0.0);
      k.std = c.value("std", 1.0);
      if (!(k.std > 0) || !std::isfinite(k.mean))
        throw std::runtime_error(where + ": conditioning \"" + k.name + "\": std = " +
                                 fmt(k.std) + " must be > 0 and mean finite");
      std::tie(k.lo, k.hi) = range(c["range"], "conditioning." + k.name + ".range", where);
      m.conditioning.push_back(k);
    }
  }
  if (j.contains("halo")) {
    const auto& h = j["halo"];
    auto need = [&](bool ok, const std::string& what) {
      if (!ok)
        throw std::runtime_error(where + ": \"halo\" = " + h.dump() + ": " + what);
    };
    need(h.is_object() && h.contains("presence") && h["presence"].is_string() &&
             h.contains("mass") && h["mass"].is_string() && h.contains("min_mass") &&
             h["min_mass"].is_number(),
         "expected {\"presence\": output, \"mass\": output, \"min_mass\": Msun/h, ...}");
    HaloSurrogateInfo info;
    info.presence = h["presence"].get<std::string>();
    info.mass = h["mass"].get<std::string>();
    info.min_mass = h["min_mass"].get<double>();
    info.log_mass_scatter = h.value("log_mass_scatter", 0.0);
    info.linking_length = h.value("linking_length", 0.2);
    info.number_density = h.value("number_density", 0.0);
    need(h.value("input_fof_b", 0.0) >= 0 && h.value("input_fof_min_particles", 0) >= 0,
         "input_fof_b and input_fof_min_particles must be >= 0");
    info.input_fof_b = h.value("input_fof_b", 0.0);
    info.input_fof_min_particles = h.value("input_fof_min_particles", 0);
    m.halo = info; // checked below, once the outputs are known
    const int pi = m.outputIndex(info.presence), mi = m.outputIndex(info.mass);
    need(pi >= 0 && m.outputs[pi].transform == "logit",
         "presence must name an output channel with transform logit");
    need(mi >= 0 && m.outputs[mi].transform == "log",
         "mass must name an output channel with transform log");
    need(info.min_mass > 0 && std::isfinite(info.min_mass), "min_mass must be > 0");
    need(info.log_mass_scatter >= 0 && std::isfinite(info.log_mass_scatter),
         "log_mass_scatter must be >= 0");
    need(info.linking_length > 0 && info.linking_length < 1, "linking_length must be in (0, 1)");
  }
  if (j.contains("super_resolution")) {
    const auto& r = j["super_resolution"];
    if (!r.is_object() || !r.contains("factor") || !r["factor"].is_number_integer() ||
        r["factor"].get<int>() < 2 || r["factor"].get<int>() > 10)
      throw std::runtime_error(where + ": \"super_resolution\" = " + r.dump() +
                               ": expected {\"factor\": an integer in [2, 10]}");
    SuperResolutionInfo info;
    info.factor = r["factor"].get<int>();
    for (const auto& c : superResolutionChannels()) {
      if (m.outputs.empty() || std::none_of(m.inputs.begin(), m.inputs.end(),
                                            [&](const Channel& i) { return i.name == c; }))
        throw std::runtime_error(where + ": a super-resolution model takes the input channel \"" +
                                 c + "\"; the record has none");
      for (int o = 0; o < info.factor * info.factor * info.factor; ++o) {
        const int f = info.factor;
        const std::string name = superResolutionOutput(c, o / (f * f), (o / f) % f, o % f);
        if (m.outputIndex(name) < 0)
          throw std::runtime_error(where + ": a super-resolution model of factor " +
                                   std::to_string(f) + " needs the output \"" + name +
                                   "\"; the record has none");
      }
    }
    m.super_resolution = info;
  }
  m.provenance = j.value("provenance", std::string());
  m.stride = j.value("stride", 1);
  if (m.stride < 1 || m.stride > 1024)
    throw std::runtime_error(where + ": \"stride\" = " + std::to_string(m.stride) +
                             ": expected an integer in [1, 1024]");
  if (j.contains("architecture")) {
    if (!j["architecture"].is_object())
      throw std::runtime_error(where + ": \"architecture\": expected an object");
    m.architecture = j["architecture"];
  }
  return m;
}

ModelMetadata ModelMetadata::fromFile(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("model metadata " + path + ": cannot be opened");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error("model metadata " + path + ": invalid JSON: " + e.what());
  }
  return fromJson(j, "model metadata " + path);
}

nlohmann::json ModelMetadata::toJson() const {
  nlohmann::json j;
  j["kind"] = kind;
  j["version"] = version;
  for (const auto* list : {&inputs, &outputs}) {
    nlohmann::json a = nlohmann::json::array();
    for (const auto& c : *list) {
      nlohmann::json e = {{"name", c.name}, {"mean", c.mean}, {"std", c.std}};
      if (c.transform != "none") {
        e["transform"] = c.transform;
        e["floor"] = c.floor;
      }
      if (!c.residual_of.empty())
        e["residual_of"] = c.residual_of;
      a.push_back(e);
    }
    j[list == &inputs ? "inputs" : "outputs"] = a;
  }
  j["receptive_field"] = receptive_field;
  j["cell_size"] = {{"value", cell_size}, {"rtol", cell_size_rtol}};
  if (box)
    j["box"] = {box->first, box->second};
  if (redshift)
    j["redshift"] = {redshift->first, redshift->second};
  if (!cosmology.empty()) {
    nlohmann::json c = nlohmann::json::object();
    for (const auto& [name, r] : cosmology)
      c[name] = {r.first, r.second};
    j["cosmology"] = c;
  }
  if (!conditioning.empty()) {
    nlohmann::json c = nlohmann::json::array();
    for (const auto& k : conditioning)
      c.push_back({{"name", k.name}, {"mean", k.mean}, {"std", k.std}, {"range", {k.lo, k.hi}}});
    j["conditioning"] = c;
  }
  j["provenance"] = provenance;
  if (stride != 1)
    j["stride"] = stride;
  if (!architecture.is_null())
    j["architecture"] = architecture;
  if (halo)
    j["halo"] = {{"presence", halo->presence},
                 {"mass", halo->mass},
                 {"log_mass_scatter", halo->log_mass_scatter},
                 {"min_mass", halo->min_mass},
                 {"linking_length", halo->linking_length},
                 {"number_density", halo->number_density}};
  if (halo && halo->input_fof_min_particles > 0) {
    j["halo"]["input_fof_b"] = halo->input_fof_b;
    j["halo"]["input_fof_min_particles"] = halo->input_fof_min_particles;
  }
  if (super_resolution)
    j["super_resolution"] = {{"factor", super_resolution->factor}};
  return j;
}

const std::vector<std::string>& superResolutionChannels() {
  static const std::vector<std::string> c = {"displacement_x", "displacement_y", "displacement_z",
                                             "momentum_x",     "momentum_y",     "momentum_z"};
  return c;
}

std::string superResolutionOutput(const std::string& channel, int ox, int oy, int oz) {
  return channel + "@" + std::to_string(ox) + std::to_string(oy) + std::to_string(oz);
}

int ModelMetadata::outputIndex(const std::string& name) const {
  for (std::size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i].name == name)
      return static_cast<int>(i);
  return -1;
}

std::vector<std::string> validityViolations(const ModelMetadata& meta, const ApplicationDomain& d) {
  std::vector<std::string> v;
  if (std::abs(d.cell_size / meta.cell_size - 1.0) > meta.cell_size_rtol)
    v.push_back("cell size " + fmt(d.cell_size) + " Mpc/h differs from the training cell size " +
                fmt(meta.cell_size) + " Mpc/h by more than " + fmt(100 * meta.cell_size_rtol) +
                "%");
  if (meta.box && (d.box < meta.box->first || d.box > meta.box->second))
    v.push_back("box " + fmt(d.box) + " Mpc/h outside the trained range [" + fmt(meta.box->first) +
                ", " + fmt(meta.box->second) + "]");
  if (meta.redshift && (d.redshift < meta.redshift->first || d.redshift > meta.redshift->second))
    v.push_back("redshift " + fmt(d.redshift) + " outside the trained range [" +
                fmt(meta.redshift->first) + ", " + fmt(meta.redshift->second) + "]");
  for (const auto& [name, r] : meta.cosmology) {
    bool known;
    const double x = cosmoValue(d.cosmology, name, known);
    if (x < r.first || x > r.second)
      v.push_back("cosmology " + name + " = " + fmt(x) + " outside the trained range [" +
                  fmt(r.first) + ", " + fmt(r.second) + "]");
  }
  for (const auto& k : meta.conditioning) {
    const auto it = std::find_if(d.conditioning.begin(), d.conditioning.end(),
                                 [&](const auto& p) { return p.first == k.name; });
    if (it == d.conditioning.end())
      v.push_back("conditioning " + k.name + " is not set by the run (the model needs it)");
    else if (!(it->second >= k.lo && it->second <= k.hi))
      v.push_back("conditioning " + k.name + " = " + fmt(it->second) +
                  " outside the trained range [" + fmt(k.lo) + ", " + fmt(k.hi) + "]");
  }
  if (meta.halo && meta.halo->input_fof_min_particles > 0 &&
      (std::abs(d.fof_b - meta.halo->input_fof_b) > 1e-9 ||
       d.fof_min_particles != meta.halo->input_fof_min_particles))
    v.push_back(
        "its fof_count input was trained on FoF groups of b = " + fmt(meta.halo->input_fof_b) +
        " and at least " + std::to_string(meta.halo->input_fof_min_particles) +
        " particles; this run's [halos] has b = " + fmt(d.fof_b) +
        ", min_particles = " + std::to_string(d.fof_min_particles));
  std::vector<std::string> expected;
  for (const auto& c : meta.inputs)
    expected.push_back(c.name);
  if (d.input_channels != expected) {
    auto join = [](const std::vector<std::string>& s) {
      std::string o;
      for (const auto& x : s)
        o += (o.empty() ? "" : ", ") + x;
      return "[" + o + "]";
    };
    v.push_back("input channels " + join(d.input_channels) + " differ from the model's " +
                join(expected));
  }
  return v;
}

std::vector<std::string> enforceValidity(const ModelMetadata& meta, const ApplicationDomain& domain,
                                         bool force, const std::string& model_name) {
  auto v = validityViolations(meta, domain);
  if (!v.empty() && !force) {
    std::string msg =
        "model \"" + model_name + "\" (" + meta.kind + ") refused outside its validity domain:";
    for (const auto& s : v)
      msg += "\n  - " + s;
    msg += "\nset force = true in its [emulators." + model_name + "] section to apply it anyway";
    throw ValidityError(msg);
  }
  return v;
}

} // namespace caustic
