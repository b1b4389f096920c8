#include "infer/map_optimizer.hpp"

#include "infer/posterior_objective.hpp"
#include "pm/core/profiling.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>

namespace caustic {

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

std::shared_ptr<FourierPreconditioner>
MapOptimizer::measurePreconditioner(const Field<double>& omega, const std::vector<double>& theta,
                                    std::uint64_t seed) {
  auto pre = std::make_shared<FourierPreconditioner>(_post.config().lattice);
  _post.value(omega, theta);
  pre->estimate(
      [&](const Field<double>& v, Field<double>& hv) {
        std::vector<double> zt(theta.size(), 0.0), ht;
        _post.gaussNewtonProduct(v, zt, hv, ht);
        // The likelihood's part: without the unit prior of the noise.
        auto h = hv.real(), vv = v.real();
        Kokkos::parallel_for(
            "caustic::MapOptimizer::likelihoodPart", Kokkos::RangePolicy<>(0, h.extent(0)),
            KOKKOS_LAMBDA(std::size_t i) { h(i) -= vv(i); });
        Kokkos::fence();
      },
      _settings.preconditioner_probes, seed);
  return pre;
}

std::vector<double> MapOptimizer::measureScales(const Field<double>& omega,
                                                const std::vector<double>& theta,
                                                bool preconditioned) {
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
  if (gnorm > 0.0 && !preconditioned) {
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

bool MapOptimizer::run(Field<double>& omega, std::vector<double>& theta, const Progress& progress,
                       const MapCheckpoint* resume) {
  ScopedRegion region("caustic::MapOptimizer::run");
  if (theta.size() != _post.freeParameters().size())
    throw std::invalid_argument("MapOptimizer: " + std::to_string(theta.size()) +
                                " parameter values for " +
                                std::to_string(_post.freeParameters().size()) + " free parameters");
  if (resume && (resume->stage < 0 || resume->stage >= int(_settings.stages.size()) || !resume->x))
    throw std::invalid_argument("MapOptimizer: the checkpoint's stage " +
                                std::to_string(resume ? resume->stage : -1) + " is not one of the " +
                                std::to_string(_settings.stages.size()) + " stages");
  const auto t0 = std::chrono::steady_clock::now();
  long values = resume ? resume->evaluations : 0, gradients = resume ? resume->gradients : 0;
  int total = resume ? resume->total : 0;
  if (resume) {
    _scales = resume->scales;
    _noise_curvature = resume->noise_curvature;
  }
  for (std::size_t si = resume ? resume->stage : 0; si < _settings.stages.size(); ++si) {
    const bool resuming = resume && int(si) == resume->stage;
    const MapStage& stage = _settings.stages[si];
    _post.setSmoothing(stage.smoothing);
    const bool fit = stage.fit_parameters && !theta.empty();
    const bool pre = _settings.preconditioner_probes > 0;
    std::shared_ptr<FourierPreconditioner> precond;
    std::vector<double> theta0 = theta;
    if (resuming) {
      theta0 = resume->theta_stage;
      if (!resume->preconditioner_curvature.empty()) {
        precond = std::make_shared<FourierPreconditioner>(_post.config().lattice);
        precond->setCurvature(resume->preconditioner_curvature);
      }
    } else {
      if (fit && _scales.empty())
        _scales = measureScales(omega, theta, pre);
      if (pre)
        precond = measurePreconditioner(omega, theta, 1000 + 10 * si);
    }
    _precond = precond;
    PosteriorObjective obj(_post, theta0, _scales, fit, precond);
    FieldVector x = obj.makeVector();
    if (resuming)
      x.set(*resume->x);
    else
      obj.fromNoise(omega, x);
    LbfgsSettings ls;
    ls.max_iterations = stage.max_iterations;
    ls.memory = _settings.memory;
    ls.gradient_tolerance = _settings.gradient_tolerance;
    ls.step_tolerance = _settings.step_tolerance;
    ls.line_search_evaluations = _settings.line_search_evaluations;
    bool first = true;
    _last_stop = minimizeLbfgs(
        obj, x, ls,
        [&](const LbfgsState& st) {
          // The resumed run's first check is the checkpoint's iterate, already counted.
          if (st.iteration > 0 && !(resuming && first))
            ++total;
          first = false;
          MapIteration it;
          it.stage = static_cast<int>(si);
          it.iteration = st.iteration;
          it.total = total;
          it.smoothing = stage.smoothing;
          it.terms = obj.terms();
          it.gradient_norm = st.gradient_norm;
          it.theta = obj.theta();
          it.evaluations = values + obj.values();
          it.gradients = gradients + obj.gradients();
          it.seconds =
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          it.checkpoint = [&, st, it]() {
            MapCheckpoint c;
            c.stage = it.stage;
            c.total = it.total;
            c.evaluations = it.evaluations;
            c.gradients = it.gradients;
            c.theta_stage = theta0;
            c.scales = _scales;
            c.noise_curvature = _noise_curvature;
            if (precond)
              c.preconditioner_curvature = precond->curvature();
            c.x = std::make_unique<FieldVector>(x);
            c.memory = st.memory();
            return c;
          };
          return !progress || progress(it);
        },
        resuming ? &resume->memory : nullptr);
    values += obj.values();
    gradients += obj.gradients();
    obj.noiseAt(x, omega);
    theta = obj.thetaAt(x);
    if (_last_stop == LbfgsStop::callback)
      return false;
  }
  return true;
}

} // namespace caustic
