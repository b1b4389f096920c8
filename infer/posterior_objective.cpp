#include "infer/posterior_objective.hpp"

#include "pm/core/profiling.hpp"

#include <ROL_QuasiNewton_U.hpp>
#include <ROL_StatusTest.hpp>
#include <ROL_TypeU_LineSearchAlgorithm.hpp>
#include <ROL_lBFGS.hpp>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {

// Penalty per unit squared distance outside a parameter's domain (theta units).
constexpr double kPenalty = 1e8;

const FieldVector& asField(const ROL::Vector<double>& x) {
  return dynamic_cast<const FieldVector&>(x);
}

// Whether a and b hold bitwise the same point (on every rank). Collective.
bool samePoint(const FieldVector& a, const FieldVector& b) {
  if (a.params() != b.params())
    return false;
  auto x = a.noise().real(), y = b.noise().real();
  double differ = 0.0;
  a.noise().decomp().reducePoints(
      "caustic::PosteriorObjective::samePoint",
      KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
        if (!(x(q.index) == y(q.index)))
          acc += 1.0;
      },
      differ);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &differ, 1, MPI_DOUBLE, MPI_SUM,
                         a.noise().decomp().comm().get()),
           "PosteriorObjective::samePoint");
  return differ == 0.0;
}

// Ends the run at the caller's word or at a non-finite state; the caller decides convergence.
class CallbackTest : public ROL::StatusTest<double> {
public:
  CallbackTest(const LbfgsSettings& s, const std::function<bool(const LbfgsState&)>& check,
               const ROL::Ptr<ROL::lBFGS<double>>& secant, const LbfgsMemory* resume)
      : _s(s), _check(check), _secant(secant), _resume(resume) {}
  bool check(ROL::AlgorithmState<double>& state) override {
    if (state.iter == 0) {
      if (_resume && !_resumed) {
        // A resumed run counts on from the checkpoint: ROL hands the count to the secant,
        // whose initial scaling depends on it.
        state.iter = _resume->iteration;
        _g0 = _resume->initial_gradient_norm;
        _resumed = true;
      } else {
        _g0 = state.gnorm;
      }
    }
    if (!std::isfinite(state.value) || !std::isfinite(state.gnorm))
      throw std::runtime_error("L-BFGS: the objective or its gradient is not finite at "
                               "iteration " +
                               std::to_string(state.iter));
    LbfgsState st;
    st.iteration = state.iter;
    st.value = state.value;
    st.gradient_norm = state.gnorm;
    st.step_norm = state.iter > 0 && !(_resume && state.iter == _resume->iteration) ? state.snorm : 0.0;
    const double g0 = _g0;
    const int iter = state.iter;
    ROL::lBFGS<double>* secant = _secant.get(); // alive while the run is (the callback's time)
    st.memory = [secant, g0, iter]() {
      LbfgsMemory m;
      // (ROL 13.2's non-const get_state() does not compile: its state_ member is const.)
      const auto& ss = static_cast<const ROL::lBFGS<double>*>(secant)->get_state();
      for (int i = 0; i <= ss->current; ++i) {
        m.s.emplace_back(dynamic_cast<const FieldVector&>(*ss->iterDiff[i]));
        m.y.emplace_back(dynamic_cast<const FieldVector&>(*ss->gradDiff[i]));
        m.sy.push_back(ss->product[i]);
      }
      m.iteration = iter;
      m.initial_gradient_norm = g0;
      return m;
    };
    if (_check && !_check(st))
      return stop(LbfgsStop::callback);
    if (state.gnorm <= _s.gradient_tolerance * _g0)
      return stop(LbfgsStop::gradient_tolerance);
    if (state.iter >= _s.max_iterations)
      return stop(LbfgsStop::iteration_limit);
    if (state.iter > 0 && state.snorm <= _s.step_tolerance)
      return stop(LbfgsStop::step_tolerance);
    return true;
  }
  LbfgsStop reason = LbfgsStop::other; // until this test ends the run

private:
  bool stop(LbfgsStop r) {
    reason = r;
    return false;
  }
  const LbfgsSettings& _s;
  const std::function<bool(const LbfgsState&)>& _check;
  ROL::Ptr<ROL::lBFGS<double>> _secant;
  const LbfgsMemory* _resume;
  bool _resumed = false;
  double _g0 = 0.0;
};

} // namespace

PosteriorObjective::PosteriorObjective(FieldPosterior& post, std::vector<double> theta0,
                                       std::vector<double> scales, bool fit,
                                       std::shared_ptr<const FourierPreconditioner> precond,
                                       std::vector<double> centring)
    : _post(post), _theta0(std::move(theta0)), _scales(std::move(scales)), _fit(fit),
      _precond(std::move(precond)), _centring(std::move(centring)),
      _x(post.config().lattice, fit ? _theta0.size() : 0),
      _g(post.config().lattice, fit ? _theta0.size() : 0),
      _omega(std::make_unique<Field<double>>(post.config().lattice,
                                             "caustic::PosteriorObjective::omega")) {
  if (_fit && _scales.size() != _theta0.size())
    throw std::invalid_argument("PosteriorObjective: " + std::to_string(_scales.size()) +
                                " scales for " + std::to_string(_theta0.size()) + " parameters");
  if (_centring.empty())
    return;
  const auto& lattice = post.config().lattice;
  const int h = lattice->n() / 2;
  const std::size_t nb = std::size_t(3 * h * h + 1);
  if (!_fit || _centring.size() != nb)
    throw std::invalid_argument("PosteriorObjective: centring needs fitted parameters and " +
                                std::to_string(nb) + " weights (one per |m|^2); got " +
                                std::to_string(_centring.size()));
  for (double w : _centring)
    if (!(w >= 0.0 && w <= 1.0))
      throw std::invalid_argument("PosteriorObjective: a centring weight is not in [0, 1]");
  // Every mode of the full k space of the real field, DC excluded (A = 1 there).
  _modes.assign(nb, 0.0);
  for (int x = -h; x < h; ++x)
    for (int y = -h; y < h; ++y)
      for (int z = -h; z < h; ++z)
        _modes[x * x + y * y + z * z] += 1.0;
  _modes[0] = 0.0;
  _p.assign(nb, 1.0);
  if (_precond)
    for (std::size_t i = 0; i < nb; ++i)
      _p[i] = 1.0 / std::sqrt(1.0 + std::max(0.0, _precond->curvature()[i]));
  _fft = std::make_unique<FFT<double>>(lattice);
  _log_s0 = logPower(post.paramsAt(clampedTheta(_theta0)).cosmology); // A(theta0) = 1
}

std::vector<double> PosteriorObjective::logPower(const CosmologyParams& c) const {
  const double kf = 2.0 * M_PI / _post.config().lattice->box();
  const LinearPower lp = _post.config().power.at(c);
  std::vector<double> l(_centring.size(), 0.0);
  for (std::size_t m2 = 1; m2 < l.size(); ++m2)
    l[m2] = std::log(lp(kf * std::sqrt(double(m2))));
  return l;
}

std::vector<double> PosteriorObjective::clampedTheta(const std::vector<double>& theta) const {
  std::vector<double> c = theta;
  const auto& free = _post.freeParameters();
  for (std::size_t i = 0; i < c.size(); ++i) {
    const double margin = 1e-3 * (free[i].upper - free[i].lower);
    c[i] = std::clamp(theta[i], free[i].lower + margin, free[i].upper - margin);
  }
  return c;
}

PosteriorObjective::Centring PosteriorObjective::centringAt(const std::vector<double>& theta,
                                                            bool derivatives) const {
  const std::size_t nb = _centring.size();
  Centring out;
  const CosmologyParams cosmo = _post.paramsAt(theta).cosmology;
  const std::vector<double> ls = logPower(cosmo);
  out.map.assign(nb, 1.0);
  for (std::size_t m2 = 0; m2 < nb; ++m2) {
    // log A = -(w / 2) (log S - log S0); -log det A = sum over modes of (w / 2) (log S - log S0).
    const double half = 0.5 * _centring[m2] * (ls[m2] - _log_s0[m2]);
    out.map[m2] = _p[m2] * std::exp(-half);
    out.jacobian += _modes[m2] * half;
  }
  if (!derivatives)
    return out;
  const auto& free = _post.freeParameters();
  out.dlog.assign(free.size(), std::vector<double>(nb, 0.0));
  out.jacobian_gradient.assign(free.size(), 0.0);
  for (std::size_t j = 0; j < free.size(); ++j) {
    if (free[j].name == "bias")
      continue; // S does not depend on it
    const CosmoParam cp = free[j].name == "Omega_m" ? CosmoParam::Omega_m : CosmoParam::sigma8;
    const double h = differenceStep(cosmo, cp);
    const auto lp = logPower(shifted(cosmo, cp, h)), lm = logPower(shifted(cosmo, cp, -h));
    for (std::size_t m2 = 1; m2 < nb; ++m2) {
      const double dhalf = 0.5 * _centring[m2] * (lp[m2] - lm[m2]) / (2.0 * h);
      out.dlog[j][m2] = -dhalf;
      out.jacobian_gradient[j] += _modes[m2] * dhalf;
    }
  }
  return out;
}

void PosteriorObjective::multiplyShells(Field<double>& f, const std::vector<double>& table) const {
  ScopedRegion region("caustic::PosteriorObjective::multiplyShells");
  Kokkos::View<double*> t("caustic::PosteriorObjective::shells", table.size());
  auto host = Kokkos::create_mirror_view(t);
  for (std::size_t i = 0; i < table.size(); ++i)
    host(i) = table[i];
  Kokkos::deep_copy(t, host);
  _fft->forward(f);
  auto c = f.complex();
  f.decomp().forEachMode("caustic::PosteriorObjective::multiplyShells",
                         KOKKOS_LAMBDA(const MeshMode& m) { c(m.index) *= t(m.m2()); });
  _fft->backward(f);
}

double PosteriorObjective::noiseAt(const FieldVector& x, const std::vector<double>& clamped,
                                   Field<double>& omega) const {
  Kokkos::deep_copy(omega.real(), x.noise().real());
  if (!_centring.empty()) {
    const Centring c = centringAt(clamped, false);
    multiplyShells(omega, c.map);
    return c.jacobian;
  }
  if (_precond)
    _precond->apply(omega);
  return 0.0;
}

void PosteriorObjective::noiseAt(const FieldVector& x, Field<double>& omega) const {
  noiseAt(x, clampedTheta(thetaAt(x)), omega);
}

void PosteriorObjective::fromNoise(const Field<double>& omega, FieldVector& x) const {
  Kokkos::deep_copy(x.noise().real(), omega.real());
  if (!_centring.empty()) {
    std::vector<double> inv = centringAt(clampedTheta(thetaAt(x)), false).map;
    for (double& v : inv)
      v = 1.0 / v;
    multiplyShells(x.noise(), inv);
  } else if (_precond) {
    _precond->applyInverse(x.noise());
  }
}

FieldVector PosteriorObjective::makeVector() const {
  return FieldVector(_post.config().lattice, _fit ? _theta0.size() : 0);
}

std::vector<double> PosteriorObjective::thetaAt(const FieldVector& x) const {
  std::vector<double> t = _theta0;
  if (_fit)
    for (std::size_t i = 0; i < t.size(); ++i)
      t[i] += _scales[i] * x.params()[i];
  return t;
}

double PosteriorObjective::value(const ROL::Vector<double>& xv, double&) {
  evaluate(asField(xv));
  return _value;
}

void PosteriorObjective::gradient(ROL::Vector<double>& gv, const ROL::Vector<double>& xv, double&) {
  const FieldVector& x = asField(xv);
  evaluate(x);
  if (!_has_gradient) {
    // The posterior's gradient is that of its last value(): x's, unless someone evaluated the
    // posterior elsewhere since.
    if (_post.evaluations() != _post_evaluation) {
      _has_value = false;
      evaluate(x);
    }
    std::vector<double> gt;
    _post.gradient(_g.noise(), gt);
    if (!_centring.empty()) {
      // d/dtheta_j at fixed z: + dL/domega . (d log A / d theta_j) omega + d(-log det A) /
      // d theta_j; then dL/dz = P A dL/domega.
      const Centring c = centringAt(_clamped, true);
      Field<double> t(_post.config().lattice, "caustic::PosteriorObjective::dOmega");
      for (std::size_t j = 0; j < gt.size(); ++j) {
        Kokkos::deep_copy(t.real(), _omega->real());
        multiplyShells(t, c.dlog[j]);
        gt[j] += latticeDot(_g.noise(), t) + c.jacobian_gradient[j];
      }
      multiplyShells(_g.noise(), c.map);
    } else if (_precond) {
      _precond->apply(_g.noise()); // dL/dz = P dL/domega
    }
    ++_gradients;
    if (_fit)
      for (std::size_t i = 0; i < gt.size(); ++i) {
        const double d = _theta[i] - _clamped[i];
        _g.params()[i] = _scales[i] * (d != 0.0 ? 2.0 * kPenalty * d : gt[i]);
      }
    _has_gradient = true;
  }
  dynamic_cast<FieldVector&>(gv).set(_g);
}

void PosteriorObjective::gaussNewtonVector(const FieldVector& x, const FieldVector& v,
                                           FieldVector& hv, long* gradients) {
  // The posterior must hold x's state: evaluate x unless it is this objective's last point and
  // nobody has evaluated the posterior since.
  if (!_centring.empty())
    throw std::logic_error("PosteriorObjective: no Gauss-Newton product with centring");
  if (_post.evaluations() != _post_evaluation)
    _has_value = false;
  evaluate(x);
  std::vector<double> vt(_theta0.size(), 0.0), ht;
  if (_fit)
    for (std::size_t i = 0; i < vt.size(); ++i)
      vt[i] = _scales[i] * v.params()[i];
  if (_precond) {
    Field<double> vo(_post.config().lattice, "caustic::PosteriorObjective::direction");
    Kokkos::deep_copy(vo.real(), v.noise().real());
    _precond->apply(vo);
    _post.gaussNewtonProduct(vo, vt, hv.noise(), ht);
    _precond->apply(hv.noise());
  } else {
    _post.gaussNewtonProduct(v.noise(), vt, hv.noise(), ht);
  }
  if (_fit)
    for (std::size_t i = 0; i < ht.size(); ++i)
      hv.params()[i] = _scales[i] * ht[i];
  if (gradients)
    ++*gradients;
}

void PosteriorObjective::evaluate(const FieldVector& x) {
  if (_has_value && samePoint(x, _x))
    return;
  _x.set(x);
  _theta = thetaAt(x);
  _clamped = clampedTheta(_theta);
  double penalty = 0.0;
  for (std::size_t i = 0; i < _clamped.size(); ++i) {
    const double d = _theta[i] - _clamped[i];
    penalty += kPenalty * d * d;
  }
  const double jacobian = noiseAt(x, _clamped, *_omega);
  _terms = _post.value(*_omega, _clamped);
  _post_evaluation = _post.evaluations();
  ++_values;
  _value = _terms.total() + penalty + jacobian;
  _has_value = true;
  _has_gradient = false;
}

const char* lbfgsStopName(LbfgsStop s) {
  switch (s) {
  case LbfgsStop::gradient_tolerance:
    return "gradient tolerance";
  case LbfgsStop::step_tolerance:
    return "step tolerance";
  case LbfgsStop::iteration_limit:
    return "iteration limit";
  case LbfgsStop::callback:
    return "stopped by the caller";
  case LbfgsStop::other:
    break;
  }
  return "no acceptable step";
}

LbfgsStop minimizeLbfgs(ROL::Objective<double>& obj, FieldVector& x, const LbfgsSettings& s,
                   const std::function<bool(const LbfgsState&)>& check,
                   const LbfgsMemory* resume) {
  ScopedRegion region("caustic::minimizeLbfgs");
  ROL::ParameterList list;
  list.sublist("General").set("Output Level", 0);
  list.sublist("General").sublist("Secant").set("Type", "Limited-Memory BFGS");
  list.sublist("General").sublist("Secant").set("Maximum Storage", s.memory);
  auto& ls = list.sublist("Step").sublist("Line Search");
  ls.set("Function Evaluation Limit", s.line_search_evaluations);
  ls.set("Sufficient Decrease Tolerance", 1e-4);
  ls.set("Initial Step Size", 1.0);
  ls.sublist("Descent Method").set("Type", "Quasi-Newton Method");
  ls.sublist("Line-Search Method").set("Type", "Cubic Interpolation");
  ls.sublist("Curvature Condition").set("Type", "Strong Wolfe Conditions");
  auto secant = ROL::makePtr<ROL::lBFGS<double>>(s.memory);
  if (resume) {
    if (resume->s.size() != resume->y.size() || resume->s.size() != resume->sy.size() ||
        static_cast<int>(resume->s.size()) > s.memory)
      throw std::invalid_argument("minimizeLbfgs: a memory of " + std::to_string(resume->s.size()) +
                                  " pairs does not fit " + std::to_string(s.memory));
    const auto& st = static_cast<const ROL::lBFGS<double>&>(*secant).get_state();
    for (std::size_t i = 0; i < resume->s.size(); ++i) {
      st->iterDiff.push_back(ROL::makePtr<FieldVector>(resume->s[i]));
      st->gradDiff.push_back(ROL::makePtr<FieldVector>(resume->y[i]));
      st->product.push_back(resume->sy[i]);
    }
    st->current = static_cast<int>(resume->s.size()) - 1;
    st->iter = resume->iteration;
  }
  auto descent = ROL::makePtr<ROL::QuasiNewton_U<double>>(list, secant);
  auto test = ROL::makePtr<CallbackTest>(s, check, secant, resume);
  ROL::TypeU::LineSearchAlgorithm<double> algo(list, descent);
  algo.setStatusTest(test, false);
  std::ostringstream rolLog;
  const auto gradientShape = x.clone();
  algo.run(x, *gradientShape, obj, rolLog);
  return test->reason;
}

} // namespace caustic
