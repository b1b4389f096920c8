#include "pm/grad/field_posterior.hpp"

#include "pm/core/profiling.hpp"
#include "pm/particles/migrate.hpp"

#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

PosteriorParameter posteriorParameter(const std::string& name) {
  PosteriorParameter p;
  p.name = name;
  if (name == "Omega_m") {
    p.lower = 0.05;
    p.upper = 0.95;
  } else if (name == "sigma8") {
    p.lower = 0.1;
    p.upper = 3.0;
  } else if (name == "bias") {
    p.lower = 0.05;
    p.upper = 20.0;
  } else {
    throw std::invalid_argument("posterior parameter '" + name +
                                "': unknown; allowed: Omega_m, sigma8, bias");
  }
  return p;
}

FieldPosterior::FieldPosterior(DiffConfig cfg, DiffParams base, FieldObservation obs,
                               std::vector<PosteriorParameter> free, double bias)
    : _cfg(std::move(cfg)), _base(std::move(base)), _obs(std::move(obs)), _free(std::move(free)),
      _bias(bias), _model_pm(_cfg), _painter(_cfg.mesh, _cfg.window) {
  if (!_obs.data || !_obs.variance)
    throw std::invalid_argument("FieldPosterior: the data and the noise variance are required");
  for (const Field<double>* f : {_obs.data.get(), _obs.variance.get(), _obs.mask.get()})
    if (f && f->decomp().n() != _cfg.mesh->n())
      throw std::invalid_argument("FieldPosterior: a field of " + std::to_string(f->decomp().n()) +
                                  "^3 cells for a mesh of " + std::to_string(_cfg.mesh->n()) +
                                  "^3");
  for (std::size_t i = 0; i < _free.size(); ++i) {
    (void)posteriorParameter(_free[i].name); // checks the name
    for (std::size_t j = 0; j < i; ++j)
      if (_free[j].name == _free[i].name)
        throw std::invalid_argument("FieldPosterior: parameter '" + _free[i].name + "' twice");
  }
  _fft = std::make_unique<FFT<double>>(_cfg.mesh);
  _model = std::make_unique<Field<double>>(_cfg.mesh, "caustic::FieldPosterior::model");
  _residual = std::make_unique<Field<double>>(_cfg.mesh, "caustic::FieldPosterior::residual");
  _omega = std::make_unique<Field<double>>(_cfg.lattice, "caustic::FieldPosterior::omega");
}

bool FieldPosterior::inDomain(const std::vector<double>& theta) const {
  if (theta.size() != _free.size())
    return false;
  for (std::size_t i = 0; i < _free.size(); ++i)
    if (!(theta[i] > _free[i].lower && theta[i] < _free[i].upper))
      return false;
  return true;
}

DiffParams FieldPosterior::paramsAt(const std::vector<double>& theta) const {
  DiffParams p = _base;
  for (std::size_t i = 0; i < _free.size(); ++i) {
    if (_free[i].name == "Omega_m")
      p.cosmology.Omega_m = theta[i];
    else if (_free[i].name == "sigma8")
      p.cosmology.sigma8 = theta[i];
  }
  return p;
}

double FieldPosterior::biasAt(const std::vector<double>& theta) const {
  for (std::size_t i = 0; i < _free.size(); ++i)
    if (_free[i].name == "bias")
      return theta[i];
  return _bias;
}

void FieldPosterior::smooth(Field<double>& f) const {
  if (_smoothing <= 0.0)
    return;
  _fft->forward(f);
  auto c = f.complex();
  const double kf = 2.0 * M_PI / _cfg.mesh->box();
  const double r2 = _smoothing * _smoothing;
  _cfg.mesh->forEachMode("caustic::FieldPosterior::smooth", KOKKOS_LAMBDA(const MeshMode& m) {
    const double k2 = kf * kf * m.m2();
    c(m.index) *= km::exp(-0.5 * k2 * r2);
  });
  _fft->backward(f);
}

FieldPosterior::Terms FieldPosterior::value(const Field<double>& omega,
                                            const std::vector<double>& theta) {
  ScopedRegion region("caustic::FieldPosterior::value");
  if (!inDomain(theta)) {
    std::string what;
    for (std::size_t i = 0; i < theta.size() && i < _free.size(); ++i)
      what += (i ? ", " : "") + _free[i].name + " = " + std::to_string(theta[i]);
    throw std::invalid_argument("FieldPosterior: outside the parameter domain: " + what);
  }
  _theta = theta;
  const DiffParams p = paramsAt(theta);
  const double b = biasAt(theta);
  const Particles& state = _model_pm.forward(omega, p);
  Kokkos::deep_copy(_omega->real(), omega.real());
  {
    Particles parts = copyParticles(state);
    Migrator(_cfg.mesh)(parts);
    const double nl = _cfg.lattice->n();
    paintDensityContrast(*_model, _painter, parts, nl * nl * nl);
  }
  // r = b delta - d, smoothed; the likelihood and mask S r / sigma^2.
  auto r = _residual->real(), dl = _model->real(), d = _obs.data->real();
  _cfg.mesh->forEachPoint("caustic::FieldPosterior::residual", KOKKOS_LAMBDA(const MeshPoint& q) {
    r(q.index) = b * dl(q.index) - d(q.index);
  });
  smooth(*_residual);
  auto var = _obs.variance->real();
  const bool masked = static_cast<bool>(_obs.mask);
  auto mask = masked ? _obs.mask->real() : r;
  Terms t;
  double chi2 = 0.0;
  _cfg.mesh->reducePoints(
      "caustic::FieldPosterior::chi2",
      KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
        const std::size_t f = q.index;
        const double m = masked ? mask(f) : 1.0;
        const double w = m / var(f);
        acc += w * r(f) * r(f);
        r(f) *= w;
      },
      chi2);
  double w2 = 0.0;
  auto om = omega.real();
  _cfg.lattice->reducePoints(
      "caustic::FieldPosterior::noisePrior",
      KOKKOS_LAMBDA(const MeshPoint& q, double& acc) { acc += om(q.index) * om(q.index); }, w2);
  double sums[2] = {chi2, w2};
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, _cfg.mesh->comm().get()),
           "FieldPosterior::value");
  t.likelihood = 0.5 * sums[0];
  t.noise_prior = 0.5 * sums[1];
  for (std::size_t i = 0; i < _free.size(); ++i)
    if (_free[i].prior_width > 0) {
      const double z = (theta[i] - _free[i].prior_mean) / _free[i].prior_width;
      t.parameter_prior += 0.5 * z * z;
    }
  _evaluated = true;
  return t;
}

void FieldPosterior::gradient(Field<double>& gomega, std::vector<double>& gtheta) {
  ScopedRegion region("caustic::FieldPosterior::gradient");
  if (!_evaluated)
    throw std::logic_error("FieldPosterior::gradient: no value() before");
  _evaluated = false; // the residual field is consumed below
  const double b = biasAt(_theta);
  // g = S^T (mask S r / sigma^2) = dL/d(b delta); S is symmetric.
  smooth(*_residual);
  double dldb = 0.0;
  {
    auto g = _residual->real(), dl = _model->real();
    _cfg.mesh->reducePoints(
        "caustic::FieldPosterior::biasGradient",
        KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
          acc += g(q.index) * dl(q.index);
          g(q.index) *= b; // dL/d delta
        },
        dldb);
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &dldb, 1, MPI_DOUBLE, MPI_SUM, _cfg.mesh->comm().get()),
             "FieldPosterior::gradient");
  }
  // Pull dL/d delta back to the particles: delta = m sum_i W(x - x_i) - 1, m = N_mesh^3 / N_p^3.
  Particles parts = copyParticles(_model_pm.state());
  Particles cot(parts.size(), parts.capacity());
  Migrator(_cfg.mesh)(parts, &cot);
  const double nm = _cfg.mesh->n(), nl = _cfg.lattice->n();
  _painter.readoutWindowGradient(*_residual, parts.x, parts.size(), cot.x,
                                 nm * nm * nm / (nl * nl * nl));
  Migrator(_cfg.lattice).toLattice(parts, &cot);
  DiffGradient g = _model_pm.gradient(cot);
  // dL/domega = the pull-back + omega (the prior).
  auto go = gomega.real(), gm = g.noise->real(), om = _omega->real();
  _cfg.lattice->forEachPoint("caustic::FieldPosterior::noiseGradient",
                             KOKKOS_LAMBDA(const MeshPoint& q) {
                               go(q.index) = gm(q.index) + om(q.index);
                             });
  gtheta.assign(_free.size(), 0.0);
  for (std::size_t i = 0; i < _free.size(); ++i) {
    const auto& f = _free[i];
    if (f.name == "Omega_m")
      gtheta[i] = g.params[CosmoParam::Omega_m];
    else if (f.name == "sigma8")
      gtheta[i] = g.params[CosmoParam::sigma8];
    else
      gtheta[i] = dldb;
    if (f.prior_width > 0)
      gtheta[i] += (_theta[i] - f.prior_mean) / (f.prior_width * f.prior_width);
  }
}

} // namespace caustic
