#pragma once
// The record of an LDL baryon painter written by `caustic ldl-fit` (ldl.json): what the in-situ
// hook ([emulators.NAME] kind = "ldl") needs to paint, and the domain it was fitted on.
#include <optional>
#include <string>
#include <vector>

namespace caustic {

struct LdlRecord {
  std::string field;              // the target it paints (e.g. gas_density)
  int layers = 0, mesh = 0;
  double box = 0.0, a = 0.0;      // [Mpc/h], scale factor of the training pairs
  std::vector<double> parameters; // 5 per layer, then 3 (at the conditions' centres)
  // A product painter (ldl-fit --factor): F = scale * F_1 * F_2 * ..., factor f an LDL painter of
  // factors[f].layers layers fitted jointly; `parameters` holds the factors' in order and
  // `layers` is their sum.
  struct Factor {
    std::string field; // what the factor's own record painted (e.g. gas_temperature)
    int layers = 0;
  };
  std::vector<Factor> factors;
  double scale = 1.0;
  // Conditioned painters (ldl-fit --condition): the parameters at the run's settings are
  // ldlParametersAt(parameters, slopes, c) with c_j = (setting_j - center_j) / scale_j.
  struct Condition {
    std::string name;             // a numeric run setting (io/params.hpp), e.g. baryons.log10_mc
    double center = 0, scale = 1; // the training range's midpoint and half-width
    double min = 0, max = 0;      // the training range: the domain of the painter
    std::vector<double> slope;    // one per parameter
    // The condition c of a setting's value (the fit's and the hook's one convention), and
    // whether the value lies in the training range (false for NaN).
    double at(double value) const { return (value - center) / scale; }
    bool fitted(double value) const { return value >= min && value <= max; }
  };
  std::vector<Condition> conditioning;
  // A halo layer (ldl-fit --halo-layer; pm/baryons/ldl_halo.hpp): the painted field times a
  // factor of the run's FoF catalogue. Its parameters follow the painter's (or the factors') in
  // `parameters`. The catalogue must be made as the training ones were (b, min_particles).
  struct HaloLayer {
    std::string kind = "factor"; // "factor" (LdlHaloModel) or "displacement" (LdlHaloDisplacement)
    std::vector<double> mass_nodes, radius_nodes;
    double fof_b = 0;
    int fof_min_particles = 0;
  };
  std::optional<HaloLayer> halo_layer;
};

// Throws std::runtime_error naming the file and the key that is missing or wrong.
LdlRecord readLdlRecord(const std::string& path);

} // namespace caustic
