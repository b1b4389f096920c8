#include "io/ldl_record.hpp"

#include "io/text_file.hpp"
#include "pm/baryons/ldl_halo.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <stdexcept>

namespace caustic {

LdlRecord readLdlRecord(const std::string& path) {
  const std::string text = readTextFile(path, "LDL record");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": not a JSON record (" + e.what() + ")");
  }
  auto need = [&](const char* k) -> const nlohmann::json& {
    if (!j.contains(k))
      throw std::runtime_error(path + ": key " + k + " missing (not an ldl.json of caustic ldl-fit)");
    return j.at(k);
  };
  if (!j.contains("kind") || j.at("kind") != "ldl")
    throw std::runtime_error(path + ": kind is not \"ldl\" (not an ldl.json of caustic ldl-fit)");
  LdlRecord r;
  try {
    r.field = need("field").get<std::string>();
    r.layers = need("layers").get<int>();
    r.mesh = need("mesh").get<int>();
    r.box = need("box").get<double>();
    r.a = need("a").get<double>();
    r.parameters = need("parameters").get<std::vector<double>>();
    if (j.contains("factors")) {
      for (const auto& f : j.at("factors"))
        r.factors.push_back({f.at("field").get<std::string>(), f.at("layers").get<int>()});
      r.scale = need("scale").get<double>();
    }
    if (j.contains("conditioning"))
      for (const auto& c : j.at("conditioning")) {
        LdlRecord::Condition k;
        k.name = c.at("name").get<std::string>();
        k.center = c.at("center").get<double>();
        k.scale = c.at("scale").get<double>();
        k.min = c.at("min").get<double>();
        k.max = c.at("max").get<double>();
        k.slope = c.at("slope").get<std::vector<double>>();
        r.conditioning.push_back(k);
      }
    if (j.contains("halo_layer")) {
      const auto& h = j.at("halo_layer");
      LdlRecord::HaloLayer l;
      l.mass_nodes = h.at("mass_nodes").get<std::vector<double>>();
      l.radius_nodes = h.at("radius_nodes").get<std::vector<double>>();
      l.fof_b = h.at("fof_b").get<double>();
      l.fof_min_particles = h.at("fof_min_particles").get<int>();
      if (h.contains("kind"))
        l.kind = h.at("kind").get<std::string>();
      r.halo_layer = l;
    }
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(path + ": a key has the wrong type (" + e.what() + ")");
  }
  std::size_t halo_params = 0;
  if (r.halo_layer) {
    try {
      const LdlHaloLayout l{r.halo_layer->mass_nodes, r.halo_layer->radius_nodes};
      l.check(path + ": halo_layer");
      halo_params = l.parameterCount();
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(e.what());
    }
    if (!(r.halo_layer->fof_b > 0) || r.halo_layer->fof_min_particles < 1)
      throw std::runtime_error(path + ": halo_layer: fof_b must be positive and "
                                      "fof_min_particles at least 1");
    if (!r.conditioning.empty())
      throw std::runtime_error(path + ": a halo layer with conditioning (not supported)");
    if (r.halo_layer->kind != "factor" && r.halo_layer->kind != "displacement")
      throw std::runtime_error(path + ": halo_layer.kind = \"" + r.halo_layer->kind +
                               "\"; allowed \"factor\" or \"displacement\"");
    if (r.halo_layer->kind == "displacement" && !r.factors.empty())
      throw std::runtime_error(path + ": a halo displacement of a product painter (not supported)");
  }
  std::size_t want = static_cast<std::size_t>(5 * r.layers + 3);
  if (!r.factors.empty()) {
    int sum = 0;
    want = 0;
    for (const auto& f : r.factors) {
      if (f.layers < 0 || f.layers > 16)
        throw std::runtime_error(path + ": factor " + f.field + " has " + std::to_string(f.layers) +
                                 " layers; allowed 0 to 16");
      sum += f.layers;
      want += static_cast<std::size_t>(5 * f.layers + 3);
    }
    if (r.factors.size() < 2 || sum != r.layers || !(r.scale > 0) || !std::isfinite(r.scale))
      throw std::runtime_error(path + ": a product of " + std::to_string(r.factors.size()) +
                               " factors with scale " + std::to_string(r.scale) + " and " +
                               std::to_string(r.layers) +
                               " layers: needs two factors or more, a positive finite scale and "
                               "layers equal to the factors' sum");
  }
  if (!r.factors.empty() && !r.conditioning.empty())
    throw std::runtime_error(path + ": a product painter with conditioning (not supported: fit "
                                    "the product at one set of settings)");
  if (r.layers < 0 || r.layers > (r.factors.empty() ? 16 : 32) || r.mesh < 2 || r.mesh % 2 ||
      !(r.box > 0) || !(r.a > 0) || r.parameters.size() != want + halo_params)
    throw std::runtime_error(path + ": layers = " + std::to_string(r.layers) + ", mesh = " +
                             std::to_string(r.mesh) + ", " + std::to_string(r.parameters.size()) +
                             " parameters: inconsistent (5 per layer + 3 per painter + those of "
                             "a halo layer, an even mesh)");
  for (double v : r.parameters)
    if (!std::isfinite(v))
      throw std::runtime_error(path + ": a parameter is not finite");
  for (const auto& c : r.conditioning) {
    bool finite = std::isfinite(c.center) && std::isfinite(c.min) && std::isfinite(c.max);
    for (double v : c.slope)
      finite = finite && std::isfinite(v);
    if (!finite || !(c.scale > 0) || !(c.min <= c.max) || c.slope.size() != r.parameters.size())
      throw std::runtime_error(path + ": conditioning on " + c.name +
                               ": needs finite center, min <= max, scale > 0 and one slope per "
                               "parameter (" +
                               std::to_string(r.parameters.size()) + ")");
  }
  return r;
}

} // namespace caustic
