// `caustic ldl-fit`: fits a Lagrangian Deep Learning painter (pm/baryons/ldl) to target fields
// (e.g. `caustic baryonify`'s gas density or electron pressure) from dark-matter snapshots, and
// measures it on held-out pairs: T(k) = sqrt(P_LDL / P_target) and r(k).
#include "commands.hpp"
#include "common.hpp"
#include "signals.hpp"

#include "io/atomic_file.hpp"
#include "io/fields.hpp"
#include "io/format.hpp"
#include "io/halos.hpp"
#include "io/ldl_record.hpp"
#include "io/snapshot.hpp"
#include "io/svg_plot.hpp"
#include "pm/baryons/ldl_fit.hpp"
#include "pm/baryons/ldl_halo.hpp"

#include <Kokkos_Core.hpp>
#include <Kokkos_ScatterView.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

namespace caustic {

namespace {

namespace fs = std::filesystem;

struct LoadedPair {
  std::string snapshot, target, halos_path;
  std::unique_ptr<LdlHaloSet> halos; // with a catalogue
  Particles parts;
  std::unique_ptr<Field<double>> field;
  double a = 0, box = 0, mean = 0;
  std::string parameters;       // the target file's /Parameters (its run's settings)
  std::vector<double> settings; // the values of --condition's settings
  double fof_b = 0;             // the catalogue's linking length parameter and smallest group
  int fof_min = 0;
};

// The parameters and their slopes, to scale the output layer of all alike.
std::vector<std::vector<double>*> withSlopes(std::vector<double>& params,
                                             std::vector<std::vector<double>>& slopes) {
  std::vector<std::vector<double>*> all{&params};
  for (auto& s : slopes)
    all.push_back(&s);
  return all;
}

// The values of `names` among the settings of the run that wrote pair `p`'s target.
std::vector<double> settingsOf(const RunContext& ctx, const LoadedPair& p,
                               const std::vector<std::string>& names) {
  if (names.empty())
    return {};
  if (p.parameters.empty())
    throw ParamError("--condition " + names.front() + ": " + p.target +
                     " has no /Parameters to read it from (targets written by caustic baryonify "
                     "or a run have them)");
  const Params params =
      parseParams(p.parameters, {}, ctx.comm().size(), ".", p.target + " /Parameters");
  std::vector<double> v;
  for (const auto& n : names)
    v.push_back(*numericSetting(params, n)); // names checked before
  return v;
}

// "SNAPSHOT=FIELDS[=HALOS]" -> the particles, /Fields/<name> on `decomp` (made from the first
// pair) and, if `need_halos`, the FoF catalogue HALOS of the same particles.
LoadedPair loadPair(const RunContext& ctx, const std::string& spec, const std::string& name,
                    std::shared_ptr<const SlabDecomposition>& decomp, bool need_halos) {
  std::vector<std::string> part;
  for (std::size_t at = 0;;) {
    const auto eq = spec.find('=', at);
    part.push_back(spec.substr(at, eq == std::string::npos ? std::string::npos : eq - at));
    if (eq == std::string::npos)
      break;
    at = eq + 1;
  }
  bool empty = false;
  for (const auto& q : part)
    empty = empty || q.empty();
  if (part.size() < 2 || part.size() > 3 || empty)
    throw ParamError("--train/--test " + spec +
                     ": expected SNAPSHOT=FIELDS (a snapshot and the "
                     "HDF5 file of its target field, e.g. baryon_fields.hdf5) or "
                     "SNAPSHOT=FIELDS=HALOS (and its FoF catalogue)");
  if (need_halos && part.size() != 3)
    throw ParamError("--train/--test " + spec +
                     ": --halo-layer and --profile-weight need every "
                     "pair's FoF catalogue: SNAPSHOT=FIELDS=HALOS");
  LoadedPair p;
  p.snapshot = part[0];
  p.target = part[1];
  SnapshotHeader h;
  p.parts = readSnapshot(p.snapshot, ctx.comm(), h);
  if (part.size() == 3) {
    p.halos_path = part[2];
    const HaloTable t = readHaloCatalogue(p.halos_path, ctx.comm().get());
    if (std::abs(t.box - h.box) > 1e-6 * h.box || std::abs(t.a - h.a) > 1e-4 * h.a)
      throw ParamError(p.halos_path + " (BoxSize " + format("%g", t.box) + ", Time " +
                       format("%.4f", t.a) + ") is not of snapshot " + p.snapshot + " (BoxSize " +
                       format("%g", h.box) + ", Time " + format("%.4f", h.a) + ")");
    std::vector<double> mass(t.mass.size());
    for (std::size_t g = 0; g < mass.size(); ++g)
      mass[g] = t.mass[g] * 1e10; // the catalogue's 1e10 Msun/h
    p.halos = std::make_unique<LdlHaloSet>(ldlHaloSet(t.pos, mass, h.omega_m));
    p.fof_b = t.linking_b;
    p.fof_min = static_cast<int>(t.min_group);
  }
  p.a = h.a;
  p.box = h.box;
  const FieldData fd = readFieldHeader(p.target, "Fields/" + name);
  if (std::abs(fd.box - h.box) > 1e-6 * h.box || std::abs(fd.a - h.a) > 1e-4 * h.a)
    throw ParamError(p.target + " (BoxSize " + format("%g", fd.box) + ", Time " +
                     format("%.4f", fd.a) + ") is not of snapshot " + p.snapshot + " (BoxSize " +
                     format("%g", h.box) + ", Time " + format("%.4f", h.a) + ")");
  if (!decomp)
    decomp = std::make_shared<const SlabDecomposition>(ctx.comm().get(), fd.n, fd.box);
  if (fd.n != decomp->n() || std::abs(fd.box - decomp->box()) > 1e-6 * fd.box)
    throw ParamError(p.target + ": a " + std::to_string(fd.n) + "^3 field of box " +
                     format("%g", fd.box) + "; the first pair's is " +
                     std::to_string(decomp->n()) + "^3 of box " + format("%g", decomp->box()) +
                     " (all pairs share one mesh)");
  p.parameters = fd.parameters;
  p.field = std::make_unique<Field<double>>(decomp, "caustic::ldl::target");
  readFieldSlab(p.target, "Fields/" + name, *p.field);
  const int n = fd.n;
  double sum = 0;
  auto fv = p.field->real();
  decomp->reducePoints(
      "caustic::ldl::targetSum",
      KOKKOS_LAMBDA(const MeshPoint& q, double& acc) { acc += fv(q.index); }, sum);
  double all = 0;
  mpiCheck(MPI_Allreduce(&sum, &all, 1, MPI_DOUBLE, MPI_SUM, ctx.comm().get()), "ldl-fit");
  p.mean = all / (double(n) * n * n);
  return p;
}

// P_aa, P_bb and P_ab in shells of |m| (as binPower), summed over the ranks.
struct Cross {
  std::vector<double> k, paa, pbb, pab;
};
Cross crossSpectra(Field<double>& a, Field<double>& b, const FFT<double>& fft) {
  const auto& d = a.decomp();
  const int n = d.n(), nbins = n / 2 + 1;
  fft.forward(a);
  fft.forward(b);
  Kokkos::View<double* [5]> acc("caustic::ldl::cross", nbins);
  auto sv = Kokkos::Experimental::create_scatter_view(acc);
  auto ca = a.complex(), cb = b.complex();
  d.forEachMode("caustic::ldl::cross", KOKKOS_LAMBDA(const MeshMode& md) {
    const double m = Kokkos::Experimental::sqrt(double(md.m2()));
    const int bn = static_cast<int>(Kokkos::Experimental::floor(m + 0.5));
    if (bn == 0 || bn >= nbins)
      return;
    const auto u = ca(md.index), v = cb(md.index);
    auto s = sv.access();
    s(bn, 0) += md.weight * m;
    s(bn, 1) += md.weight * (u.real() * u.real() + u.imag() * u.imag());
    s(bn, 2) += md.weight * (v.real() * v.real() + v.imag() * v.imag());
    s(bn, 3) += md.weight * (u.real() * v.real() + u.imag() * v.imag());
    s(bn, 4) += md.weight;
  });
  Kokkos::Experimental::contribute(acc, sv);
  auto h = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), acc);
  std::vector<double> loc(5 * nbins), all(5 * nbins);
  for (int i = 0; i < nbins; ++i)
    for (int c = 0; c < 5; ++c)
      loc[5 * i + c] = h(i, c);
  mpiCheck(MPI_Allreduce(loc.data(), all.data(), 5 * nbins, MPI_DOUBLE, MPI_SUM, d.comm().get()),
           "ldl-fit: spectra");
  Cross out;
  for (int i = 1; i < nbins; ++i) {
    const double w = all[5 * i + 4];
    if (w <= 0)
      continue;
    out.k.push_back(all[5 * i] / w * d.kFundamental());
    out.paa.push_back(all[5 * i + 1] / w);
    out.pbb.push_back(all[5 * i + 2] / w);
    out.pab.push_back(all[5 * i + 3] / w);
  }
  return out;
}

} // namespace

int runLdlFitCommand(RunContext& ctx, const LdlFitCommandOptions& opt) {
  if (opt.train.empty())
    throw ParamError("--train: at least one SNAPSHOT=FIELDS pair is needed");
  if (opt.layers < 0 || opt.layers > 8)
    throw ParamError("--layers = " + std::to_string(opt.layers) + ": allowed 0 to 8");
  if (!(opt.iterations >= 0 && opt.iterations <= 100000))
    throw ParamError("--iterations = " + std::to_string(opt.iterations) + ": allowed 0 to 100000");
  if (!(opt.weight_n >= 0 && opt.weight_n <= 4))
    throw ParamError("--weight-n = " + format("%g", opt.weight_n) + ": allowed 0 to 4");
  if (!(opt.power_weight >= 0 && opt.power_weight <= 1e6))
    throw ParamError("--power-weight = " + format("%g", opt.power_weight) + ": allowed 0 to 1e6");
  if (!(opt.power_kmax >= 0 && opt.power_kmax <= 1e4))
    throw ParamError("--power-kmax = " + format("%g", opt.power_kmax) +
                     ": allowed 0 (the mesh Nyquist frequency) to 1e4 h/Mpc");
  for (const auto& s : opt.train)
    for (const auto& t : opt.test)
      if (s == t)
        throw ParamError("--test " + t + " is also a training pair; held-out pairs must differ");
  for (std::size_t i = 0; i < opt.conditions.size(); ++i) {
    if (!numericSetting(Params{}, opt.conditions[i]))
      throw ParamError("--condition " + opt.conditions[i] +
                       ": not a numeric run setting; allowed: " + numericSettingNames());
    for (std::size_t k = 0; k < i; ++k)
      if (opt.conditions[k] == opt.conditions[i])
        throw ParamError("--condition " + opt.conditions[i] + " is given twice");
  }
  if (!(opt.profile_weight >= 0 && opt.profile_weight <= 1e6))
    throw ParamError("--profile-weight = " + format("%g", opt.profile_weight) +
                     ": allowed 0 to 1e6");
  if (opt.halo_layer && opt.halo_displacement)
    throw ParamError("--halo-layer and --halo-displacement: one or the other");
  const bool halo = opt.halo_layer || opt.halo_displacement;
  const std::string halo_flag = opt.halo_layer ? "--halo-layer" : "--halo-displacement";
  if (halo && !opt.conditions.empty())
    throw ParamError(halo_flag + ": not with --condition (fitted at one set of settings)");
  if (opt.halo_displacement && !opt.factors.empty())
    throw ParamError("--halo-displacement: not with --factor (it moves one painter's particles; "
                     "a product's pressure takes --halo-layer)");
  if (opt.hold_painter && !halo)
    throw ParamError("--hold-painter: only with --halo-layer or --halo-displacement (it fits "
                     "those alone)");
  const std::string halo_kind = opt.halo_displacement ? "displacement" : "factor";
  if (!opt.halo_radius_nodes.empty()) {
    if (!halo)
      throw ParamError("--halo-radius-nodes: only with --halo-layer or --halo-displacement");
    try {
      LdlHaloLayout{LdlHaloLayout::defaults().mass_nodes, opt.halo_radius_nodes}.check(
          "--halo-radius-nodes");
    } catch (const std::invalid_argument& e) {
      throw ParamError(e.what());
    }
  }
  const bool need_halos = halo || opt.profile_weight > 0;
  const bool product = !opt.factors.empty();
  if (product) {
    if (opt.factors.size() < 2)
      throw ParamError("--factor " + opt.factors.front() +
                       ": one factor; a product painter needs two or more");
    if (!opt.conditions.empty() || opt.displacement_only)
      throw ParamError("--factor: a product painter starts from its factors' records (or an "
                       "earlier product's, --init); --condition and --displacement-only are not "
                       "allowed with it");
  }
  // The factors' records, checked before anything is written (their mesh below).
  std::vector<LdlRecord> factors;
  for (const auto& f : opt.factors) {
    try {
      factors.push_back(readLdlRecord(f));
    } catch (const std::runtime_error& e) {
      throw ParamError(std::string("--factor: ") + e.what());
    }
    if (!factors.back().factors.empty() || !factors.back().conditioning.empty() ||
        factors.back().halo_layer)
      throw ParamError("--factor " + f +
                       ": a product, conditioned or halo-layer painter; a "
                       "factor is a plain LDL painter");
  }
  const std::vector<std::string> names = {"ldl.json", "loss.csv", "loss.svg", "ldl_test.txt"};
  {
    std::string err;
    if (ctx.root()) {
      std::error_code ec;
      for (const auto& nm : names) {
        const fs::path p = fs::path(opt.output) / nm;
        if (!opt.overwrite && fs::exists(p, ec)) {
          err = p.string() + " exists; pass --overwrite to replace it, or --output another directory";
          break;
        }
      }
    }
    shareError(ctx, err, "ldl-fit: output check");
  }
  std::shared_ptr<const SlabDecomposition> decomp;
  std::vector<LoadedPair> train, test;
  {
    PhaseTimer t(ctx, "read");
    for (const auto& s : opt.train)
      train.push_back(loadPair(ctx, s, opt.field, decomp, need_halos));
    for (const auto& s : opt.test)
      test.push_back(loadPair(ctx, s, opt.field, decomp, need_halos));
    // The halo layer reads catalogues made as the training ones: one FoF setting for all.
    if (need_halos)
      for (const auto* set : {&train, &test})
        for (const auto& p : *set)
          if (p.fof_b != train.front().fof_b || p.fof_min != train.front().fof_min)
            throw ParamError(p.halos_path + ": FoF b = " + format("%g", p.fof_b) +
                             ", min_particles = " + std::to_string(p.fof_min) + "; " +
                             train.front().halos_path +
                             " has b = " + format("%g", train.front().fof_b) +
                             ", min_particles = " + std::to_string(train.front().fof_min) +
                             " (all catalogues of one fit need the same FoF settings)");
    for (auto* set : {&train, &test})
      for (auto& p : *set)
        p.settings = settingsOf(ctx, p, opt.conditions);
  }
  // The conditions: each setting's training range, mapped to [-1, 1].
  std::vector<LdlRecord::Condition> conds(opt.conditions.size());
  for (std::size_t j = 0; j < conds.size(); ++j) {
    auto& c = conds[j];
    c.name = opt.conditions[j];
    c.min = c.max = train.front().settings[j];
    for (const auto& p : train) {
      c.min = std::min(c.min, p.settings[j]);
      c.max = std::max(c.max, p.settings[j]);
    }
    if (!(c.max > c.min))
      throw ParamError("--condition " + c.name + ": every training pair has " + c.name + " = " +
                       format("%g", c.min) +
                       "; a painter conditioned on it needs two values or more");
    c.center = 0.5 * (c.min + c.max);
    c.scale = 0.5 * (c.max - c.min);
  }
  // --init: checked before anything is written.
  LdlRecord init;
  if (!opt.init.empty()) {
    try {
      init = readLdlRecord(opt.init);
    } catch (const std::runtime_error& e) {
      throw ParamError(std::string("--init: ") + e.what());
    }
    if (init.factors.empty() == product)
      throw ParamError("--init " + opt.init +
                       (product ? ": not a product painter; a product (--factor) continues only "
                                  "from an earlier product of the same factors"
                                : ": a product painter; continue it with its --factor options"));
    const int want_layers = product ? init.layers : opt.layers; // a product's: checked below
    if (init.field != opt.field || init.layers != want_layers || init.mesh != decomp->n() ||
        std::abs(init.box - decomp->box()) > 1e-6 * decomp->box())
      throw ParamError("--init " + opt.init + ": a fit of " + init.field + " with " +
                       std::to_string(init.layers) + " layers on a " + std::to_string(init.mesh) +
                       "^3 mesh of box " + format("%g", init.box) + "; this fit is of " +
                       opt.field + " with " + std::to_string(opt.layers) + " layers on a " +
                       std::to_string(decomp->n()) + "^3 mesh of box " +
                       format("%g", decomp->box()));
    // A conditioned record continues only with its own conditions (its slopes are per its
    // centres and scales, which it keeps); an unconditioned one may start a conditioned fit.
    std::vector<std::string> had;
    for (const auto& c : init.conditioning)
      had.push_back(c.name);
    if (!had.empty() && had != opt.conditions)
      throw ParamError("--init " + opt.init + ": conditioned on " + joined(had, ", ") +
                       "; give the same --condition options in that order");
    for (std::size_t j = 0; j < init.conditioning.size(); ++j) {
      conds[j].center = init.conditioning[j].center;
      conds[j].scale = init.conditioning[j].scale;
    }
  }
  std::vector<int> factor_layers;
  for (std::size_t f = 0; f < factors.size(); ++f) {
    const LdlRecord& r = factors[f];
    if (r.mesh != decomp->n() || std::abs(r.box - decomp->box()) > 1e-6 * decomp->box() ||
        std::abs(r.a - train.front().a) > 0.05)
      throw ParamError("--factor " + opt.factors[f] + ": fitted on a " + std::to_string(r.mesh) +
                       "^3 mesh of box " + format("%g", r.box) + " at a = " + format("%.4f", r.a) +
                       "; the targets are on a " + std::to_string(decomp->n()) + "^3 mesh of box " +
                       format("%g", decomp->box()) + " at a = " + format("%.4f", train.front().a));
    factor_layers.push_back(r.layers);
  }
  if (product && !opt.init.empty()) {
    bool same = init.factors.size() == factors.size();
    for (std::size_t f = 0; same && f < factors.size(); ++f)
      same = init.factors[f].layers == factors[f].layers;
    if (!same)
      throw ParamError("--init " + opt.init +
                       ": a product of other factors (their number or "
                       "layers) than the --factor records");
  }
  auto normalised = [&](const LoadedPair& p) {
    std::vector<double> c(conds.size());
    for (std::size_t j = 0; j < c.size(); ++j)
      c[j] = conds[j].at(p.settings[j]);
    return c;
  };
  if (ctx.root()) {
    std::error_code ec;
    fs::create_directories(opt.output, ec);
  }
  MPI_Barrier(ctx.comm().get());
  std::unique_ptr<LdlModel> model;
  LdlProduct* prod = nullptr;
  if (product) {
    auto pm = std::make_unique<LdlProduct>(decomp, factor_layers, 1.0);
    prod = pm.get();
    model = std::move(pm);
  } else {
    model = std::make_unique<LdlPainter>(decomp, opt.layers);
  }
  LdlModel& bare = *model; // the painter without the halo layer
  LdlHaloLayout layout = LdlHaloLayout::defaults();
  if (!opt.halo_radius_nodes.empty())
    layout.radius_nodes = opt.halo_radius_nodes;
  if (halo) // every halo's reach below half the box (the layer's periodic images stay apart)
    for (const auto* set : {&train, &test})
      for (const auto& p : *set)
        for (double r : p.halos->radius)
          if (!(r * layout.radius_nodes.back() < 0.5 * decomp->box()))
            throw ParamError(
                p.halos_path + ": a halo of R200m = " + format("%g", r) + " Mpc/h reaches " +
                format("%g", r * layout.radius_nodes.back()) + " Mpc/h with the last radius node " +
                format("%g", layout.radius_nodes.back()) + "; it must stay below half the box (" +
                format("%g", 0.5 * decomp->box()) +
                " Mpc/h): lower "
                "--halo-radius-nodes");
  if (opt.halo_layer)
    model = std::make_unique<LdlHaloModel>(decomp, std::move(model), layout);
  if (opt.halo_displacement) // a plain painter (not with --factor)
    model = std::make_unique<LdlHaloDisplacement>(
        decomp, std::unique_ptr<LdlPainter>(static_cast<LdlPainter*>(model.release())), layout);
  LdlModel& painter = *model;
  std::vector<LdlPair> pairs;
  double mean = 0;
  for (auto& p : train)
    mean += p.mean / train.size();
  if (!(mean > 0))
    throw ParamError("/Fields/" + opt.field + ": the training targets' mean is " +
                     format("%g", mean) + "; LDL paints a non-negative field with a positive mean");
  // The fit sees the targets over their mean (parameters of order one for any units, e.g. a
  // pressure of 1e-6 keV/cm^3); b_1 and b_0 are scaled back at the end (ReLU is homogeneous).
  for (auto& p : train) {
    auto v = p.field->real();
    const double inv = 1.0 / mean;
    decomp->forEachPoint("caustic::ldl::normalise", KOKKOS_LAMBDA(const MeshPoint& pt) {
      v(pt.index) *= inv;
    });
    pairs.push_back({p.parts.x, p.parts.size(), p.field.get(), normalised(p), p.halos.get()});
  }
  ctx.log("LDL: " +
          (product ? "a product of " + std::to_string(factors.size()) + " painters (" +
                         joined(opt.factors, ", ") + ")"
                   : std::to_string(opt.layers) + " displacement layers") +
          " on a " + std::to_string(decomp->n()) + "^3 mesh, target /Fields/" + opt.field + ", " +
          std::to_string(train.size()) + " training and " + std::to_string(test.size()) +
          " held-out pairs");
  LdlFitOptions fo;
  fo.iterations = opt.iterations;
  fo.loss.weight_n = opt.weight_n;
  fo.loss.power_weight = opt.power_weight;
  fo.loss.power_kmax = opt.power_kmax;
  fo.loss.profile_weight = opt.profile_weight;
  fo.fit_output = !opt.displacement_only;
  std::ostringstream csv;
  csv << "iteration,loss\n";
  fo.progress = [&](int it, double loss, const std::vector<double>&) {
    if (it % 10 == 0 || it == opt.iterations)
      ctx.log("iteration " + std::to_string(it) + ": loss " + format("%.6e", loss));
    int mine = stopRequested() ? 1 : 0, any = 0; // every rank stops at the same iteration
    mpiCheck(MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, ctx.comm().get()), "ldl-fit");
    return any == 0;
  };
  const std::size_t b1 = 5 * opt.layers + 1, b0 = b1 + 1; // the output's b_1, b_0
  std::vector<double> start = ldlInitialParameters(opt.layers, 1.0);
  std::vector<std::vector<double>> start_slopes;
  if (product) {
    // The factors' parameters as fitted (in their own targets' units); the product's scale makes
    // its mean over the training pairs that of the targets (1: they are over their mean), and the
    // record's is that times the mean.
    start.clear();
    for (const auto& r : factors)
      start.insert(start.end(), r.parameters.begin(), r.parameters.end());
    if (!opt.init.empty()) // an earlier product's factor parameters (and its scale, below)
      start.assign(init.parameters.begin(), init.parameters.begin() + start.size());
    if (!opt.init.empty()) { // an earlier product keeps the scale it was fitted with
      prod->setScale(init.scale / mean);
    } else {
      Field<double> out(decomp, "caustic::ldl::out");
      double sum = 0;
      for (const auto& pr : pairs) {
        bare.forward(pr.x, pr.n, start, out);
        auto o = out.real();
        double loc = 0;
        decomp->reducePoints(
            "caustic::ldl::productSum",
            KOKKOS_LAMBDA(const MeshPoint& q, double& acc) { acc += o(q.index); }, loc);
        sum += loc;
      }
      mpiCheck(MPI_Allreduce(MPI_IN_PLACE, &sum, 1, MPI_DOUBLE, MPI_SUM, ctx.comm().get()),
               "ldl-fit: product mean");
      const double n3 = std::pow(double(decomp->n()), 3);
      if (!(sum > 0) || !std::isfinite(sum))
        throw ParamError("--factor: the product of the factors' fields is zero (or not finite) on "
                         "the training pairs; a product painter needs overlapping positive "
                         "factors");
      prod->setScale(double(pairs.size()) * n3 / sum);
    }
    ctx.log("product scale " + format("%.6e", prod->scale() * mean) + " (" + opt.field +
            " per product of the factors' fields)");
  }
  const std::size_t inner_count = bare.parameterCount();
  if (!opt.init.empty()) {
    start = init.parameters;
    if (halo && !init.halo_layer) // a painter fitted alone: the layer starts at the identity
      start.resize(inner_count + layout.parameterCount(), 0.0);
    if (!halo && init.halo_layer) // the painter without its layer
      start.resize(inner_count);
    if (halo && init.halo_layer &&
        (init.halo_layer->kind != halo_kind || init.halo_layer->mass_nodes != layout.mass_nodes ||
         init.halo_layer->radius_nodes != layout.radius_nodes))
      throw ParamError("--init " + opt.init + ": its halo " + init.halo_layer->kind +
                       " has another kind or other nodes than this fit's " + halo_kind);
    for (const auto& c : init.conditioning)
      start_slopes.push_back(c.slope);
    if (!opt.conditions.empty() && start_slopes.empty()) // conditioning an unconditioned fit
      start_slopes.assign(opt.conditions.size(), std::vector<double>(start.size(), 0.0));
    // The fit sees the targets over their mean: b_1, b_0 and their slopes are linear in it (a
    // product's factors keep their units: its scale carries the target's).
    for (auto* w : withSlopes(start, start_slopes)) {
      if (product)
        break;
      (*w)[b1] /= mean;
      (*w)[b0] /= mean;
    }
    if (opt.displacement_only) { // the identity output, whatever the record's
      std::copy_n(ldlInitialParameters(0, 1.0).begin(), 3, start.begin() + 5 * opt.layers);
      for (auto& w : start_slopes)
        std::fill(w.begin() + 5 * opt.layers, w.end(), 0.0);
    }
  }
  if (halo && start.size() == inner_count) // the layer starts at the identity
    start.resize(inner_count + layout.parameterCount(), 0.0);
  if (opt.hold_painter) { // the painter's parameters come first, the layer's after them
    fo.hold.assign(start.size(), false);
    std::fill_n(fo.hold.begin(), inner_count, true);
  }
  LdlFitResult r;
  {
    PhaseTimer t(ctx, "fit");
    r = fitLdl(painter, pairs, start, fo, start_slopes);
  }
  if (product) { // the factors keep their units; the scale carries the target's
    prod->setScale(prod->scale() * mean);
  } else {
    for (auto* w : withSlopes(r.params, r.slopes)) {
      (*w)[b1] *= mean;
      (*w)[b0] *= mean;
    }
  }
  for (std::size_t j = 0; j < conds.size(); ++j)
    conds[j].slope = r.slopes[j];
  ctx.log("stopped after " + std::to_string(r.iterations) + " iterations (" + r.stop +
          "): loss " + format("%.6e", r.loss.front()) + " -> " + format("%.6e", r.loss.back()));
  std::vector<std::pair<double, double>> curve;
  for (std::size_t i = 0; i < r.loss.size(); ++i) {
    csv << i << "," << format("%.10e", r.loss[i]) << "\n";
    curve.emplace_back(double(i), r.loss[i]);
  }
  // Held-out pairs: loss and spectra.
  nlohmann::json tests = nlohmann::json::array();
  std::ostringstream tab;
  tab << "# caustic ldl-fit: held-out pairs, /Fields/" << opt.field
      << "\n# columns: pair  k [h/Mpc]  T(k) = sqrt(P_LDL / P_target)  r(k) = P_x / sqrt(P_LDL "
         "P_target)\n";
  FFT<double> fft(decomp);
  for (std::size_t i = 0; i < test.size(); ++i) {
    // The painter at this pair's settings (outside the training range: extrapolated, said so).
    const std::vector<double> at =
        ldlParametersAt(r.params, r.slopes, normalised(test[i]), painter);
    std::string outside;
    for (std::size_t j = 0; j < conds.size(); ++j)
      if (!conds[j].fitted(test[i].settings[j]))
        outside += " " + conds[j].name + " = " + format("%g", test[i].settings[j]);
    if (!outside.empty())
      ctx.log("warning: held-out " + test[i].target +
              " lies outside the training range:" + outside + " (extrapolated)");
    std::vector<LdlPair> one{
        {test[i].parts.x, test[i].parts.size(), test[i].field.get(), {}, test[i].halos.get()}};
    const double loss = ldlLoss(painter, one, at, fo.loss, nullptr);
    Field<double> out(decomp, "caustic::ldl::out"), tgt(decomp, "caustic::ldl::tgt");
    painter.setHalos(test[i].halos.get());
    painter.forward(test[i].parts.x, test[i].parts.size(), at, out);
    Kokkos::deep_copy(tgt.real(), test[i].field->real());
    const Cross c = crossSpectra(out, tgt, fft);
    nlohmann::json tj;
    tj["snapshot"] = test[i].snapshot;
    tj["target"] = test[i].target;
    tj["loss"] = loss;
    for (std::size_t j = 0; j < conds.size(); ++j)
      tj["settings"][conds[j].name] = test[i].settings[j];
    nlohmann::json rows = nlohmann::json::array();
    for (std::size_t b = 0; b < c.k.size(); ++b) {
      const double tk = std::sqrt(c.paa[b] / c.pbb[b]), rk = c.pab[b] / std::sqrt(c.paa[b] * c.pbb[b]);
      tab << i << " " << format("%.5e", c.k[b]) << " " << format("%.6f", tk) << " "
          << format("%.6f", rk) << "\n";
      rows.push_back({c.k[b], tk, rk});
    }
    tj["k_T_r"] = rows;
    tests.push_back(tj);
    ctx.log("held-out " + test[i].snapshot + ": loss " + format("%.6e", loss));
  }
  if (ctx.root()) {
    nlohmann::json j;
    j["kind"] = "ldl";
    j["reference"] = "Dai & Seljak 2021 (PNAS 118, e2020324118); pm/baryons/ldl.hpp";
    j["field"] = opt.field;
    j["layers"] = opt.layers;
    if (product) {
      int sum = 0;
      j["factors"] = nlohmann::json::array();
      for (std::size_t f = 0; f < factors.size(); ++f) {
        j["factors"].push_back({{"field", factors[f].field},
                                {"layers", factors[f].layers},
                                {"record", opt.factors[f]}});
        sum += factors[f].layers;
      }
      j["layers"] = sum;
      j["scale"] = prod->scale();
    }
    j["mesh"] = decomp->n();
    j["box"] = decomp->box();
    j["a"] = train.front().a;
    j["parameters"] = r.params;
    j["parameter_names"] = nlohmann::json::array();
    const std::vector<int> each = product ? factor_layers : std::vector<int>{opt.layers};
    for (std::size_t f = 0; f < each.size(); ++f) {
      const std::string pre = product ? "factor" + std::to_string(f) + "." : "";
      for (int l = 0; l < each[f]; ++l)
        for (const char* nm : {"alpha", "gamma", "k_l", "k_h", "n"})
          j["parameter_names"].push_back(pre + "layer" + std::to_string(l) + "." + nm);
      for (const char* nm : {"mu", "b_1", "b_0"})
        j["parameter_names"].push_back(pre + "output." + nm);
    }
    if (halo) {
      for (std::size_t m = 0; m < layout.mass_nodes.size(); ++m)
        for (std::size_t q = 0; q + 1 < layout.radius_nodes.size(); ++q)
          j["parameter_names"].push_back("halo.logM" + format("%g", layout.mass_nodes[m]) + ".r" +
                                         format("%g", layout.radius_nodes[q]));
      j["halo_layer"] = {{"kind", halo_kind},
                         {"mass_nodes", layout.mass_nodes},
                         {"radius_nodes", layout.radius_nodes},
                         {"mass", "FoF mass as M200m; R = (3 M / (4 pi 200 rho_m))^(1/3)"},
                         {"fof_b", train.front().fof_b},
                         {"fof_min_particles", train.front().fof_min}};
    }
    j["profile_weight"] = opt.profile_weight;
    j["hold_painter"] = opt.hold_painter;
    j["weight_n"] = opt.weight_n;
    j["power_weight"] = opt.power_weight;
    j["power_kmax"] = opt.power_kmax;
    j["displacement_only"] = opt.displacement_only;
    if (!opt.init.empty())
      j["init"] = opt.init;
    if (!conds.empty()) {
      j["conditioning"] = nlohmann::json::array();
      for (std::size_t c = 0; c < conds.size(); ++c) {
        std::vector<double> values;
        for (const auto& p : train)
          values.push_back(p.settings[c]);
        j["conditioning"].push_back({{"name", conds[c].name},
                                     {"center", conds[c].center},
                                     {"scale", conds[c].scale},
                                     {"min", conds[c].min},
                                     {"max", conds[c].max},
                                     {"slope", conds[c].slope},
                                     {"train_values", values}});
      }
    }
    j["iterations"] = r.iterations;
    j["stop"] = r.stop;
    j["loss_initial"] = r.loss.front();
    j["loss_final"] = r.loss.back();
    j["train"] = opt.train;
    j["test"] = tests;
    const fs::path dir(opt.output);
    writeTextFile((dir / names[0]).string(), j.dump(2) + "\n");
    writeTextFile((dir / names[1]).string(), csv.str());
    writeSvgPlot((dir / names[2]).string(), "LDL fit: training loss", "iteration", "loss",
                 {{"training", "#1f77b4", curve}}, true);
    writeTextFile((dir / names[3]).string(), tab.str());
    ctx.log("wrote " + opt.output + ": ldl.json, loss.csv, loss.svg, ldl_test.txt");
  }
  return 0;
}

} // namespace caustic
