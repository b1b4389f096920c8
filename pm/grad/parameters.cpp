#include "pm/grad/parameters.hpp"

#include "pm/core/comm.hpp"

#include <cmath>
#include <stdexcept>

namespace caustic {

const char* cosmoParamName(CosmoParam p) {
  switch (p) {
  case CosmoParam::Omega_m:
    return "Omega_m";
  case CosmoParam::sigma8:
    return "sigma8";
  case CosmoParam::n_s:
    return "n_s";
  case CosmoParam::h:
    return "h";
  case CosmoParam::Omega_b:
    return "Omega_b";
  }
  throw std::invalid_argument("cosmoParamName: unknown parameter");
}

namespace {
double CosmologyParams::*memberOf(CosmoParam p) {
  switch (p) {
  case CosmoParam::Omega_m:
    return &CosmologyParams::Omega_m;
  case CosmoParam::sigma8:
    return &CosmologyParams::sigma8;
  case CosmoParam::n_s:
    return &CosmologyParams::n_s;
  case CosmoParam::h:
    return &CosmologyParams::h;
  case CosmoParam::Omega_b:
    return &CosmologyParams::Omega_b;
  }
  throw std::invalid_argument("cosmoParam: unknown parameter");
}
} // namespace

double& cosmoParam(CosmologyParams& c, CosmoParam p) {
  return c.*memberOf(p);
}

double cosmoParam(const CosmologyParams& c, CosmoParam p) {
  return c.*memberOf(p);
}

bool entersBackground(CosmoParam p) {
  return p == CosmoParam::Omega_m;
}

double differenceStep(const CosmologyParams& c, CosmoParam p) {
  return p == CosmoParam::Omega_m ? 1e-5 : 1e-5 * std::abs(cosmoParam(c, p));
}

CosmologyParams shifted(CosmologyParams c, CosmoParam p, double delta) {
  cosmoParam(c, p) += delta;
  return c;
}

bool operator==(const DiffParams& a, const DiffParams& b) {
  static_assert(sizeof(CosmologyParams) == 8 * sizeof(double),
                "a field was added to CosmologyParams: compare it here");
  const CosmologyParams &x = a.cosmology, &y = b.cosmology;
  return x.Omega_m == y.Omega_m && x.Omega_b == y.Omega_b && x.h == y.h && x.n_s == y.n_s &&
         x.sigma8 == y.sigma8 && x.w0 == y.w0 && x.wa == y.wa && x.T_cmb == y.T_cmb &&
         a.correction == b.correction && a.particle_correction == b.particle_correction;
}

ParameterGradient ParameterGradient::zeros(const DiffParams& p) {
  ParameterGradient g;
  g.correction.assign(p.correction.size(), 0.0);
  g.particle_correction.assign(p.particle_correction.size(), 0.0);
  return g;
}

std::vector<std::pair<std::string, double>> ParameterGradient::named() const {
  std::vector<std::pair<std::string, double>> out;
  for (CosmoParam p : kAllCosmoParams)
    out.emplace_back(cosmoParamName(p), (*this)[p]);
  for (std::size_t i = 0; i < correction.size(); ++i)
    out.emplace_back("correction[" + std::to_string(i) + "]", correction[i]);
  for (std::size_t i = 0; i < particle_correction.size(); ++i)
    out.emplace_back("particle_correction[" + std::to_string(i) + "]", particle_correction[i]);
  return out;
}

void ParameterGradient::allreduce(const Comm& comm) {
  std::vector<double> v(cosmology.begin(), cosmology.end());
  v.insert(v.end(), correction.begin(), correction.end());
  v.insert(v.end(), particle_correction.begin(), particle_correction.end());
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), MPI_DOUBLE, MPI_SUM,
                         comm.get()),
           "ParameterGradient::allreduce");
  for (int i = 0; i < kCosmoParams; ++i)
    cosmology[static_cast<std::size_t>(i)] = v[static_cast<std::size_t>(i)];
  std::size_t k = kCosmoParams;
  for (double& c : correction)
    c = v[k++];
  for (double& c : particle_correction)
    c = v[k++];
}

} // namespace caustic
