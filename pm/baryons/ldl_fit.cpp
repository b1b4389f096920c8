#include "pm/baryons/ldl_fit.hpp"

#include "pm/core/comm.hpp"
#include "pm/core/kmath.hpp"

#include <Kokkos_ScatterView.hpp>

#include <algorithm>
#include <cmath>
#include <deque>
#include <memory>
#include <stdexcept>
#include <string>

namespace caustic {

namespace {

// Which parameters are kept as logarithms (k_l, k_h of every layer).
using LogMask = std::vector<bool>;
LogMask logMask(const LdlModel& m) {
  LogMask mask(m.parameterCount());
  for (std::size_t i = 0; i < mask.size(); ++i)
    mask[i] = m.logParameter(i);
  return mask;
}
LogMask logMask(std::size_t n, int layers) {
  LogMask mask(n);
  for (std::size_t i = 0; i < n; ++i)
    mask[i] = ldlLogParameter(i, layers);
  return mask;
}
bool isLog(std::size_t i, const LogMask& mask) {
  return i < mask.size() && mask[i];
}

std::vector<double> toU(const std::vector<double>& p, const LogMask& mask) {
  std::vector<double> u(p);
  for (std::size_t i = 0; i < u.size(); ++i)
    if (isLog(i, mask))
      u[i] = std::log(p[i]);
  return u;
}
std::vector<double> fromU(const std::vector<double>& u, const LogMask& mask) {
  std::vector<double> p(u);
  for (std::size_t i = 0; i < p.size(); ++i)
    if (isLog(i, mask))
      p[i] = std::exp(u[i]);
  return p;
}

std::vector<double> parametersAt(const std::vector<double>& base,
                                 const std::vector<std::vector<double>>& slopes,
                                 const std::vector<double>& condition, const LogMask& mask) {
  if (slopes.size() != condition.size())
    throw std::invalid_argument("ldlParametersAt: " + std::to_string(slopes.size()) +
                                " slopes for " + std::to_string(condition.size()) + " conditions");
  if (slopes.empty())
    return base; // exactly (not through the logarithms)
  std::vector<double> v = toU(base, mask);
  for (std::size_t j = 0; j < slopes.size(); ++j) {
    if (slopes[j].size() != v.size())
      throw std::invalid_argument("ldlParametersAt: a slope of " +
                                  std::to_string(slopes[j].size()) + " values for " +
                                  std::to_string(v.size()) + " parameters");
    for (std::size_t i = 0; i < v.size(); ++i)
      v[i] += condition[j] * slopes[j][i];
  }
  return fromU(v, mask);
}

double dotv(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

} // namespace

std::vector<double> ldlInitialParameters(int layers, double target_mean) {
  std::vector<double> p;
  for (int l = 0; l < layers; ++l)
    p.insert(p.end(), {0.01, 0.5, 0.2, 5.0, 0.0});
  p.insert(p.end(), {1.0, target_mean, 0.0});
  return p;
}

namespace {

// The loss of pair q at parameters params(q) and, if `grad`, the gradient of its share
// (J_q / pairs) handed to grad(q, g). The single-parameter loss and the conditioned loss share it.
template <class Params, class Grad>
double pairLosses(LdlModel& painter, const std::vector<LdlPair>& pairs, const Params& params,
                  const LdlLossOptions& opt, const Grad& grad, bool want_grad) {
  if (pairs.empty())
    throw std::invalid_argument("ldlLoss: no pairs");
  if (!(opt.power_weight >= 0) || !(opt.power_kmax >= 0) || !(opt.profile_weight >= 0))
    throw std::invalid_argument(
        "ldlLoss: power_weight, power_kmax and profile_weight must be >= 0");
  if (opt.profile_weight > 0)
    for (const LdlPair& pr : pairs)
      if (!pr.halos)
        throw std::invalid_argument("ldlLoss: the profile term needs every pair's FoF catalogue");
  const auto& d = pairs.front().target->decomp();
  auto decomp = pairs.front().target->decompPtr();
  FFT<double> fft(decomp);
  Field<double> out(decomp, "caustic::ldl_fit::out"), res(decomp, "caustic::ldl_fit::res"),
      tw(decomp, "caustic::ldl_fit::target");
  const int n = d.n();
  const double n3 = double(n) * n * n, inv_n3 = 1.0 / n3;
  MPI_Comm comm = d.comm().get();
  const bool power = opt.power_weight > 0;
  // The power term's shells 1 .. bmax of |m| (rounded), as binPower's.
  const int bmax =
      opt.power_kmax > 0
          ? std::min(n / 2, static_cast<int>(std::floor(opt.power_kmax / d.kFundamental() + 0.5)))
          : n / 2;
  Kokkos::View<double* [2]> shells("caustic::ldl_fit::shells", bmax + 1); // Q_F, Q_T
  Kokkos::View<double*> coef("caustic::ldl_fit::coef", bmax + 1);         // d J_P / d|F(k)|^2
  double total = 0;
  for (std::size_t q_pair = 0; q_pair < pairs.size(); ++q_pair) {
    const LdlPair& pr = pairs[q_pair];
    painter.setHalos(pr.halos);
    painter.forward(pr.x, pr.n, params(q_pair), out);
    // The profile term (in real space, before the transforms below overwrite `out`).
    std::unique_ptr<LdlProfiles> prof;
    std::vector<double> prof_dj;
    if (opt.profile_weight > 0) {
      prof = std::make_unique<LdlProfiles>(decomp, *pr.halos);
      const std::vector<double> sf = prof->stack(out), st = prof->stack(*pr.target);
      int used = 0;
      for (std::size_t q = 0; q < sf.size(); ++q)
        used += std::isfinite(st[q]) && st[q] != 0 ? 1 : 0;
      prof_dj.assign(sf.size(), 0.0);
      for (std::size_t q = 0; q < sf.size() && used > 0; ++q) {
        if (!(std::isfinite(st[q]) && st[q] != 0))
          continue;
        const double rho = sf[q] / st[q];
        total += opt.profile_weight / used * (rho - 1) * (rho - 1);
        prof_dj[q] = 2 * opt.profile_weight / used * (rho - 1) / st[q];
      }
    }
    auto o = out.real(), t = pr.target->real(), r = res.real(), w = tw.real();
    d.forEachPoint(
        "caustic::ldl_fit::residual", KOKKOS_LAMBDA(const MeshPoint& pt) {
          r(pt.index) = o(pt.index) - t(pt.index);
          w(pt.index) = t(pt.index);
        });
    fft.forward(res);
    fft.forward(tw);
    if (power)
      fft.forward(out);
    auto rc = res.complex(), wc = tw.complex(), oc = out.complex();
    const double wn = opt.weight_n;
    // sum_k W(k)^2 |c(k)|^2 over the full k space (the stored half, weighted).
    auto weighted = [&](const Field<double>::complex_view& c) {
      double acc_all = 0;
      d.reduceModes(
          "caustic::ldl_fit::weighted_norm",
          KOKKOS_LAMBDA(const MeshMode& md, double& acc) {
            const double m = km::sqrt(double(md.m2()));
            const double wk = m > 0 ? 1.0 + km::pow(m, -wn) : 1.0;
            acc +=
                md.weight * wk * wk *
                (c(md.index).real() * c(md.index).real() + c(md.index).imag() * c(md.index).imag());
          },
          acc_all);
      return acc_all;
    };
    const double num = weighted(rc), den = weighted(wc);
    double sums[2] = {num * inv_n3, den * inv_n3}, all[2] = {0, 0};
    mpiCheck(MPI_Allreduce(sums, all, 2, MPI_DOUBLE, MPI_SUM, comm), "ldlLoss");
    if (!(all[1] > 0))
      throw std::invalid_argument("ldlLoss: a target field is zero everywhere");
    total += all[0] / all[1];
    if (power) {
      Kokkos::deep_copy(shells, 0.0);
      auto sv = Kokkos::Experimental::create_scatter_view(shells);
      d.forEachMode(
          "caustic::ldl_fit::shells", KOKKOS_LAMBDA(const MeshMode& md) {
            const int b = static_cast<int>(km::floor(km::sqrt(double(md.m2())) + 0.5));
            if (b < 1 || b > bmax)
              return;
            const auto u = oc(md.index), v = wc(md.index);
            auto acc = sv.access();
            acc(b, 0) += md.weight * (u.real() * u.real() + u.imag() * u.imag());
            acc(b, 1) += md.weight * (v.real() * v.real() + v.imag() * v.imag());
          });
      Kokkos::Experimental::contribute(shells, sv);
      auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), shells);
      std::vector<double> loc(2 * (bmax + 1)), q(loc.size()); // by element: any layout
      for (int b = 0; b <= bmax; ++b)
        for (int j = 0; j < 2; ++j)
          loc[2 * b + j] = h(b, j);
      mpiCheck(MPI_Allreduce(loc.data(), q.data(), static_cast<int>(q.size()), MPI_DOUBLE, MPI_SUM,
                             comm),
               "ldlLoss: shells");
      int used = 0;
      for (int b = 1; b <= bmax; ++b)
        used += q[2 * b + 1] > 0 ? 1 : 0;
      auto hc = Kokkos::create_mirror_view(coef);
      double jp = 0;
      for (int b = 0; b <= bmax; ++b) {
        hc(b) = 0;
        if (b < 1 || !(q[2 * b + 1] > 0))
          continue;
        const double rho = q[2 * b] / q[2 * b + 1];
        jp += opt.power_weight / used * (rho - 1) * (rho - 1);
        hc(b) = 2 * opt.power_weight / used * (rho - 1) / q[2 * b + 1];
      }
      Kokkos::deep_copy(coef, hc);
      total += jp;
    }
    if (want_grad) {
      // dJ/dF from the modes: J = n^-3 sum_k a_k |c(k)|^2 has the cotangent 2 a_k c(k) here:
      // a_k = W^2 / den for the residual, n^3 dJ_P/d|F(k)|^2 for the painted field.
      const double scale = 2.0 / all[1];
      d.forEachMode(
          "caustic::ldl_fit::cotangent", KOKKOS_LAMBDA(const MeshMode& md) {
            const double m = km::sqrt(double(md.m2()));
            const double wk = m > 0 ? 1.0 + km::pow(m, -wn) : 1.0;
            auto c = rc(md.index) * (scale * wk * wk);
            if (power) {
              const int b = static_cast<int>(km::floor(m + 0.5));
              if (b >= 1 && b <= bmax)
                c += oc(md.index) * (2 * n3 * coef(b));
            }
            rc(md.index) = c;
          });
      fft.backward(res);
      if (prof)
        prof->addCotangent(prof_dj, res);
      std::vector<double> g = painter.gradient(res);
      for (double& v : g)
        v /= pairs.size();
      grad(q_pair, g);
    }
  }
  return total / pairs.size();
}

} // namespace

double ldlLoss(LdlModel& painter, const std::vector<LdlPair>& pairs,
               const std::vector<double>& params, const LdlLossOptions& opt,
               std::vector<double>* grad) {
  if (grad)
    grad->assign(params.size(), 0.0);
  return pairLosses(
      painter, pairs, [&](std::size_t) -> const std::vector<double>& { return params; }, opt,
      [&](std::size_t, const std::vector<double>& g) {
        for (std::size_t i = 0; i < g.size(); ++i)
          (*grad)[i] += g[i];
      },
      grad != nullptr);
}

std::size_t ldlConditionCount(const std::vector<LdlPair>& pairs) {
  const std::size_t nc = pairs.empty() ? 0 : pairs.front().condition.size();
  for (const LdlPair& pr : pairs)
    if (pr.condition.size() != nc)
      throw std::invalid_argument("LDL pairs: every pair needs the same number of conditions (" +
                                  std::to_string(nc) + " and " +
                                  std::to_string(pr.condition.size()) + ")");
  return nc;
}

std::vector<double> ldlParametersAt(const std::vector<double>& base,
                                    const std::vector<std::vector<double>>& slopes,
                                    const std::vector<double>& condition, int layers) {
  return parametersAt(base, slopes, condition, logMask(base.size(), layers));
}

std::vector<double> ldlParametersAt(const std::vector<double>& base,
                                    const std::vector<std::vector<double>>& slopes,
                                    const std::vector<double>& condition, const LdlModel& model) {
  return parametersAt(base, slopes, condition, logMask(model));
}

double ldlConditionedLoss(LdlModel& painter, const std::vector<LdlPair>& pairs,
                          const std::vector<double>& base,
                          const std::vector<std::vector<double>>& slopes, const LdlLossOptions& opt,
                          std::vector<double>* grad_base,
                          std::vector<std::vector<double>>* grad_slopes) {
  const std::size_t nc = ldlConditionCount(pairs);
  const LogMask mask = logMask(painter);
  std::vector<std::vector<double>> at;
  for (const LdlPair& pr : pairs)
    at.push_back(parametersAt(base, slopes, pr.condition, mask));
  const bool want = grad_base || grad_slopes;
  std::vector<double> gv(base.size(), 0.0);                                  // d/d(base, in u)
  std::vector<std::vector<double>> gs(nc, std::vector<double>(base.size())); // d/d slopes
  const double j = pairLosses(
      painter, pairs, [&](std::size_t q) -> const std::vector<double>& { return at[q]; }, opt,
      [&](std::size_t q, const std::vector<double>& g) {
        for (std::size_t i = 0; i < g.size(); ++i) {
          // u = ln p for k_l, k_h: dJ/du = p dJ/dp at this pair's parameters.
          const double gu = isLog(i, mask) ? g[i] * at[q][i] : g[i];
          gv[i] += gu;
          for (std::size_t c = 0; c < nc; ++c)
            gs[c][i] += pairs[q].condition[c] * gu;
        }
      },
      want);
  if (grad_base) {
    *grad_base = gv;
    for (std::size_t i = 0; i < gv.size(); ++i)
      if (isLog(i, mask))
        (*grad_base)[i] = gv[i] / base[i];
  }
  if (grad_slopes)
    *grad_slopes = gs;
  return j;
}

LdlFitResult fitLdl(LdlModel& painter, const std::vector<LdlPair>& pairs,
                    const std::vector<double>& initial, const LdlFitOptions& opt,
                    const std::vector<std::vector<double>>& initial_slopes) {
  const LogMask mask = logMask(painter);
  const std::size_t np = initial.size(), nc = ldlConditionCount(pairs);
  if (!initial_slopes.empty() && initial_slopes.size() != nc)
    throw std::invalid_argument("fitLdl: " + std::to_string(initial_slopes.size()) +
                                " initial slopes for " + std::to_string(nc) + " conditions");
  if (!opt.hold.empty() && opt.hold.size() != np)
    throw std::invalid_argument("fitLdl: hold has " + std::to_string(opt.hold.size()) +
                                " entries for " + std::to_string(np) + " parameters");
  LdlFitResult res;
  // The optimiser's variables: the base parameters (k_l, k_h as logarithms), then the slopes.
  std::vector<double> u = toU(initial, mask);
  for (std::size_t c = 0; c < nc; ++c) {
    const std::vector<double> s0 =
        initial_slopes.empty() ? std::vector<double>(np, 0.0) : initial_slopes[c];
    if (s0.size() != np)
      throw std::invalid_argument("fitLdl: an initial slope of " + std::to_string(s0.size()) +
                                  " values for " + std::to_string(np) + " parameters");
    u.insert(u.end(), s0.begin(), s0.end());
  }
  auto split = [&](const std::vector<double>& uu) {
    std::vector<std::vector<double>> sl(nc);
    for (std::size_t c = 0; c < nc; ++c)
      sl[c].assign(uu.begin() + (c + 1) * np, uu.begin() + (c + 2) * np);
    return sl;
  };
  auto baseOf = [&](const std::vector<double>& uu) {
    return fromU(std::vector<double>(uu.begin(), uu.begin() + np), mask);
  };
  auto eval = [&](const std::vector<double>& uu, std::vector<double>* gu) {
    const std::vector<double> p = baseOf(uu);
    std::vector<double> g;
    std::vector<std::vector<double>> gs;
    // Without conditions the plain loss (the same arithmetic as before conditions existed).
    const double j = nc == 0 ? ldlLoss(painter, pairs, p, opt.loss, gu ? &g : nullptr)
                             : ldlConditionedLoss(painter, pairs, p, split(uu), opt.loss,
                                                  gu ? &g : nullptr, gu ? &gs : nullptr);
    if (gu) {
      *gu = g;
      for (std::size_t i = 0; i < np; ++i)
        if (isLog(i, mask))
          (*gu)[i] = g[i] * p[i];
      for (const auto& row : gs)
        gu->insert(gu->end(), row.begin(), row.end());
      // Held: no step moves the output layer (unless fitted) or a held parameter, nor their slopes.
      for (std::size_t c = 0; c <= nc; ++c)
        for (std::size_t i = 0; i < np; ++i)
          if ((!opt.fit_output && painter.outputParameter(i)) ||
              (i < opt.hold.size() && opt.hold[i]))
            (*gu)[c * np + i] = 0;
    }
    return j;
  };
  std::vector<double> g;
  double j = eval(u, &g);
  res.loss.push_back(j);
  std::deque<std::pair<std::vector<double>, std::vector<double>>> mem; // (s, y)
  res.stop = "iteration limit";
  for (int it = 0; it < opt.iterations; ++it) {
    // Two-loop recursion: d = -H g.
    std::vector<double> q = g;
    std::vector<double> alpha(mem.size());
    for (int k = static_cast<int>(mem.size()) - 1; k >= 0; --k) {
      alpha[k] = dotv(mem[k].first, q) / dotv(mem[k].second, mem[k].first);
      for (std::size_t i = 0; i < q.size(); ++i)
        q[i] -= alpha[k] * mem[k].second[i];
    }
    double gamma = 1.0;
    if (!mem.empty())
      gamma = dotv(mem.back().first, mem.back().second) / dotv(mem.back().second, mem.back().second);
    else
      gamma = 1e-2 / std::max(1e-300, std::sqrt(dotv(g, g))); // a first step of 0.01 in u
    for (double& v : q)
      v *= gamma;
    for (std::size_t k = 0; k < mem.size(); ++k) {
      const double b = dotv(mem[k].second, q) / dotv(mem[k].second, mem[k].first);
      for (std::size_t i = 0; i < q.size(); ++i)
        q[i] += (alpha[k] - b) * mem[k].first[i];
    }
    std::vector<double> dir(q.size());
    for (std::size_t i = 0; i < q.size(); ++i)
      dir[i] = -q[i];
    double slope = dotv(dir, g);
    if (!(slope < 0)) { // not a descent direction: restart from the gradient
      mem.clear();
      const double s = 1e-2 / std::max(1e-300, std::sqrt(dotv(g, g)));
      for (std::size_t i = 0; i < dir.size(); ++i)
        dir[i] = -s * g[i];
      slope = dotv(dir, g);
    }
    // Backtracking Armijo.
    double step = 1.0, jn = 0;
    std::vector<double> un(u.size()), gn;
    bool accepted = false;
    for (int ls = 0; ls < 40; ++ls) {
      for (std::size_t i = 0; i < u.size(); ++i)
        un[i] = u[i] + step * dir[i];
      bool finite = true;
      for (double v : un)
        finite = finite && std::isfinite(v);
      if (finite) {
        jn = eval(un, &gn);
        if (std::isfinite(jn) && jn <= j + 1e-4 * step * slope) {
          accepted = true;
          break;
        }
      }
      step *= 0.5;
    }
    if (!accepted) {
      res.stop = "line search failed";
      break;
    }
    std::vector<double> s(u.size()), y(u.size());
    for (std::size_t i = 0; i < u.size(); ++i) {
      s[i] = un[i] - u[i];
      y[i] = gn[i] - g[i];
    }
    if (dotv(s, y) > 1e-16 * std::sqrt(dotv(s, s) * dotv(y, y))) {
      mem.emplace_back(s, y);
      if (mem.size() > 10)
        mem.pop_front();
    }
    const double rel = (j - jn) / std::max(1e-300, std::abs(j));
    u = un;
    g = gn;
    j = jn;
    res.loss.push_back(j);
    res.iterations = it + 1;
    if (opt.progress && !opt.progress(it + 1, j, baseOf(u))) {
      res.stop = "stopped";
      break;
    }
    if (rel < opt.tolerance) {
      res.stop = "converged (relative decrease below tolerance)";
      break;
    }
  }
  res.params = baseOf(u);
  res.slopes = split(u);
  return res;
}

} // namespace caustic
