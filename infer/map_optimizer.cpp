#include "infer/map_optimizer.hpp"

#include "pm/core/profiling.hpp"

#include <ROL_StatusTest.hpp>
#include <ROL_TypeU_LineSearchAlgorithm.hpp>
#include <ROL_lBFGS.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <sstream>
#include <stdexcept>

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
      "caustic::MapOptimizer::samePoint",
      KOKKOS_LAMBDA(const MeshPoint& q, double& acc) {
        if (!(x(q.index) == y(q.index)))
          acc += 1.0;
      },
      differ);
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &differ, 1, MPI_DOUBLE, MPI_SUM,
                         a.noise().decomp().comm().get()),
           "MapOptimizer::samePoint");
  return differ == 0.0;
}

struct Counters {
  long values = 0, gradients = 0;
};

// -log posterior as a function of x = (omega, u), theta = theta0 + s u (or theta0 held).
class PosteriorObjective : public ROL::Objective<double> {
public:
  PosteriorObjective(FieldPosterior& post, std::vector<double> theta0, std::vector<double> scales,
                     bool fit, Counters& counters)
      : _post(post), _theta0(std::move(theta0)), _scales(std::move(scales)), _fit(fit),
        _counters(counters), _x(post.config().lattice, fit ? _theta0.size() : 0),
        _g(post.config().lattice, fit ? _theta0.size() : 0) {}

  std::vector<double> thetaAt(const FieldVector& x) const {
    std::vector<double> t = _theta0;
    if (_fit)
      for (std::size_t i = 0; i < t.size(); ++i)
        t[i] += _scales[i] * x.params()[i];
    return t;
  }

  double value(const ROL::Vector<double>& xv, double&) override {
    evaluate(asField(xv));
    return _value;
  }

  void gradient(ROL::Vector<double>& gv, const ROL::Vector<double>& xv, double&) override {
    const FieldVector& x = asField(xv);
    evaluate(x);
    if (!_has_gradient) {
      std::vector<double> gt;
      _post.gradient(_g.noise(), gt);
      ++_counters.gradients;
      if (_fit)
        for (std::size_t i = 0; i < gt.size(); ++i) {
          const double d = _theta[i] - _clamped[i];
          _g.params()[i] = _scales[i] * (d != 0.0 ? 2.0 * kPenalty * d : gt[i]);
        }
      _has_gradient = true;
    }
    dynamic_cast<FieldVector&>(gv).set(_g);
  }

  const FieldPosterior::Terms& terms() const { return _terms; }
  const std::vector<double>& theta() const { return _clamped; }

private:
  void evaluate(const FieldVector& x) {
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
    _terms = _post.value(x.noise(), _clamped);
    ++_counters.values;
    _value = _terms.total() + penalty;
    _has_value = true;
    _has_gradient = false;
  }

  FieldPosterior& _post;
  std::vector<double> _theta0, _scales;
  bool _fit;
  Counters& _counters;
  FieldVector _x, _g; // the cached point and its gradient
  std::vector<double> _theta, _clamped;
  FieldPosterior::Terms _terms;
  double _value = 0.0;
  bool _has_value = false, _has_gradient = false;
};

// Reports every accepted iterate and decides when a stage ends: relative gradient tolerance,
// step tolerance, iteration limit, a non-finite state, or the caller's progress callback.
class StageTest : public ROL::StatusTest<double> {
public:
  StageTest(const MapSettings& s, const MapStage& stage, int stage_index,
            const PosteriorObjective& obj, const MapOptimizer::Progress& progress,
            MapIteration& last, int& total, const Counters& counters,
            std::chrono::steady_clock::time_point t0)
      : _s(s), _stage(stage), _index(stage_index), _obj(obj), _progress(progress), _last(last),
        _total(total), _counters(counters), _t0(t0) {}

  bool check(ROL::AlgorithmState<double>& state) override {
    if (state.iter == 0)
      _g0 = state.gnorm;
    else
      ++_total;
    MapIteration it;
    it.stage = _index;
    it.iteration = state.iter;
    it.total = _total;
    it.smoothing = _stage.smoothing;
    it.terms = _obj.terms();
    it.gradient_norm = state.gnorm;
    it.theta = _obj.theta();
    it.evaluations = _counters.values;
    it.gradients = _counters.gradients;
    it.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count();
    _last = it;
    if (_progress && !_progress(it)) {
      stopped = true;
      return false;
    }
    if (!std::isfinite(state.value) || !std::isfinite(state.gnorm))
      throw std::runtime_error("MAP: the posterior or its gradient is not finite at iteration " +
                               std::to_string(state.iter) + " of stage " +
                               std::to_string(_index));
    if (state.iter >= _stage.max_iterations)
      return false;
    if (state.gnorm <= _s.gradient_tolerance * _g0)
      return false;
    if (state.iter > 0 && state.snorm <= _s.step_tolerance)
      return false;
    return true;
  }

  bool stopped = false;

private:
  const MapSettings& _s;
  const MapStage& _stage;
  int _index;
  const PosteriorObjective& _obj;
  const MapOptimizer::Progress& _progress;
  MapIteration& _last;
  int& _total;
  const Counters& _counters;
  std::chrono::steady_clock::time_point _t0;
  double _g0 = 0.0;
};

} // namespace

void requireMapSettings(const MapSettings& s) {
  if (s.stages.empty())
    throw std::invalid_argument("inference.smoothing: no stage; expected at least one scale");
  for (std::size_t i = 0; i < s.stages.size(); ++i) {
    const auto& st = s.stages[i];
    if (!(st.smoothing >= 0.0) || !std::isfinite(st.smoothing))
      throw std::invalid_argument("inference.smoothing[" + std::to_string(i) + "] = " +
                                  std::to_string(st.smoothing) +
                                  ": not allowed; expected a scale >= 0 (Mpc/h)");
    if (st.max_iterations < 1)
      throw std::invalid_argument("inference.iterations[" + std::to_string(i) + "] = " +
                                  std::to_string(st.max_iterations) +
                                  ": not allowed; expected an integer >= 1");
  }
  if (s.memory < 1 || s.memory > 100)
    throw std::invalid_argument("inference.memory = " + std::to_string(s.memory) +
                                ": not allowed; expected an integer in [1, 100]");
  if (!(s.gradient_tolerance > 0.0 && s.gradient_tolerance < 1.0))
    throw std::invalid_argument("inference.gradient_tolerance = " +
                                std::to_string(s.gradient_tolerance) +
                                ": not allowed; expected a number in (0, 1)");
}

MapOptimizer::MapOptimizer(FieldPosterior& post, MapSettings settings)
    : _post(post), _settings(std::move(settings)) {
  requireMapSettings(_settings);
}

std::vector<double> MapOptimizer::measureScales(const Field<double>& omega,
                                                const std::vector<double>& theta) {
  ScopedRegion region("caustic::MapOptimizer::measureScales");
  const auto& free = _post.freeParameters();
  const auto& lattice = _post.config().lattice;
  Field<double> g(lattice, "caustic::MapOptimizer::gradient");
  Field<double> v(lattice, "caustic::MapOptimizer::direction");
  Field<double> w(lattice, "caustic::MapOptimizer::shifted");
  std::vector<double> gt;
  auto norm = [&](const Field<double>& f) {
    FieldVector a(lattice, 0);
    Kokkos::deep_copy(a.noise().real(), f.real());
    return a.norm();
  };
  // The noise block's curvature along its gradient (a Rayleigh quotient by centred differences
  // of the gradient): the stiffness L-BFGS's initial scaling adapts to.
  _post.value(omega, theta);
  _post.gradient(v, gt);
  const double gnorm = norm(v);
  double noise_curvature = 1.0;
  if (gnorm > 0.0) {
    const double h = 1e-3;
    auto vv = v.real();
    Kokkos::parallel_for(
        "caustic::MapOptimizer::normalise", Kokkos::RangePolicy<>(0, vv.extent(0)),
        KOKKOS_LAMBDA(std::size_t i) { vv(i) /= gnorm; });
    Kokkos::fence();
    double proj[2];
    for (int side = 0; side < 2; ++side) {
      auto ww = w.real(), om = omega.real();
      const double t = side ? h : -h;
      Kokkos::parallel_for(
          "caustic::MapOptimizer::shift", Kokkos::RangePolicy<>(0, ww.extent(0)),
          KOKKOS_LAMBDA(std::size_t i) { ww(i) = om(i) + t * vv(i); });
      Kokkos::fence();
      _post.value(w, theta);
      _post.gradient(g, gt);
      FieldVector a(lattice, 0), b(lattice, 0);
      Kokkos::deep_copy(a.noise().real(), g.real());
      Kokkos::deep_copy(b.noise().real(), v.real());
      proj[side] = a.dot(b);
    }
    noise_curvature = std::max(1.0, (proj[1] - proj[0]) / (2.0 * h));
  }
  _noise_curvature = noise_curvature;
  // Each parameter's own curvature, by centred differences of its adjoint derivative (step: 1e-3
  // of its domain).
  std::vector<double> scales(theta.size(), 0.0);
  for (std::size_t i = 0; i < theta.size(); ++i) {
    const double h = 1e-3 * (free[i].upper - free[i].lower);
    double gi[2];
    for (int side = 0; side < 2; ++side) {
      std::vector<double> t = theta;
      t[i] += side ? h : -h;
      _post.value(omega, t);
      _post.gradient(g, gt);
      gi[side] = gt[i];
    }
    const double curvature = (gi[1] - gi[0]) / (2.0 * h);
    // u = (theta - theta_0) / s has the noise block's curvature; non-convex there (or flat):
    // 1% of the domain per unit of u.
    scales[i] = curvature > 0.0 ? std::sqrt(noise_curvature / curvature)
                                : 1e-2 * (free[i].upper - free[i].lower);
  }
  return scales;
}

bool MapOptimizer::run(Field<double>& omega, std::vector<double>& theta, const Progress& progress) {
  ScopedRegion region("caustic::MapOptimizer::run");
  if (theta.size() != _post.freeParameters().size())
    throw std::invalid_argument("MapOptimizer: " + std::to_string(theta.size()) +
                                " parameter values for " +
                                std::to_string(_post.freeParameters().size()) + " free parameters");
  const auto t0 = std::chrono::steady_clock::now();
  Counters counters;
  int total = 0;
  for (std::size_t si = 0; si < _settings.stages.size(); ++si) {
    const MapStage& stage = _settings.stages[si];
    _post.setSmoothing(stage.smoothing);
    const bool fit = stage.fit_parameters && !theta.empty();
    if (fit && _scales.empty())
      _scales = measureScales(omega, theta);

    ROL::ParameterList list;
    list.sublist("General").set("Output Level", 0);
    list.sublist("General").sublist("Secant").set("Type", "Limited-Memory BFGS");
    list.sublist("General").sublist("Secant").set("Maximum Storage", _settings.memory);
    auto& ls = list.sublist("Step").sublist("Line Search");
    ls.set("Function Evaluation Limit", _settings.line_search_evaluations);
    ls.set("Sufficient Decrease Tolerance", 1e-4);
    ls.set("Initial Step Size", 1.0);
    ls.sublist("Descent Method").set("Type", "Quasi-Newton Method");
    ls.sublist("Line-Search Method").set("Type", "Cubic Interpolation");
    ls.sublist("Curvature Condition").set("Type", "Strong Wolfe Conditions");

    PosteriorObjective obj(_post, theta, _scales, fit, counters);
    FieldVector x(_post.config().lattice, fit ? theta.size() : 0);
    Kokkos::deep_copy(x.noise().real(), omega.real());
    MapIteration last;
    auto test = ROL::makePtr<StageTest>(_settings, stage, static_cast<int>(si), obj, progress, last,
                                        total, counters, t0);
    ROL::TypeU::LineSearchAlgorithm<double> algo(list);
    algo.setStatusTest(test, false);
    std::ostringstream rolLog;
    const auto gradientShape = x.clone();
    algo.run(x, *gradientShape, obj, rolLog);
    Kokkos::deep_copy(omega.real(), x.noise().real());
    theta = obj.thetaAt(x);
    if (test->stopped)
      return false;
  }
  return true;
}

} // namespace caustic
