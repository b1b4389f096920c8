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

namespace {
// cfg differentiating only the free cosmological parameters: the others' derivatives would be
// made at every new parameter point and never read.
DiffConfig differentiatingOnly(DiffConfig cfg, const std::vector<PosteriorParameter>& free) {
  cfg.cosmology_gradient.fill(false);
  for (const PosteriorParameter& f : free)
    for (CosmoParam p : kAllCosmoParams)
      if (f.name == cosmoParamName(p))
        cfg.cosmology_gradient[static_cast<std::size_t>(p)] = true;
  return cfg;
}
} // namespace

FieldPosterior::FieldPosterior(DiffConfig cfg, DiffParams base, FieldObservation obs,
                               std::vector<PosteriorParameter> free, double bias)
    : _cfg(differentiatingOnly(std::move(cfg), free)), _base(std::move(base)), _obs(std::move(obs)),
      _free(std::move(free)), _bias(bias), _model_pm(_cfg), _painter(_cfg.mesh, _cfg.window) {
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
  {
    // Modes of the lattice per |m|^2 over the full k space, without the DC mode and the
    // Nyquist planes (where T = 0).
    const int n = _cfg.lattice->n(), h = n / 2;
    std::vector<double> count(3 * h * h + 1, 0.0);
    for (int x = -h + 1; x < h; ++x)
      for (int y = -h + 1; y < h; ++y)
        for (int z = -h + 1; z < h; ++z)
          count[x * x + y * y + z * z] += 1.0;
    count[0] = 0.0;
    for (std::size_t m2 = 1; m2 < count.size(); ++m2)
      if (count[m2] > 0) {
        _shell_m2.push_back(double(m2));
        _shell_count.push_back(count[m2]);
      }
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

double FieldPosterior::logDetTerm(const std::vector<double>& theta,
                                  std::vector<double>* grad) const {
  const double kf = 2.0 * M_PI / _cfg.lattice->box();
  auto term = [&](const CosmologyParams& c) {
    const LinearPower lp = _cfg.power.at(c);
    double s = 0.0;
    for (std::size_t i = 0; i < _shell_m2.size(); ++i)
      s += _shell_count[i] * 0.5 * std::log(lp(kf * std::sqrt(_shell_m2[i])));
    return s; // sum over modes of log T = 1/2 log P + const
  };
  const DiffParams p = paramsAt(theta);
  const double v = term(p.cosmology);
  if (grad) {
    grad->assign(theta.size(), 0.0);
    for (std::size_t i = 0; i < _free.size(); ++i) {
      if (_free[i].name == "bias")
        continue;
      const CosmoParam cp = _free[i].name == "Omega_m" ? CosmoParam::Omega_m : CosmoParam::sigma8;
      const double h = differenceStep(p.cosmology, cp);
      (*grad)[i] = (term(shifted(p.cosmology, cp, h)) - term(shifted(p.cosmology, cp, -h))) / (2 * h);
    }
  }
  return v;
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
  if (_centred && !_free.empty())
    t.parameter_prior += logDetTerm(theta); // (a constant without free parameters: left out)
  _evaluated = true;
  _has_state = true;
  ++_evaluations;
  return t;
}

void FieldPosterior::pullBack(Field<double>& w, Field<double>& go, std::vector<double>& gt) {
  const double b = biasAt(_theta);
  double dldb = 0.0;
  {
    auto g = w.real(), dl = _model->real();
    _cfg.mesh->reducePoints(
        "caustic::FieldPosterior::biasGradient",
        KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
          acc += g(q.index) * dl(q.index);
          g(q.index) *= b; // dL/d delta
        },
        dldb);
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &dldb, 1, MPI_DOUBLE, MPI_SUM, _cfg.mesh->comm().get()),
             "FieldPosterior::pullBack");
  }
  // Pull dL/d delta back to the particles: delta = m sum_i W(x - x_i) - 1, m = N_mesh^3 / N_p^3.
  Particles parts = copyParticles(_model_pm.state());
  Particles cot(parts.size(), parts.capacity());
  Migrator(_cfg.mesh)(parts, &cot);
  const double nm = _cfg.mesh->n(), nl = _cfg.lattice->n();
  _painter.readoutWindowGradient(w, parts.x, parts.size(), cot.x, nm * nm * nm / (nl * nl * nl));
  Migrator(_cfg.lattice).toLattice(parts, &cot);
  DiffGradient g = _model_pm.gradient(cot);
  Kokkos::deep_copy(go.real(), g.noise->real());
  gt.assign(_free.size(), 0.0);
  for (std::size_t i = 0; i < _free.size(); ++i) {
    const auto& f = _free[i];
    gt[i] = f.name == "Omega_m"  ? g.params[CosmoParam::Omega_m]
            : f.name == "sigma8" ? g.params[CosmoParam::sigma8]
                                 : dldb;
  }
}

void FieldPosterior::gradient(Field<double>& gomega, std::vector<double>& gtheta) {
  ScopedRegion region("caustic::FieldPosterior::gradient");
  if (!_evaluated)
    throw std::logic_error("FieldPosterior::gradient: no value() before");
  _evaluated = false; // the residual field is consumed below
  // g = S^T (mask S r / sigma^2) = dL/d(b delta); S is symmetric.
  smooth(*_residual);
  pullBack(*_residual, gomega, gtheta);
  // + the priors: omega, the Gaussian priors, the log det S term.
  auto go = gomega.real(), om = _omega->real();
  _cfg.lattice->forEachPoint("caustic::FieldPosterior::noiseGradient",
                             KOKKOS_LAMBDA(const MeshPoint& q) { go(q.index) += om(q.index); });
  std::vector<double> gdet;
  if (_centred)
    logDetTerm(_theta, &gdet);
  for (std::size_t i = 0; i < _free.size(); ++i) {
    const auto& f = _free[i];
    if (f.prior_width > 0)
      gtheta[i] += (_theta[i] - f.prior_mean) / (f.prior_width * f.prior_width);
    if (_centred)
      gtheta[i] += gdet[i];
  }
}

void FieldPosterior::gaussNewtonProduct(const Field<double>& vo, const std::vector<double>& vt,
                                        Field<double>& ho, std::vector<double>& ht,
                                        double step) {
  ScopedRegion region("caustic::FieldPosterior::gaussNewtonProduct");
  if (!_has_state)
    throw std::logic_error("FieldPosterior::gaussNewtonProduct: no value() before");
  if (vt.size() != _free.size())
    throw std::invalid_argument("FieldPosterior::gaussNewtonProduct: " +
                                std::to_string(vt.size()) + " parameter components for " +
                                std::to_string(_free.size()) + " free parameters");
  // |v| over the noise and the parameters; the step per component is `step` rms.
  double vv = 0.0;
  {
    auto v = vo.real();
    _cfg.lattice->reducePoints(
        "caustic::FieldPosterior::gnNorm",
        KOKKOS_LAMBDA(const MeshPoint& q, double& acc) { acc += v(q.index) * v(q.index); }, vv);
    mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &vv, 1, MPI_DOUBLE, MPI_SUM, _cfg.mesh->comm().get()),
             "FieldPosterior::gaussNewtonProduct");
    for (double t : vt)
      vv += t * t;
  }
  ht.assign(_free.size(), 0.0);
  if (vv == 0.0) {
    ho.setZero();
    return;
  }
  const double nl = _cfg.lattice->n();
  const double h = step * std::sqrt(nl * nl * nl + vt.size()) / std::sqrt(vv);
  if (!_probe_pm)
    _probe_pm = std::make_unique<DiffPM>(_cfg);
  // Jv = (f(x + h v) - f(x - h v)) / 2h, f = b delta.
  Field<double> jv(_cfg.mesh, "caustic::FieldPosterior::jv");
  {
    Field<double> wp(_cfg.lattice, "caustic::FieldPosterior::probe");
    Field<double> dp(_cfg.mesh, "caustic::FieldPosterior::probeDensity");
    for (int side = 0; side < 2; ++side) {
      const double t = side ? -h : h;
      auto w = wp.real(), o = _omega->real(), v = vo.real();
      Kokkos::parallel_for(
          "caustic::FieldPosterior::probePoint", Kokkos::RangePolicy<>(0, w.extent(0)),
          KOKKOS_LAMBDA(std::size_t i) { w(i) = o(i) + t * v(i); });
      Kokkos::fence();
      std::vector<double> th = _theta;
      for (std::size_t i = 0; i < th.size(); ++i)
        th[i] += t * vt[i];
      const double b = biasAt(th);
      Particles parts = copyParticles(_probe_pm->forward(wp, paramsAt(th)));
      Migrator(_cfg.mesh)(parts);
      paintDensityContrast(dp, _painter, parts, nl * nl * nl);
      auto j = jv.real(), d = dp.real();
      const double f = (side ? -1.0 : 1.0) * b / (2.0 * h);
      Kokkos::parallel_for(
          "caustic::FieldPosterior::jv", Kokkos::RangePolicy<>(0, j.extent(0)),
          KOKKOS_LAMBDA(std::size_t i) { j(i) = (side ? j(i) : 0.0) + f * d(i); });
      Kokkos::fence();
    }
  }
  // w = S mask S Jv / sigma^2
  smooth(jv);
  {
    auto j = jv.real(), var = _obs.variance->real();
    const bool masked = static_cast<bool>(_obs.mask);
    auto mask = masked ? _obs.mask->real() : j;
    _cfg.mesh->forEachPoint("caustic::FieldPosterior::gnWeight", KOKKOS_LAMBDA(const MeshPoint& q) {
      const double m = masked ? mask(q.index) : 1.0;
      j(q.index) *= m / var(q.index);
    });
  }
  smooth(jv);
  pullBack(jv, ho, ht);
  auto hov = ho.real(), v = vo.real();
  _cfg.lattice->forEachPoint("caustic::FieldPosterior::gnPrior",
                             KOKKOS_LAMBDA(const MeshPoint& q) { hov(q.index) += v(q.index); });
  for (std::size_t i = 0; i < _free.size(); ++i)
    if (_free[i].prior_width > 0)
      ht[i] += vt[i] / (_free[i].prior_width * _free[i].prior_width);
  if (_centred) {
    double vn = 0.0;
    for (double t : vt)
      vn += t * t;
    if (vn > 0) {
      const double hd = 1e-4 / std::sqrt(vn);
      std::vector<double> tp = _theta, tm = _theta, gp, gm;
      for (std::size_t i = 0; i < tp.size(); ++i) {
        tp[i] += hd * vt[i];
        tm[i] -= hd * vt[i];
      }
      logDetTerm(tp, &gp);
      logDetTerm(tm, &gm);
      for (std::size_t i = 0; i < ht.size(); ++i)
        ht[i] += (gp[i] - gm[i]) / (2 * hd);
    }
  }
}

} // namespace caustic
