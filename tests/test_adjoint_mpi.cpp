// Adjoint gradients (pm/adjoint.hpp) against centred finite differences along random directions,
// piece by piece (paint, readout, gradient readout, gravity, kick, drift, one step, LPT) and for
// the whole chain over 5 steps with both losses; the reconstruction of the initial state by the
// reversed leapfrog; the forward model against the production IC + NBody path.
//
// Directions and loss weights are functions of the particle ID or the global mesh point, so they
// do not depend on the rank count or on the particle order (migration reorders particles).
#include "diff_helpers.hpp"
#include "field_helpers.hpp"
#include "helpers.hpp"
#include "pm/force/pgd.hpp"
#include "pm/force/radial_correction.hpp"
#include "pm/grad/adjoint.hpp"
#include "pm/ic/initial_conditions.hpp"
#include "pm/ic/lpt.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <unistd.h>

using namespace caustic;

namespace {

constexpr double kBox = 64.0;
constexpr int kMesh = 16, kLattice = 8;
constexpr double kTol = 1e-4;

using test::allSum;
using test::centred;
using test::fieldDot;
using test::hashUniform;
using test::randomField;

// out <- f + t v
void axpy(Field<double>& out, const Field<double>& f, double t, const Field<double>& v) {
  test::fieldAxpy(out, f, t, v);
}

void expectClose(double fd, double adj, const char* what) {
  const double rel = std::abs(fd - adj) / std::max(std::abs(fd), std::abs(adj));
  if (test::worldRank() == 0)
    std::printf("  %-40s fd % .10e  adjoint % .10e  rel %.2e\n", what, fd, adj, rel);
  EXPECT_LT(rel, kTol) << what << ": finite difference " << fd << ", adjoint " << adj;
  EXPECT_GT(std::abs(adj), 0.0) << what;
}

// ---- particle helpers (keyed on ID) --------------------------------------------------------

// Loss L = sum_i sum_c cx(id, c) (L/2pi) sin(2pi x/L) + cp(id, c) p: smooth and periodic in x.
struct ParticleLoss {
  std::uint64_t sx = 11, sp = 12;
  double operator()(const Particles& s) const {
    auto x = s.x, p = s.p;
    auto id = s.id;
    const std::uint64_t ax = sx, ap = sp;
    double v = 0.0;
    Kokkos::parallel_reduce(
        "test::loss", s.size(),
        KOKKOS_LAMBDA(std::size_t i, double& acc) {
          for (int c = 0; c < 3; ++c)
            acc += hashUniform(3 * id(i) + c, ax) * kBox / (2 * M_PI) *
                       std::sin(2 * M_PI * x(i, c) / kBox) +
                   hashUniform(3 * id(i) + c, ap) * p(i, c);
        },
        v);
    return allSum(v);
  }
  Particles cotangent(const Particles& s) const {
    Particles cot(s.size(), s.capacity());
    auto x = s.x, cx = cot.x, cp = cot.p;
    auto id = s.id;
    const std::uint64_t ax = sx, ap = sp;
    Kokkos::parallel_for(
        "test::cotangent", s.size(), KOKKOS_LAMBDA(std::size_t i) {
          for (int c = 0; c < 3; ++c) {
            cx(i, c) = hashUniform(3 * id(i) + c, ax) * std::cos(2 * M_PI * x(i, c) / kBox);
            cp(i, c) = hashUniform(3 * id(i) + c, ap);
          }
        });
    Kokkos::fence();
    Kokkos::deep_copy(cot.id, s.id);
    return cot;
  }
};

// x += t vx(id) (wrapped), p += t vp(id); vx or vp zero if its seed is 0.
Particles perturbed(const Particles& s, double t, std::uint64_t sx, std::uint64_t sp) {
  Particles out = copyParticles(s);
  auto x = out.x, p = out.p;
  auto id = out.id;
  Kokkos::parallel_for(
      "test::perturb", out.size(), KOKKOS_LAMBDA(std::size_t i) {
        for (int c = 0; c < 3; ++c) {
          if (sx)
            x(i, c) = periodicWrap(x(i, c) + t * hashUniform(3 * id(i) + c, sx), kBox);
          if (sp)
            p(i, c) += t * hashUniform(3 * id(i) + c, sp);
        }
      });
  Kokkos::fence();
  return out;
}

// sum_i adj.x . vx(id) + adj.p . vp(id) over all ranks.
double directional(const Particles& adj, std::uint64_t sx, std::uint64_t sp) {
  auto x = adj.x, p = adj.p;
  auto id = adj.id;
  double v = 0.0;
  Kokkos::parallel_reduce(
      "test::directional", adj.size(),
      KOKKOS_LAMBDA(std::size_t i, double& acc) {
        for (int c = 0; c < 3; ++c) {
          if (sx)
            acc += x(i, c) * hashUniform(3 * id(i) + c, sx);
          if (sp)
            acc += p(i, c) * hashUniform(3 * id(i) + c, sp);
        }
      },
      v);
  return allSum(v);
}

// Random particles (positions away from the box faces, random momenta) on their owning ranks.
Particles randomParticles(std::size_t count, const std::shared_ptr<const SlabDecomposition>& mesh,
                          unsigned seed) {
  Particles all = test::randomParticles(count, kBox - 2.0, seed);
  auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.x);
  auto p = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), all.p);
  for (std::size_t i = 0; i < count; ++i)
    for (int c = 0; c < 3; ++c) {
      x(i, c) += 1.0;
      p(i, c) = 5.0 * hashUniform(3 * i + c, seed + 100);
    }
  Kokkos::deep_copy(all.x, x);
  Kokkos::deep_copy(all.p, p);
  Particles mine = test::share(all, test::worldRank(), test::worldSize());
  mine.reserve(2 * count + 16);
  migrate(mine, *mesh);
  return mine;
}

// Per-particle 3-vectors keyed on the ID (capacity of `parts`).
Kokkos::View<double* [3]> idWeights(const Particles& parts, std::uint64_t seed) {
  Kokkos::View<double* [3]> z("test::weights", parts.capacity());
  auto id = parts.id;
  Kokkos::parallel_for(
      "test::weights", parts.size(), KOKKOS_LAMBDA(std::size_t i) {
        for (int c = 0; c < 3; ++c)
          z(i, c) = hashUniform(3 * id(i) + c, seed);
      });
  Kokkos::fence();
  return z;
}

// sum over the first `count` entries and all ranks of a(i, :) . b(i, :)
double dot3(const Kokkos::View<double* [3]>& a, const Kokkos::View<double* [3]>& b,
            std::size_t count) {
  double v = 0.0;
  Kokkos::parallel_reduce(
      "test::dot3", count,
      KOKKOS_LAMBDA(std::size_t i, double& acc) {
        acc += a(i, 0) * b(i, 0) + a(i, 1) * b(i, 1) + a(i, 2) * b(i, 2);
      },
      v);
  return allSum(v);
}

// ---- configuration ----------------------------------------------------------------------------

struct ModelSetup {
  std::shared_ptr<const SlabDecomposition> lattice, mesh;
  DiffConfig cfg;
  DiffParams params;
  explicit ModelSetup(Window w = Window::CIC, int steps = 5, MPI_Comm comm = MPI_COMM_WORLD)
      : lattice(std::make_shared<SlabDecomposition>(comm, kLattice, kBox)),
        mesh(std::make_shared<SlabDecomposition>(comm, kMesh, kBox)) {
    cfg.lattice = lattice;
    cfg.mesh = mesh;
    cfg.a_start = 0.1;
    cfg.a_end = 1.0;
    cfg.steps = steps;
    cfg.lpt_order = 2;
    cfg.window = w;
    cfg.lattice_offset = 0.5 * mesh->cell();
    cfg.potential_correction = hatFilterCorrection({0.1, 0.3, 0.6});
    params.cosmology = test::planck();
    params.cosmology.Omega_m = 0.3089;
    params.cosmology.sigma8 = 0.8159;
    params.correction = {0.1, -0.2, 0.15};
  }
  DiffParams with(double dOm, double ds8, int fi = -1, double dth = 0.0) const {
    DiffParams p = params;
    p.cosmology.Omega_m += dOm;
    p.cosmology.sigma8 += ds8;
    if (fi >= 0)
      p.correction[fi] += dth;
    return p;
  }
  Field<double> noise(std::uint64_t seed) const {
    Field<double> w(lattice, "test::noise");
    Kokkos::deep_copy(w.real(), test::runNoise(lattice, seed)->real());
    return w;
  }
};

void header(const char* name) {
  if (test::worldRank() == 0)
    std::printf("%s (%d ranks)\n", name, test::worldSize());
}

} // namespace

// ---- pieces -----------------------------------------------------------------------------------

TEST(Adjoint, PaintAgainstFiniteDifferences) {
  header("paint");
  ModelSetup s;
  for (Window w : {Window::CIC, Window::TSC}) {
    Painter<double> painter(s.mesh, w);
    Particles parts = randomParticles(600, s.mesh, 3);
    Field<double> c(s.mesh, "c"), rho(s.mesh, "rho");
    randomField(c, 5);
    const double mass = 1.7;
    auto L = [&](double t) {
      Particles q = perturbed(parts, t, 21, 0);
      painter.paint(rho, q.x, q.size(), mass);
      return fieldDot(c, rho);
    };
    Particles adj(parts.size(), parts.capacity());
    Kokkos::deep_copy(adj.id, parts.id);
    painter.readoutWindowGradient(c, parts.x, parts.size(), adj.x, mass);
    expectClose(centred(L, 1e-6), directional(adj, 21, 0),
                w == Window::CIC ? "paint d/dx (CIC)" : "paint d/dx (TSC)");
  }
}

TEST(Adjoint, ReadoutAgainstFiniteDifferences) {
  header("readout");
  ModelSetup s;
  Painter<double> painter(s.mesh, Window::TSC);
  Particles parts = randomParticles(600, s.mesh, 4);
  Field<double> f(s.mesh, "f"), v(s.mesh, "v"), g(s.mesh, "g");
  randomField(f, 6);
  randomField(v, 7);
  Kokkos::View<double* [3]> out("out", parts.capacity());
  const auto z = idWeights(parts, 8);
  const int comp = 1;
  auto value = [&](const Particles& q, const Field<double>& field) {
    painter.readout(field, q.x, q.size(), out, comp, 2.0, false);
    double s2 = 0.0;
    Kokkos::parallel_reduce(
        "L", q.size(),
        KOKKOS_LAMBDA(std::size_t i, double& acc) { acc += z(i, comp) * out(i, comp); }, s2);
    return allSum(s2);
  };
  // d/d field: paintWeighted of z
  {
    Field<double> ft(s.mesh, "ft");
    auto L = [&](double t) {
      axpy(ft, f, t, v);
      return value(parts, ft);
    };
    painter.paintWeighted(g, parts.x, parts.size(), z, comp, 2.0);
    expectClose(centred(L, 1e-3), fieldDot(g, v), "readout d/dfield");
  }
  // d/dx
  {
    auto L = [&](double t) { return value(perturbed(parts, t, 22, 0), f); };
    Particles adj(parts.size(), parts.capacity());
    Kokkos::deep_copy(adj.id, parts.id);
    painter.readoutWindowGradient(f, parts.x, parts.size(), adj.x, 2.0, z, comp);
    expectClose(centred(L, 1e-6), directional(adj, 22, 0), "readout d/dx");
  }
}

TEST(Adjoint, GradientReadoutAgainstFiniteDifferences) {
  header("gradient readout");
  ModelSetup s;
  for (Window w : {Window::CIC, Window::TSC}) {
    Painter<double> painter(s.mesh, w);
    Particles parts = randomParticles(600, s.mesh, 9);
    Field<double> phi(s.mesh, "phi"), v(s.mesh, "v"), g(s.mesh, "g");
    randomField(phi, 10);
    randomField(v, 11);
    Kokkos::View<double* [3]> out("out", parts.capacity());
    const auto z = idWeights(parts, 12);
    auto value = [&](const Particles& q, const Field<double>& field) {
      painter.readoutGradient(field, q.x, q.size(), out, 1.0, false);
      return dot3(z, out, q.size());
    };
    Field<double> ft(s.mesh, "ft");
    auto Lf = [&](double t) {
      axpy(ft, phi, t, v);
      return value(parts, ft);
    };
    painter.readoutGradientAdjoint(g, parts.x, parts.size(), z, 1.0);
    expectClose(centred(Lf, 1e-3), fieldDot(g, v), "gradient readout d/dphi");
    auto Lx = [&](double t) { return value(perturbed(parts, t, 23, 0), phi); };
    Particles adj(parts.size(), parts.capacity());
    Kokkos::deep_copy(adj.id, parts.id);
    painter.readoutGradientJacobianT(phi, parts.x, parts.size(), z, adj.x, 1.0);
    expectClose(centred(Lx, 1e-6), directional(adj, 23, 0), "gradient readout d/dx");
    // The fused pass's force equals readoutGradient's bit for bit; its x-bar is
    // readoutGradientJacobianT's, checked above.
    Kokkos::View<double* [3]> fused_f("fused_f", parts.capacity());
    Particles fused(parts.size(), parts.capacity());
    painter.readoutGradient(phi, parts.x, parts.size(), out, 1.0, false);
    painter.readoutGradientWithJacobianT(phi, parts.x, parts.size(), fused_f, z, fused.x, 0.75);
    int differ_f = 0;
    for (std::size_t i = 0; i < parts.size(); ++i)
      for (int c = 0; c < 3; ++c)
        differ_f += fused_f(i, c) != out(i, c);
    EXPECT_EQ(differ_f, 0) << "fused gradient readout against readoutGradient";
    // With a window field, x-bar bit for bit the pass without it followed by
    // readoutWindowGradient of that field.
    Particles twice(parts.size(), parts.capacity()), once(parts.size(), parts.capacity());
    painter.readoutGradientWithJacobianT(phi, parts.x, parts.size(), fused_f, z, twice.x, 0.75);
    painter.readoutWindowGradient(v, parts.x, parts.size(), twice.x, 1.5);
    painter.readoutGradientWithJacobianT(phi, parts.x, parts.size(), fused_f, z, once.x, 0.75, &v,
                                         1.5);
    int differ = 0;
    for (std::size_t i = 0; i < parts.size(); ++i)
      for (int c = 0; c < 3; ++c)
        differ += once.x(i, c) != twice.x(i, c);
    EXPECT_EQ(differ, 0) << "gradient readout, Jacobian and window gradient in one pass";
  }
}

TEST(Adjoint, GravityAgainstFiniteDifferences) {
  header("gravity");
  for (Window w : {Window::CIC, Window::TSC}) {
    ModelSetup s(w);
    Particles parts = randomParticles(800, s.mesh, 13);
    const double total = 800;
    Kokkos::View<double* [3]> f("f", parts.capacity());
    const auto z = idWeights(parts, 14);
    auto value = [&](const Particles& q, const DiffParams& p) {
      Trajectory traj(s.cfg, p, total);
      traj.force(q, f, 0.5);
      return dot3(z, f, q.size());
    };
    Trajectory traj(s.cfg, s.params, total);
    Particles adj(parts.size(), parts.capacity());
    Kokkos::deep_copy(adj.id, parts.id);
    ParameterGradient g = ParameterGradient::zeros(s.params);
    traj.forceVJP(parts, z, 1.0, adj.x, f, g, 0.5);
    g.allreduce(s.mesh->comm());
    const char* tag = w == Window::CIC ? "(CIC)" : "(TSC)";
    expectClose(
        centred([&](double t) { return value(perturbed(parts, t, 24, 0), s.params); }, 1e-6),
        directional(adj, 24, 0), (std::string("gravity d/dx ") + tag).c_str());
    expectClose(centred([&](double t) { return value(parts, s.with(t, 0)); }, 1e-4),
                g[CosmoParam::Omega_m], (std::string("gravity d/dOmega_m ") + tag).c_str());
    for (int i = 0; i < 3; ++i)
      expectClose(centred([&](double t) { return value(parts, s.with(0, 0, i, t)); }, 1e-4),
                  g.correction[i],
                  (std::string("gravity d/dtheta_") + std::to_string(i) + " " + tag).c_str());
  }
}

namespace {
// Checks a map of the particles (kick, drift, step) through its reverse: the loss of the mapped
// state along random directions of x, p and Omega_m.
void checkMap(
    const ModelSetup& s, const char* name, const Particles& start, double total,
    const std::function<void(Trajectory&, Particles&)>& fwd,
    const std::function<void(Trajectory&, Particles&, Particles&, ParameterGradient&)>& rev,
    bool params_too = true) {
  const ParticleLoss loss;
  auto value = [&](const Particles& q0, const DiffParams& p) {
    Trajectory traj(s.cfg, p, total);
    Particles q = copyParticles(q0);
    fwd(traj, q);
    return loss(q);
  };
  Trajectory traj(s.cfg, s.params, total);
  Particles q = copyParticles(start);
  fwd(traj, q);
  Particles adj = loss.cotangent(q);
  ParameterGradient g = ParameterGradient::zeros(s.params);
  rev(traj, q, adj, g);
  g.allreduce(s.mesh->comm());
  // The reverse restores the start (up to rounding): compare by ID.
  {
    double dx = 0.0;
    auto a = q.x, b = start.x;
    auto ia = q.id, ib = start.id;
    // Both sets are small: match on the host.
    auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
    auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
    auto hia = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ia);
    auto hib = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), ib);
    std::map<std::uint64_t, std::size_t> where;
    for (std::size_t i = 0; i < start.size(); ++i)
      where[hib(i)] = i;
    for (std::size_t i = 0; i < q.size(); ++i) {
      auto it = where.find(hia(i));
      ASSERT_NE(it, where.end());
      for (int c = 0; c < 3; ++c) {
        double d = ha(i, c) - hb(it->second, c);
        d -= kBox * std::floor(d / kBox + 0.5);
        dx = std::max(dx, std::abs(d));
      }
    }
    double all = dx;
    MPI_Allreduce(&dx, &all, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    EXPECT_LT(all, 1e-10) << name << ": reversed positions differ from the start";
  }
  const std::string n(name);
  expectClose(centred([&](double t) { return value(perturbed(start, t, 31, 0), s.params); }, 1e-6),
              directional(adj, 31, 0), (n + " d/dx").c_str());
  expectClose(centred([&](double t) { return value(perturbed(start, t, 0, 32), s.params); }, 1e-6),
              directional(adj, 0, 32), (n + " d/dp").c_str());
  if (!params_too)
    return;
  // Parameter steps small enough that no particle crosses a kink of the CIC window.
  expectClose(centred([&](double t) { return value(start, s.with(t, 0)); }, 1e-6),
              g[CosmoParam::Omega_m], (n + " d/dOmega_m").c_str());
  expectClose(centred([&](double t) { return value(start, s.with(0, 0, 1, t)); }, 1e-6),
              g.correction[1], (n + " d/dtheta_1").c_str());
}
} // namespace

TEST(Adjoint, KickAgainstFiniteDifferences) {
  header("kick");
  ModelSetup s;
  Particles parts = randomParticles(800, s.mesh, 15);
  checkMap(
      s, "kick", parts, 800, [](Trajectory& t, Particles& q) { t.apply(q, t.kickAt(2)); },
      [](Trajectory& t, Particles& q, Particles& adj, ParameterGradient& g) {
        t.applyReverse(q, adj, t.kickAt(2), g);
      });
}

TEST(Adjoint, DriftAgainstFiniteDifferences) {
  header("drift");
  ModelSetup s;
  Particles parts = randomParticles(800, s.mesh, 16);
  // Drift has no filter dependence: only x, p and Omega_m.
  const ParticleLoss loss;
  checkMap(
      s, "drift", parts, 800, [](Trajectory& t, Particles& q) { t.apply(q, t.driftOf(3)); },
      [](Trajectory& t, Particles& q, Particles& adj, ParameterGradient& g) {
        adj.reserve(q.capacity());
        t.applyReverse(q, adj, t.driftOf(3), g);
      },
      false);
  // Omega_m alone (the filter derivative is zero).
  auto value = [&](const DiffParams& p) {
    Trajectory traj(s.cfg, p, 800);
    Particles q = copyParticles(parts);
    traj.apply(q, traj.driftOf(3));
    return loss(q);
  };
  Trajectory traj(s.cfg, s.params, 800);
  Particles q = copyParticles(parts);
  traj.apply(q, traj.driftOf(3));
  Particles adj = loss.cotangent(q);
  adj.reserve(q.capacity());
  ParameterGradient g = ParameterGradient::zeros(s.params);
  traj.applyReverse(q, adj, traj.driftOf(3), g);
  g.allreduce(s.mesh->comm());
  expectClose(centred([&](double t) { return value(s.with(t, 0)); }, 1e-4), g[CosmoParam::Omega_m],
              "drift d/dOmega_m");
}

TEST(Adjoint, OneStepAgainstFiniteDifferences) {
  header("one full step");
  ModelSetup s(Window::CIC, 1);
  s.cfg.a_start = 0.5;
  s.cfg.a_end = 0.7;
  Particles parts = randomParticles(800, s.mesh, 17);
  checkMap(
      s, "step", parts, 800, [](Trajectory& t, Particles& q) { t.forward(q); },
      [](Trajectory& t, Particles& q, Particles& adj, ParameterGradient& g) {
        t.reverse(q, adj, g);
      });
}

TEST(Adjoint, LptAgainstFiniteDifferences) {
  header("LPT");
  for (int order : {1, 2}) {
    ModelSetup s;
    s.cfg.lpt_order = order;
    const Field<double> w = s.noise(7);
    Field<double> v(s.lattice, "v"), wt(s.lattice, "wt"), wbar(s.lattice, "wbar");
    randomField(v, 41);
    const ParticleLoss loss;
    auto value = [&](const Field<double>& omega, const DiffParams& p) {
      return loss(LptModel(s.cfg, p).forward(omega));
    };
    const LptModel lpt(s.cfg, s.params);
    const Particles parts = lpt.forward(w);
    const Particles adj = loss.cotangent(parts);
    ParameterGradient g = ParameterGradient::zeros(s.params);
    lpt.adjoint(w, adj, wbar, g);
    g.allreduce(s.lattice->comm());
    const std::string n = "LPT order " + std::to_string(order);
    expectClose(centred(
                    [&](double t) {
                      axpy(wt, w, t, v);
                      return value(wt, s.params);
                    },
                    1e-5),
                fieldDot(wbar, v), (n + " d/dnoise").c_str());
    expectClose(centred([&](double t) { return value(w, s.with(t, 0)); }, 1e-4),
                g[CosmoParam::Omega_m], (n + " d/dOmega_m").c_str());
    expectClose(centred([&](double t) { return value(w, s.with(0, t)); }, 1e-4),
                g[CosmoParam::sigma8], (n + " d/dsigma8").c_str());
  }
}

// ---- the whole chain ----------------------------------------------------------------------------

TEST(Adjoint, ChainOfFiveStepsAgainstFiniteDifferences) {
  header("whole chain, 5 steps");
  ModelSetup s;
  const Field<double> w = s.noise(7);
  Field<double> v(s.lattice, "v"), wt(s.lattice, "wt");
  randomField(v, 51);
  // Targets: the final state of another realisation; observed field: its density, noise 0.5,
  // the upper half of the box in x masked out.
  DiffPM model(s.cfg);
  const Field<double> w2 = s.noise(8);
  const Particles target = copyParticles(model.forward(w2, s.params));
  Field<double> observed(s.mesh, "obs"), sigma(s.mesh, "sigma"), mask(s.mesh, "mask");
  randomField(sigma, 52, 0.5, 0.1);
  {
    const auto& d = *s.mesh;
    auto m = mask.real();
    const int n = d.n(), x0 = d.xStart();
    if (d.localNx() > 0)
      Kokkos::parallel_for(
          "mask", Kokkos::MDRangePolicy<Kokkos::Rank<3>>({0, 0, 0}, {d.localNx(), n, n}),
          KOKKOS_LAMBDA(int lx, int y, int z) {
            m(Field<double>::realIndex(lx, y, z, n)) = x0 + lx < n / 2 ? 1.0 : 0.0;
          });
    Kokkos::fence();
  }
  const FieldChi2Loss chi2(s.mesh, s.lattice, s.cfg.window, observed, sigma, &mask);
  chi2.density(target, observed);

  for (int which = 0; which < 2; ++which) {
    const char* lname = which == 0 ? "particles" : "chi2";
    auto lossOf = [&](const Particles& st, Particles& cot) {
      return which == 0 ? particleLoss(st, target, kBox, 0.3, cot, s.lattice->comm())
                        : chi2(st, cot);
    };
    auto value = [&](const Field<double>& omega, const DiffParams& p) {
      DiffPM m(s.cfg);
      Particles cot;
      return lossOf(m.forward(omega, p), cot);
    };
    Particles cot;
    const double L0 = lossOf(model.forward(w, s.params), cot);
    const DiffGradient g = model.gradient(cot);
    const auto& r = model.reconstruction();
    if (test::worldRank() == 0)
      std::printf("  loss %s = %.6e; reconstruction: max |dx| %.3e Mpc/h = %.3e of the rms "
                  "displacement %.3f Mpc/h; max |dp| %.3e (rms p %.3f)\n",
                  lname, L0, r.max_dx, r.max_dx / r.rms_displacement, r.rms_displacement, r.max_dp,
                  r.rms_momentum);
    EXPECT_LT(r.max_dx, 1e-8 * r.rms_displacement);
    EXPECT_LT(r.max_dp, 1e-8 * r.rms_momentum);
    const std::string n = std::string("chain (") + lname + ")";
    expectClose(centred(
                    [&](double t) {
                      axpy(wt, w, t, v);
                      return value(wt, s.params);
                    },
                    1e-5),
                fieldDot(*g.noise, v), (n + " d/dnoise").c_str());
    expectClose(centred([&](double t) { return value(w, s.with(t, 0)); }, 1e-6),
                g.params[CosmoParam::Omega_m], (n + " d/dOmega_m").c_str());
    expectClose(centred([&](double t) { return value(w, s.with(0, t)); }, 1e-6),
                g.params[CosmoParam::sigma8], (n + " d/dsigma8").c_str());
    for (int i = 0; i < 3; ++i)
      expectClose(centred([&](double t) { return value(w, s.with(0, 0, i, t)); }, 1e-6),
                  g.params.correction[i], (n + " d/dtheta_" + std::to_string(i)).c_str());
  }
}

// The differentiable forward model is the production path: the same particles as
// makeInitialConditions + NBody from the same white noise (filter off).
TEST(Adjoint, ForwardEqualsProductionRun) {
  ModelSetup s;
  s.cfg.potential_correction = nullptr;
  s.params.correction.clear();
  DiffPM model(s.cfg);
  const Particles& st = model.forward(s.noise(7), s.params);

  const Cosmology cosmo(s.params.cosmology);
  const LinearPower power = LinearPower::eisensteinHu(cosmo.params());
  ICOptions ic;
  ic.noise.seed = 7;
  ic.lpt_order = 2;
  ic.a_start = s.cfg.a_start;
  ic.lattice_offset = s.cfg.lattice_offset;
  Particles parts = makeInitialConditions<double>(s.lattice, cosmo, power, ic);
  NBody<double> nbody(s.mesh, cosmo, GravityOptions{}, double(kLattice) * kLattice * kLattice);
  nbody.start(parts, s.cfg.a_start);
  nbody.run(parts, timeSteps(s.cfg.a_start, s.cfg.a_end, s.cfg.steps, s.cfg.spacing),
            s.cfg.spacing);
  Migrator(s.lattice).toLattice(parts);
  ASSERT_EQ(parts.size(), st.size());
  auto a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), st.x);
  auto b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  double worst = 0.0;
  for (std::size_t i = 0; i < st.size(); ++i)
    for (int c = 0; c < 3; ++c) {
      double d = a(i, c) - b(i, c);
      d -= kBox * std::floor(d / kBox + 0.5);
      worst = std::max(worst, std::abs(d));
    }
  EXPECT_LT(worst, 1e-9);
}

// Lattice order after migration: every particle at the index of its ID, on the lattice owner.
TEST(Adjoint, ToLatticeOrdersByIdAndCarriesTheCompanion) {
  ModelSetup s;
  // All lattice sites, dealt round-robin over the ranks, positions random, companion = id.
  const std::size_t total = std::size_t(kLattice) * kLattice * kLattice;
  Particles all(total);
  auto id = Kokkos::create_mirror_view(all.id);
  for (std::size_t i = 0; i < total; ++i)
    id(i) = (i * 37) % total;
  Kokkos::deep_copy(all.id, id);
  Particles mine = test::share(all, test::worldRank(), test::worldSize());
  Particles comp(mine.size(), mine.capacity());
  {
    auto cx = comp.x;
    auto mid = mine.id;
    Kokkos::parallel_for(
        "c", mine.size(), KOKKOS_LAMBDA(std::size_t i) { cx(i, 0) = double(mid(i)); });
    Kokkos::fence();
  }
  Migrator(s.lattice).toLattice(mine, &comp);
  const auto& d = *s.lattice;
  ASSERT_EQ(mine.size(), std::size_t(d.localNx()) * kLattice * kLattice);
  auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), mine.id);
  auto hc = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), comp.x);
  const std::uint64_t first = std::uint64_t(d.xStart()) * kLattice * kLattice;
  for (std::size_t i = 0; i < mine.size(); ++i) {
    ASSERT_EQ(hid(i), first + i);
    ASSERT_EQ(hc(i, 0), double(first + i));
  }
  // A set that does not cover the lattice is refused on every rank.
  Particles half(mine.size() / 2);
  EXPECT_THROW(Migrator(s.lattice).toLattice(half), std::runtime_error);
}

// ---- the named parameter vector and the correction interfaces -----------------------------------

namespace {
// A toy particle correction with an analytic Jacobian: C_c(x) = t0 sin(2 pi x_c / L) +
// t1 cos(2 pi x_c / L) on each axis c.
class WaveCorrection : public ParticleCorrection {
public:
  explicit WaveCorrection(std::vector<double> theta) : _t(std::move(theta)) {}
  std::string name() const override { return "wave"; }
  std::vector<double> parameters() const override { return _t; }
  void apply(const Vectors& x, std::size_t n, const Vectors& acc, double,
             double scale) const override {
    const double t0 = _t[0], t1 = _t[1], k = 2 * M_PI / kBox;
    Kokkos::parallel_for(
        "test::wave", n, KOKKOS_LAMBDA(std::size_t i) {
          for (int c = 0; c < 3; ++c)
            acc(i, c) += scale * (t0 * std::sin(k * x(i, c)) + t1 * std::cos(k * x(i, c)));
        });
    Kokkos::fence();
  }
  void vjp(const Vectors& x, std::size_t n, const Vectors& z, double scale, const Vectors& xbar,
           double, std::vector<double>& grad) const override {
    const double t0 = _t[0], t1 = _t[1], k = 2 * M_PI / kBox;
    double g0 = 0.0, g1 = 0.0;
    Kokkos::parallel_reduce(
        "test::waveVJP", n,
        KOKKOS_LAMBDA(std::size_t i, double& a0, double& a1) {
          for (int c = 0; c < 3; ++c) {
            const double s = std::sin(k * x(i, c)), co = std::cos(k * x(i, c));
            xbar(i, c) += scale * z(i, c) * k * (t0 * co - t1 * s);
            a0 += scale * z(i, c) * s;
            a1 += scale * z(i, c) * co;
          }
        },
        g0, g1);
    grad[0] += g0;
    grad[1] += g1;
  }

private:
  std::vector<double> _t;
};

DiffParams shiftedParams(const DiffParams& p, CosmoParam which, double t) {
  DiffParams q = p;
  cosmoParam(q.cosmology, which) += t;
  return q;
}

// A table of the Eisenstein-Hu spectrum of `c`, written by rank 0 and read by every rank.
// The file name carries rank 0's process ID: test runs at several rank counts at once (ctest -j)
// must not share it.
LinearPower tableOf(const CosmologyParams& c, const std::string& name) {
  long pid = static_cast<long>(getpid());
  MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
  const std::string path = ::testing::TempDir() + name + "." + std::to_string(pid);
  if (test::worldRank() == 0) {
    const LinearPower eh = LinearPower::eisensteinHu(c);
    std::FILE* f = std::fopen(path.c_str(), "w");
    for (int i = 0; i <= 400; ++i) {
      const double k = std::pow(10.0, -4.0 + 6.0 * i / 400);
      std::fprintf(f, "%.17g %.17g\n", k, eh(k));
    }
    std::fclose(f);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  LinearPower table = LinearPower::fromTable(path, c, true);
  MPI_Barrier(MPI_COMM_WORLD);
  if (test::worldRank() == 0)
    std::remove(path.c_str());
  return table;
}
} // namespace

TEST(Adjoint, LptNamedParametersAgainstFiniteDifferences) {
  header("LPT: n_s, h, Omega_b; Eisenstein-Hu and tabulated power");
  for (bool table : {false, true}) {
    ModelSetup s;
    if (table)
      s.cfg.power = PowerModel::table(tableOf(s.params.cosmology, "caustic_test_pk.txt"),
                                      s.params.cosmology, true);
    const Field<double> w = s.noise(7);
    Field<double> wbar(s.lattice, "wbar");
    const ParticleLoss loss;
    auto value = [&](const DiffParams& p) { return loss(LptModel(s.cfg, p).forward(w)); };
    const LptModel lpt(s.cfg, s.params);
    const Particles adj = loss.cotangent(lpt.forward(w));
    ParameterGradient g = ParameterGradient::zeros(s.params);
    lpt.adjoint(w, adj, wbar, g);
    g.allreduce(s.lattice->comm());
    const std::string tag = table ? " (table)" : " (Eisenstein-Hu)";
    for (CosmoParam p : {CosmoParam::n_s, CosmoParam::sigma8, CosmoParam::h, CosmoParam::Omega_b}) {
      // Steps of 1e-4 of each value: the finite difference converges quadratically to the
      // adjoint (for Omega_b = 0.05 an absolute 1e-4 leaves a curvature error of 4e-5).
      const double eps = 1e-4 * std::abs(cosmoParam(s.params.cosmology, p));
      const double fd =
          centred([&](double t) { return value(shiftedParams(s.params, p, t)); }, eps);
      const std::string what = std::string("LPT d/d") + cosmoParamName(p) + tag;
      if (table && (p == CosmoParam::h || p == CosmoParam::Omega_b)) {
        // A table's transfer function is fixed: no dependence, and the gradient says so.
        EXPECT_EQ(fd, 0.0) << what;
        EXPECT_EQ(g[p], 0.0) << what;
      } else {
        expectClose(fd, g[p], what.c_str());
      }
    }
  }
}

TEST(Adjoint, ChainWithTabulatedPowerAndBothCorrectionKinds) {
  header("whole chain, 3 steps: n_s with a table, potential and particle corrections");
  ModelSetup s(Window::CIC, 3);
  s.cfg.power = PowerModel::table(tableOf(s.params.cosmology, "caustic_test_pk2.txt"),
                                  s.params.cosmology, true);
  s.cfg.particle_correction = [](const std::vector<double>& t) {
    return std::make_shared<const WaveCorrection>(t);
  };
  s.params.particle_correction = {0.02, -0.01};
  const Field<double> w = s.noise(7);
  const ParticleLoss loss;
  auto value = [&](const DiffParams& p) {
    DiffPM m(s.cfg);
    return loss(m.forward(w, p));
  };
  DiffPM model(s.cfg);
  const Particles cot = loss.cotangent(model.forward(w, s.params));
  const DiffGradient g = model.gradient(cot);
  for (CosmoParam p : {CosmoParam::Omega_m, CosmoParam::sigma8, CosmoParam::n_s})
    expectClose(centred([&](double t) { return value(shiftedParams(s.params, p, t)); }, 1e-6),
                g.params[p], (std::string("chain d/d") + cosmoParamName(p)).c_str());
  EXPECT_EQ(g.params[CosmoParam::h], 0.0);
  for (int i = 0; i < 2; ++i) {
    auto shiftedCorrection = [&](double t) {
      DiffParams q = s.params;
      q.particle_correction[i] += t;
      return value(q);
    };
    expectClose(centred(shiftedCorrection, 1e-6), g.params.particle_correction[i],
                ("chain d/dparticle_theta_" + std::to_string(i)).c_str());
  }
  expectClose(centred([&](double t) { return value(s.with(0, 0, 1, t)); }, 1e-6),
              g.params.correction[1], "chain d/dtheta_1 (potential correction)");
}

// DiffPM keeps its setup while the parameters stay the same and builds it again when any of them
// changes: a sequence of points on one model, each differing from the one before in one
// parameter (a cosmological one, one of either correction, w0), then back to the first, gives
// bit for bit what a new model gives at each point.
// A failed setup leaves no forward run for a gradient to use.
namespace {
// max |a - b| over the first `n` rows of two (host-accessible after a copy) views, over ranks.
template <class V> double largestDifference(const V& a, const V& b, std::size_t n) {
  auto ha = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), a);
  auto hb = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), b);
  const std::size_t per_row = a.extent(0) ? a.span() / a.extent(0) : 0;
  double worst = 0.0;
  for (std::size_t i = 0; i < n * per_row; ++i)
    worst = std::max(worst, std::abs(ha.data()[i] - hb.data()[i]));
  mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD), "test");
  return worst;
}
} // namespace

TEST(Adjoint, KeptSetupEqualsANewModelAtEveryPoint) {
  ModelSetup s(Window::CIC, 3);
  s.cfg.particle_correction = [](const std::vector<double>& t) {
    return std::make_shared<const WaveCorrection>(t);
  };
  s.params.particle_correction = {0.02, -0.01};
  std::vector<DiffParams> points(7, s.params);
  points[1].cosmology.Omega_m += 0.02;
  points[2] = points[1];
  points[2].correction[1] += 0.05;
  points[3] = points[2];
  points[3].particle_correction[0] += 0.01;
  points[4] = points[3];
  points[4].cosmology.w0 = -0.9;
  points[5] = points[4];
  points[5].cosmology.n_s += 0.01; // points[6]: back to the first
  const Field<double> w1 = s.noise(7), w2 = s.noise(8);
  const ParticleLoss loss;
  DiffPM kept(s.cfg);
  for (std::size_t i = 0; i < points.size(); ++i) {
    for (const Field<double>* w : {&w1, &w2}) { // a new noise at the same point
      // A forward run with the other noise first (a rejected line-search point): the gradient
      // belongs to the last forward.
      kept.forward(w == &w1 ? w2 : w1, points[i]);
      const Particles cot_kept = loss.cotangent(kept.forward(*w, points[i]));
      const DiffGradient gk = kept.gradient(cot_kept);
      DiffPM fresh(s.cfg);
      const Particles cot_fresh = loss.cotangent(fresh.forward(*w, points[i]));
      const DiffGradient gf = fresh.gradient(cot_fresh);
      const std::string at = "point " + std::to_string(i) + (w == &w1 ? ", noise 7" : ", noise 8");
      const std::size_t np = kept.state().size();
      ASSERT_EQ(np, fresh.state().size()) << at;
      EXPECT_EQ(largestDifference(kept.state().x, fresh.state().x, np), 0.0) << at;
      EXPECT_EQ(largestDifference(kept.state().p, fresh.state().p, np), 0.0) << at;
      EXPECT_EQ(largestDifference(gk.noise->real(), gf.noise->real(), gf.noise->real().extent(0)),
                0.0)
          << at;
      const auto nk = gk.params.named(), nf = gf.params.named();
      ASSERT_EQ(nk.size(), nf.size());
      for (std::size_t j = 0; j < nk.size(); ++j)
        EXPECT_EQ(nk[j].second, nf[j].second) << at << ": " << nk[j].first;
    }
  }
  {
    DiffPM broken(s.cfg);
    Particles cot = loss.cotangent(broken.forward(w1, points[0]));
    DiffParams wrong = points[0];
    wrong.correction.push_back(0.0); // one correction parameter too many
    EXPECT_THROW(broken.forward(w1, wrong), std::invalid_argument);
    EXPECT_THROW(broken.gradient(cot), std::logic_error);
  }
  // Each point differs enough from the one before to tell a stale setup.
  for (std::size_t i = 1; i < points.size(); ++i) {
    DiffPM a(s.cfg), b(s.cfg);
    const Particles& pa = a.forward(w1, points[i - 1]);
    EXPECT_GT(largestDifference(pa.x, b.forward(w1, points[i]).x, pa.size()), 1e-7)
        << "points " << i - 1 << " and " << i;
  }
}

// DiffConfig::cosmology_gradient: the chosen parameters' gradients are the full model's bit for
// bit, the others 0, the noise gradient unchanged.
TEST(Adjoint, ChosenCosmologyGradientsAreTheFullOnes) {
  ModelSetup s(Window::CIC, 3);
  const Field<double> w = s.noise(7);
  const ParticleLoss loss;
  auto gradientOf = [&](const DiffConfig& cfg) {
    DiffPM m(cfg);
    return m.gradient(loss.cotangent(m.forward(w, s.params)));
  };
  const DiffGradient full = gradientOf(s.cfg);
  DiffConfig some = s.cfg;
  some.cosmology_gradient = {false, true, false, false, false}; // sigma8 only
  const DiffGradient part = gradientOf(some);
  some.cosmology_gradient = {true, false, false, true, false}; // Omega_m and h
  const DiffGradient other = gradientOf(some);
  for (CosmoParam p : kAllCosmoParams) {
    EXPECT_NE(full.params[p], 0.0) << cosmoParamName(p);
    EXPECT_EQ(part.params[p], p == CosmoParam::sigma8 ? full.params[p] : 0.0) << cosmoParamName(p);
    EXPECT_EQ(other.params[p],
              p == CosmoParam::Omega_m || p == CosmoParam::h ? full.params[p] : 0.0)
        << cosmoParamName(p);
  }
  EXPECT_EQ(part.params.correction, full.params.correction);
  EXPECT_EQ(largestDifference(part.noise->real(), full.noise->real(), full.noise->real().extent(0)),
            0.0);
}

// The distributed gradient against a serial reference: every rank also runs the whole model on
// MPI_COMM_SELF and compares its piece of the noise gradient and the parameter gradients.
TEST(Adjoint, DistributedGradientEqualsSerialReference) {
  header("gradient: distributed against MPI_COMM_SELF");
  auto gradientOf = [](ModelSetup& s) {
    const Field<double> w = s.noise(7);
    const ParticleLoss loss;
    DiffPM model(s.cfg);
    const Particles cot = loss.cotangent(model.forward(w, s.params));
    return model.gradient(cot);
  };
  ModelSetup dist(Window::TSC, 3), self(Window::TSC, 3, MPI_COMM_SELF);
  const DiffGradient gd = gradientOf(dist), gs = gradientOf(self);
  for (const auto& [name, value] : gd.params.named()) {
    double ref = 0.0;
    for (const auto& [n2, v2] : gs.params.named())
      if (n2 == name)
        ref = v2;
    EXPECT_NEAR(value, ref, 1e-9 * (std::abs(ref) + 1e-3)) << name;
  }
  // This rank's planes of the noise gradient against the same planes of the serial one.
  const auto box = dist.lattice->realBox();
  auto a = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gd.noise->real());
  auto b = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), gs.noise->real());
  double worst = 0.0, scale = 0.0;
  for (int x = box.lo[0]; x < box.hi[0]; ++x)
    for (int y = 0; y < kLattice; ++y)
      for (int z = 0; z < kLattice; ++z) {
        const double va = a(Field<double>::realIndex(x - box.lo[0], y, z, kLattice));
        const double vb = b(Field<double>::realIndex(x, y, z, kLattice));
        worst = std::max(worst, std::abs(va - vb));
        scale = std::max(scale, std::abs(vb));
      }
  EXPECT_GT(scale, 0.0);
  EXPECT_LT(worst, 1e-9 * scale);
}

// ---- force corrections of the hybrid PM (pm/force/radial_correction.hpp, pm/force/pgd.hpp) -----

namespace {
PotentialCorrectionFactory hatKFactory() {
  return [](const std::vector<double>& t) {
    return std::make_shared<const HatKCorrection<double>>(std::vector<double>{0.2, 0.5, 0.8},
                                                          std::vector<double>{0.3, 0.7}, t);
  };
}
} // namespace

TEST(Adjoint, HatKCorrectionPinnedAndTabulated) {
  // K(0) = 1 whatever theta; between nodes the table interpolates bilinearly.
  const HatKCorrection<double> c({0.2, 0.5, 0.8}, {0.3, 0.7}, {1, 2, 3, 4, 5, 6});
  std::vector<double> K(3 * 8 * 8 + 1);
  c.table(0.5, 16, 64.0, K);
  EXPECT_DOUBLE_EQ(K[0], 1.0);
  // m2 = 16: x = 4/8 = 0.5 exactly on node 1: K = 1 + (theta_10 + theta_11) / 2 at a = 0.5.
  EXPECT_NEAR(K[16], 1.0 + 0.5 * (3 + 4), 1e-12);
  // m2 = 1: x = 1/8 on the ramp from 0 to node 0 (0.2): weight 0.625.
  EXPECT_NEAR(K[1], 1.0 + 0.625 * 0.5 * (1 + 2), 1e-12);
  // Beyond the last node the last hat is 1; a above the last a node is clamped.
  c.table(0.9, 16, 64.0, K);
  EXPECT_NEAR(K[3 * 64], 1.0 + 6, 1e-12);
  EXPECT_THROW(HatKCorrection<double>({0.5, 0.2}, {0.5}, {0, 0}), std::invalid_argument);
  EXPECT_THROW(HatKCorrection<double>({0.2}, {0.5}, {0, 0}), std::invalid_argument);
  // A runaway table stops the run with the correction's name.
  const HatKCorrection<double> bad({0.5}, {0.5}, {-3.0});
  Field<double> f(std::make_shared<SlabDecomposition>(MPI_COMM_WORLD, 16, 64.0), "f");
  try {
    bad.apply(f, 0.5);
    ADD_FAILURE() << "a correction with K < 0 was applied";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("hat_ka"), std::string::npos) << e.what();
  }
}

TEST(Adjoint, HatKCorrectionGravityAgainstFiniteDifferences) {
  header("gravity with the (k, a) hat correction");
  ModelSetup s(Window::CIC);
  s.cfg.potential_correction = hatKFactory();
  s.params.correction = {0.1, -0.05, 0.2, 0.1, -0.1, 0.3};
  Particles parts = randomParticles(800, s.mesh, 13);
  const double total = 800, a = 0.45;
  Kokkos::View<double* [3]> f("f", parts.capacity());
  const auto z = idWeights(parts, 14);
  auto value = [&](const Particles& q, const DiffParams& p) {
    Trajectory traj(s.cfg, p, total);
    traj.force(q, f, a);
    return dot3(z, f, q.size());
  };
  Trajectory traj(s.cfg, s.params, total);
  Particles adj(parts.size(), parts.capacity());
  Kokkos::deep_copy(adj.id, parts.id);
  ParameterGradient g = ParameterGradient::zeros(s.params);
  traj.forceVJP(parts, z, 1.0, adj.x, f, g, a);
  g.allreduce(s.mesh->comm());
  expectClose(centred([&](double t) { return value(perturbed(parts, t, 24, 0), s.params); }, 1e-6),
              directional(adj, 24, 0), "hat(k,a) gravity d/dx");
  for (int i = 0; i < 6; ++i)
    expectClose(centred([&](double t) { return value(parts, s.with(0, 0, i, t)); }, 1e-4),
                g.correction[i], ("hat(k,a) gravity d/dtheta_" + std::to_string(i)).c_str());
}

TEST(Adjoint, PgdDisplacementAgainstFiniteDifferences) {
  header("PGD displacement");
  ModelSetup s(Window::CIC);
  Particles parts = randomParticles(800, s.mesh, 15);
  const double total = 800, a = 0.8;
  auto ws = std::make_shared<Workspace<double>>(s.mesh);
  GravityOptions go;
  PgdDisplacement<double> pgd(ws, s.params.cosmology.Omega_m, go);
  const PgdTheta theta = {0.3, 0.4, 1.5};
  Kokkos::View<double* [3]> S("S", parts.capacity());
  const auto z = idWeights(parts, 16);
  auto value = [&](const PgdTheta& t) {
    pgd.displacement(parts.x, parts.size(), total, a, t, S);
    return dot3(z, S, parts.size());
  };
  std::array<double, 3> g{};
  pgd.vjpParameters(parts.x, parts.size(), total, a, theta, z, g);
  for (int i = 0; i < 3; ++i)
    g[i] = allSum(g[i]);
  const char* names[3] = {"PGD d/dalpha", "PGD d/dk_l", "PGD d/dk_s"};
  for (int i = 0; i < 3; ++i)
    expectClose(centred(
                    [&](double t) {
                      PgdTheta q = theta;
                      q[i] += t;
                      return value(q);
                    },
                    1e-5),
                g[i], names[i]);
  // S is linear in alpha, and points the way gravity does (towards overdensities): the same
  // direction as the PM force with the same filter switched off (positive overlap).
  Kokkos::View<double* [3]> F("F", parts.capacity());
  Gravity<double> grav(ws, s.params.cosmology.Omega_m, go);
  grav.force(parts.x, parts.size(), total, parts.x, parts.size(), F, a);
  pgd.displacement(parts.x, parts.size(), total, a, {1.0, 0.0, 100.0}, S);
  EXPECT_GT(dot3(S, F, parts.size()), 0.0);
  EXPECT_THROW(PgdFilter<double>(0.3, {-1.0, 0.1, 1.0}), std::invalid_argument);
  EXPECT_THROW(PgdFilter<double>(0.3, {1.0, 0.1, 0.0}), std::invalid_argument);
}

TEST(Adjoint, ShellPowerAgainstFiniteDifferences) {
  header("shell power spectrum");
  ModelSetup s(Window::CIC);
  Particles parts = randomParticles(800, s.mesh, 17);
  const ShellPower P(s.mesh, Window::CIC, 800, 6);
  std::vector<double> gP(6);
  for (int j = 0; j < 6; ++j)
    gP[j] = hashUniform(j, 5);
  auto value = [&](const Particles& q) {
    Particles m = copyParticles(q);
    Migrator(s.mesh)(m);
    const auto p = P(m);
    double v = 0.0;
    for (int j = 0; j < 6; ++j)
      v += gP[j] * p[j];
    return v;
  };
  Particles adj(parts.size(), parts.capacity());
  Kokkos::deep_copy(adj.id, parts.id);
  P.vjp(parts, gP, adj.x);
  expectClose(centred([&](double t) { return value(perturbed(parts, t, 26, 0)); }, 1e-6),
              directional(adj, 26, 0), "shell power d/dx");
}

// The whole training loss (several snapshots, positions and power) through the adjoint, against
// finite differences in the correction's parameters and Omega_m.
TEST(Adjoint, TrajectoryLossAgainstFiniteDifferences) {
  header("trajectory loss, 4 steps, 2 snapshots");
  ModelSetup s(Window::CIC, 4);
  s.cfg.potential_correction = hatKFactory();
  s.params.correction = {0.05, 0.0, 0.1, -0.05, 0.0, 0.1};
  const Field<double> w = s.noise(3);
  TrajectorySample sample;
  {
    const LptModel lpt(s.cfg, s.params);
    sample.initial = lpt.forward(w);
  }
  // Targets: the uncorrected model's states, moved by a smooth field (a stand-in reference).
  DiffParams plain = s.params;
  plain.correction.assign(6, 0.0);
  TrajectoryLossOptions opt;
  opt.power_weight = 0.5;
  const TrajectoryLoss loss(s.cfg, opt);
  {
    TrajectorySample probe;
    probe.initial = copyParticles(sample.initial);
    probe.targets.resize(2);
    probe.targets[0].boundary = 2;
    probe.targets[1].boundary = 4;
    const auto st = loss.states(probe, plain);
    for (int t = 0; t < 2; ++t) {
      TrajectorySample::Target tg;
      tg.boundary = probe.targets[t].boundary;
      tg.particles = perturbed(st[t], 0.3, 41 + t, 0);
      sample.targets.push_back(std::move(tg));
    }
  }
  loss.prepare(sample);
  ParameterGradient g = ParameterGradient::zeros(s.params);
  const auto v = loss(sample, s.params, &g);
  EXPECT_GT(v.position, 0.0);
  EXPECT_GT(v.power, 0.0);
  auto value = [&](const DiffParams& p) { return loss(sample, p, nullptr).total; };
  for (int i : {0, 2, 5})
    expectClose(centred([&](double t) { return value(s.with(0, 0, i, t)); }, 1e-6), g.correction[i],
                ("trajectory loss d/dtheta_" + std::to_string(i)).c_str());
  expectClose(centred([&](double t) { return value(s.with(t, 0)); }, 1e-6), g[CosmoParam::Omega_m],
              "trajectory loss d/dOmega_m");
}

// PGD on fixed PM states, scored like the trajectory: its gradient in the PGD parameters.
TEST(Adjoint, PgdLossAgainstFiniteDifferences) {
  header("PGD loss, 2 snapshots");
  ModelSetup s(Window::CIC, 4);
  s.cfg.potential_correction = nullptr;
  s.params.correction.clear();
  const Field<double> w = s.noise(4);
  TrajectorySample sample;
  {
    const LptModel lpt(s.cfg, s.params);
    sample.initial = lpt.forward(w);
  }
  TrajectoryLossOptions opt;
  opt.power_weight = 0.5;
  const TrajectoryLoss loss(s.cfg, opt);
  sample.targets.resize(2);
  sample.targets[0].boundary = 2;
  sample.targets[1].boundary = 4;
  const auto states = loss.states(sample, s.params);
  for (int t = 0; t < 2; ++t)
    sample.targets[t].particles = perturbed(states[t], 0.3, 51 + t, 0);
  loss.prepare(sample);
  EXPECT_NEAR(sample.targets[1].a, 1.0, 1e-12);
  const std::vector<PgdTheta> theta = {{0.3, 0.3, 1.5}, {0.2, 0.4, 1.2}};
  std::vector<std::array<double, 3>> g;
  const double Om = s.params.cosmology.Omega_m;
  const auto v = loss.pgdLoss(sample, states, theta, Om, &g);
  EXPECT_GT(v.power, 0.0);
  for (int t = 0; t < 2; ++t)
    for (int i = 0; i < 3; ++i)
      expectClose(
          centred(
              [&](double e) {
                auto q = theta;
                q[t][i] += e;
                return loss.pgdLoss(sample, states, q, Om, nullptr).total;
              },
              1e-6),
          g[t][i],
          ("PGD loss d/dtheta[" + std::to_string(t) + "][" + std::to_string(i) + "]").c_str());
}
