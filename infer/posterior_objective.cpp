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
    if (_check && !_check(st)) {
      stopped = true;
      return false;
    }
    if (state.iter >= _s.max_iterations)
      return false;
    if (state.gnorm <= _s.gradient_tolerance * _g0)
      return false;
    if (state.iter > 0 && state.snorm <= _s.step_tolerance)
      return false;
    return true;
  }
  bool stopped = false;

private:
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
                                       std::shared_ptr<const FourierPreconditioner> precond)
    : _post(post), _theta0(std::move(theta0)), _scales(std::move(scales)), _fit(fit),
      _precond(std::move(precond)), _x(post.config().lattice, fit ? _theta0.size() : 0),
      _g(post.config().lattice, fit ? _theta0.size() : 0),
      _omega(std::make_unique<Field<double>>(post.config().lattice,
                                             "caustic::PosteriorObjective::omega")) {
  if (_fit && _scales.size() != _theta0.size())
    throw std::invalid_argument("PosteriorObjective: " + std::to_string(_scales.size()) +
                                " scales for " + std::to_string(_theta0.size()) + " parameters");
}

void PosteriorObjective::noiseAt(const FieldVector& x, Field<double>& omega) const {
  Kokkos::deep_copy(omega.real(), x.noise().real());
  if (_precond)
    _precond->apply(omega);
}

void PosteriorObjective::fromNoise(const Field<double>& omega, FieldVector& x) const {
  Kokkos::deep_copy(x.noise().real(), omega.real());
  if (_precond)
    _precond->applyInverse(x.noise());
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
    if (_precond)
      _precond->apply(_g.noise()); // dL/dz = P dL/domega
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
  _clamped = _theta;
  double penalty = 0.0;
  const auto& free = _post.freeParameters();
  for (std::size_t i = 0; i < _clamped.size(); ++i) {
    const double margin = 1e-3 * (free[i].upper - free[i].lower);
    _clamped[i] = std::clamp(_theta[i], free[i].lower + margin, free[i].upper - margin);
    const double d = _theta[i] - _clamped[i];
    penalty += kPenalty * d * d;
  }
  noiseAt(x, *_omega);
  _terms = _post.value(*_omega, _clamped);
  _post_evaluation = _post.evaluations();
  ++_values;
  _value = _terms.total() + penalty;
  _has_value = true;
  _has_gradient = false;
}

bool minimizeLbfgs(ROL::Objective<double>& obj, FieldVector& x, const LbfgsSettings& s,
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
  return !test->stopped;
}

} // namespace caustic
