#include "io/baryon_outputs.hpp"

#include "io/atomic_file.hpp"
#include "io/fields.hpp"
#include "io/format.hpp"
#include "io/snapshot.hpp"
#include "io/svg_plot.hpp"
#include "io/tables.hpp"
#include "io/text_file.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/baryons/baryonify.hpp"
#include "pm/core/comm.hpp"
#include "pm/cosmology/cosmology.hpp"
#include "pm/force/painter.hpp"
#include "pm/particles/migrate.hpp"

#include <Kokkos_Core.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <sstream>

namespace caustic {

namespace {

namespace fs = std::filesystem;

struct Timer {
  Timer(const std::function<void(const std::string&, double)>& f, std::string phase)
      : _f(f), _phase(std::move(phase)), _t0(std::chrono::steady_clock::now()) {}
  ~Timer() {
    if (_f)
      _f(_phase, std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count());
  }
  const std::function<void(const std::string&, double)>& _f;
  std::string _phase;
  std::chrono::steady_clock::time_point _t0;
};

PowerSpectrum powerOf(const Particles& parts, double total,
                      const std::shared_ptr<const SlabDecomposition>& d, const FFT<double>& fft) {
  PowerOptions po; // CIC, interlaced, no shot-noise subtraction (as run outputs)
  return measurePower(parts, total, d, fft, po);
}

} // namespace

const std::vector<std::string>& baryonOutputNames() {
  static const std::vector<std::string> names = {
      "snapshot_bcm.hdf5",  "power_dmo.txt",  "power_bcm.txt", "suppression.txt",
      "suppression.svg",    "baryon_fields.hdf5", "compton_y.hdf5"};
  return names;
}

nlohmann::json writeBaryonOutputs(const Comm& comm, Particles& parts, const BaryonInput& in,
                                  const Params& params, const std::string& dir,
                                  const std::function<void(const std::string&, double)>& timer,
                                  const std::function<void(const std::string&)>& log_,
                                  const std::function<void(const std::string&, const std::string&)>& cb) {
  auto log = [&](const std::string& m) {
    if (comm.rank() == 0 && log_)
      log_(m);
  };
  const auto& names = baryonOutputNames();
  const BaryonsParams& bp = params.baryons;
  const int np = in.np;
  const int mesh = bp.mesh > 0 ? bp.mesh : 2 * np;
  const int field_mesh = bp.field_mesh > 0 ? bp.field_mesh : np;
  // Background at the snapshot's a.
  const Cosmology cosmo(params.cosmology);
  BcmBackground bg;
  bg.omega_m = params.cosmology.Omega_m;
  bg.omega_b = params.cosmology.Omega_b;
  bg.a = in.a;
  bg.e_of_a = cosmo.E(in.a);
  const double mp = in.particle_mass * 1e10; // [Msun/h]
  std::vector<BcmHalo> list;
  double min_m200c = 0, max_m200c = 0;
  for (std::size_t g = 0; g < in.count.size(); ++g) {
    if (bp.min_particles > 0 && in.count[g] < static_cast<std::uint32_t>(bp.min_particles))
      continue;
    BcmHalo hl;
    for (int c = 0; c < 3; ++c)
      hl.pos[c] = in.pos[3 * g + c];
    hl.m200c = m200cFromFof(in.mass[g] * 1e10, bg);
    hl.c200c = concentrationDuffy(hl.m200c, bg.a);
    min_m200c = list.empty() ? hl.m200c : std::min(min_m200c, hl.m200c);
    max_m200c = std::max(max_m200c, hl.m200c);
    list.push_back(hl);
  }
  log(in.source + ": " + std::to_string(in.total_particles) + " particles, box " +
          format("%g", in.box) + " Mpc/h, a = " + format("%.4f", in.a) + "; " +
          std::to_string(list.size()) + " of " + std::to_string(in.count.size()) +
          " FoF groups baryonified (M200c " + format("%.3g", min_m200c) + " to " +
          format("%.3g", max_m200c) + " Msun/h)");

  auto decomp = std::make_shared<const SlabDecomposition>(comm.get(), mesh, in.box);
  migrate(parts, *decomp);
  const double total = double(in.total_particles);
  FFT<double> fft(decomp, FFTW_ESTIMATE);
  PowerSpectrum p_dmo, p_bcm;
  {
    Timer t(timer, "power_dmo");
    p_dmo = powerOf(parts, total, decomp, fft);
  }
  // The model of this rank's slab, tabulated once for the displacement and the components.
  const IndexBox slab = decomp->realBox();
  std::unique_ptr<BaryonModel> model;
  {
    Timer t(timer, "profiles");
    model = std::make_unique<BaryonModel>(list, bp.bcm, bg, in.box, slab.lo[0] * decomp->cell(),
                                          slab.hi[0] * decomp->cell());
  }
  // The dark-matter-only density on the field mesh, before any displacement: the input side of
  // the painters' training pairs.
  auto fdecomp = field_mesh == mesh
                     ? decomp
                     : std::make_shared<const SlabDecomposition>(comm.get(), field_mesh, in.box);
  Field<double> dmo(fdecomp, "caustic::baryonify::dmo");
  {
    Timer t(timer, "dmo_density");
    if (fdecomp != decomp)
      migrate(parts, *fdecomp);
    Painter<double>(fdecomp, Window::CIC).paint(dmo, parts.x, parts.size(), 1.0);
    if (fdecomp != decomp)
      migrate(parts, *decomp);
  }
  BaryonifyStats st;
  {
    Timer t(timer, "baryonify");
    st = model->displace(parts);
  }
  migrate(parts, *decomp);
  {
    Timer t(timer, "power_bcm");
    p_bcm = powerOf(parts, total, decomp, fft);
  }
  BaryonComponents comp;
  {
    Timer t(timer, "components");
    comp = model->components(parts, comm.get(), bp.t_igm);
  }
  const double diffuse = comp.diffuse_gas_fraction;
  // Statistics over ranks.
  unsigned long long loc[2] = {st.displaced, model->localHaloes()}, glob[2] = {0, 0};
  model.reset();
  mpiCheck(MPI_Allreduce(loc, glob, 2, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm.get()), "baryonify");
  double dmax = 0, s2 = st.rms_displacement * st.rms_displacement * parts.size(), s2all = 0;
  mpiCheck(MPI_Allreduce(&st.max_displacement, &dmax, 1, MPI_DOUBLE, MPI_MAX, comm.get()),
           "baryonify");
  mpiCheck(MPI_Allreduce(&s2, &s2all, 1, MPI_DOUBLE, MPI_SUM, comm.get()), "baryonify");
  double sums[3] = {0, 0, 0}, gsums[3] = {0, 0, 0}; // gas, stars, particles
  for (std::size_t i = 0; i < parts.size(); ++i) {
    sums[0] += comp.gas_fraction[i];
    sums[1] += comp.star_fraction[i];
  }
  sums[2] = double(parts.size());
  mpiCheck(MPI_Allreduce(sums, gsums, 3, MPI_DOUBLE, MPI_SUM, comm.get()), "baryonify");
  if (gsums[2] != total)
    throw std::logic_error("baryonify: " + format("%.0f", gsums[2]) + " particles after, " +
                           format("%.0f", total) + " before");
  log("displaced " + std::to_string(glob[0]) + " particles (rms " +
          format("%.4f", std::sqrt(s2all / total)) + " Mpc/h, max " + format("%.3f", dmax) +
          " Mpc/h); gas fraction " + format("%.4f", gsums[0] / total) + " (Omega_b/Omega_m " +
          format("%.4f", bg.omega_b / bg.omega_m) + "), stars " +
          format("%.4f", gsums[1] / total));

  // Per-particle columns and the meshes: gas (mass fraction), T (gas-mass weighted) and the
  // electron pressure (volume average).
  const double h2 = params.cosmology.h * params.cosmology.h;
  // Pressure units of the profiles ((Msun/h) (km/s)^2 / (Mpc/h)^3, physical) in erg/cm^3 and keV/cm^3.
  const double p_cgs = h2 * kSolarMassInG * 1e10 / std::pow(kUnitLengthInCm, 3);
  const double kev = 1.602176634e-9;
  const double pe_frac = kMeanMolecularWeight / kElectronWeight; // n_e / n
  const double a3 = in.a * in.a * in.a;
  {
    Timer t(timer, "snapshot");
    const std::size_t n = parts.size();
    auto fg = parts.addAttribute<float>("GasFraction", 1, "gas mass / particle mass");
    auto fs_ = parts.addAttribute<float>("StarFraction", 1, "stellar mass (central galaxy and satellites) / particle mass");
    auto tt = parts.addAttribute<float>("Temperature", 1, "K (gas)");
    auto pe = parts.addAttribute<float>("ElectronPressure", 1, "keV/cm^3 (physical)");
    auto hg = Kokkos::create_mirror_view(fg);
    auto hs = Kokkos::create_mirror_view(fs_);
    auto ht = Kokkos::create_mirror_view(tt);
    auto hp = Kokkos::create_mirror_view(pe);
    for (std::size_t i = 0; i < n; ++i) {
      hg(i, 0) = static_cast<float>(comp.gas_fraction[i]);
      hs(i, 0) = static_cast<float>(comp.star_fraction[i]);
      const double s = comp.pressure[i] / (comp.gas_density[i] / a3); // (km/s)^2
      ht(i, 0) = static_cast<float>(temperatureOfSpecificPressure(s));
      hp(i, 0) = static_cast<float>(comp.pressure[i] * pe_frac * p_cgs / kev);
    }
    Kokkos::deep_copy(fg, hg);
    Kokkos::deep_copy(fs_, hs);
    Kokkos::deep_copy(tt, ht);
    Kokkos::deep_copy(pe, hp);
    writeSnapshot((fs::path(dir) / names[0]).string(), comm, parts,
                  {in.a, in.particle_mass, in.total_particles}, params);
    comp = BaryonComponents(); // the columns hold them now
  }
  {
    // Power spectra and S(k).
    const std::string d = "box " + format("%g", in.box) + " Mpc/h, " + std::to_string(np) +
                          "^3 particles, mesh " + std::to_string(mesh) +
                          "^3, CIC, interlaced, compensated; k_nyquist_particles = " +
                          format("%.4f", M_PI * np / in.box) + " h/Mpc";
    if (comm.rank() == 0) {
      writePowerTable((fs::path(dir) / names[1]).string(), p_dmo,
                      {"caustic baryonify: dark-matter-only power of " + in.source, d});
      writePowerTable((fs::path(dir) / names[2]).string(), p_bcm,
                      {"caustic baryonify: power after the baryon correction model", d});
      std::ostringstream s;
      s << "# caustic baryonify: S(k) = P_bcm / P_dmo at a = " << format("%.4f", in.a)
        << " (z = " << format("%.4f", 1 / in.a - 1) << ")\n# " << d << "\n"
        << "# BCM (Schneider et al. 2019): log10_mc = " << bp.bcm.log10_mc << ", mu = " << bp.bcm.mu
        << ", theta_ej = " << bp.bcm.theta_ej << ", gamma = " << bp.bcm.gamma
        << ", delta = " << bp.bcm.delta << ", eta = " << bp.bcm.eta
        << ", delta_eta = " << bp.bcm.delta_eta << "; " << list.size() << " haloes\n"
        << "# columns: k [h/Mpc]  S(k)  P_dmo [(Mpc/h)^3]  P_bcm [(Mpc/h)^3]  modes\n";
      std::vector<std::pair<double, double>> pts;
      for (std::size_t b = 0; b < p_dmo.k.size(); ++b) {
        if (p_dmo.modes[b] <= 0)
          continue;
        const double S = p_bcm.power[b] / p_dmo.power[b];
        s << format("%.6e %.8f %.6e %.6e %.0f\n", p_dmo.k[b], S, p_dmo.power[b], p_bcm.power[b],
                    p_dmo.modes[b]);
        pts.emplace_back(p_dmo.k[b], S);
      }
      writeTextFile((fs::path(dir) / names[3]).string(), s.str());
      // x axis: log10 k (the plot has a linear x axis).
      std::vector<std::pair<double, double>> lp;
      for (auto& [k, S] : pts)
        lp.emplace_back(std::log10(k), S);
      writeSvgPlot((fs::path(dir) / names[4]).string(),
                   "Baryonic suppression S(k) = P_bcm / P_dmo, z = " + format("%.2f", 1 / in.a - 1),
                   "log10 k [h/Mpc]", "S(k)", {{"BCM", "#1f77b4", lp}}, false);
    }
  }
  {
    Timer t(timer, "fields");
    // The meshes' decomposition (baryons.field_mesh); the particles carry their columns along.
    if (fdecomp != decomp)
      migrate(parts, *fdecomp);
    const std::size_t n = parts.size();
    // Weights per particle from its float columns: f_gas, f_gas T and f_gas s n_e/n with the
    // specific pressure s = P / rho_gas = T k_B / (mu m_p).
    Kokkos::View<double* [3]> w("caustic::baryonify::weights", std::max<std::size_t>(1, n));
    {
      auto fg = parts.attribute<float>("GasFraction");
      auto tt = parts.attribute<float>("Temperature");
      const double s_of_t = 1.0 / temperatureOfSpecificPressure(1.0);
      Kokkos::parallel_for(
          "caustic::baryonify::weights", Kokkos::RangePolicy<>(0, n), KOKKOS_LAMBDA(std::size_t i) {
            w(i, 0) = fg(i, 0);
            w(i, 1) = double(fg(i, 0)) * tt(i, 0);
            w(i, 2) = double(fg(i, 0)) * tt(i, 0) * s_of_t * pe_frac;
          });
    }
    Painter<double> painter(fdecomp, Window::CIC);
    Field<double> gas(fdecomp, "caustic::baryonify::gas"), temp(fdecomp, "caustic::baryonify::T"),
        pres(fdecomp, "caustic::baryonify::Pe"), matter(fdecomp, "caustic::baryonify::matter");
    painter.paintWeighted(gas, parts.x, n, w, 0, 1.0);
    painter.paintWeighted(temp, parts.x, n, w, 1, 1.0);
    painter.paintWeighted(pres, parts.x, n, w, 2, 1.0);
    painter.paint(matter, parts.x, n, 1.0);
    const double per_cell = total / (double(field_mesh) * field_mesh * field_mesh);
    const double fb = bg.omega_b / bg.omega_m;
    const double cell_phys = in.a * in.box / field_mesh; // [Mpc/h]
    // P_e [keV/cm^3] = sum f_gas s' m_p / V_cell (physical), m_p in Msun/h.
    const double pe_unit = mp / (cell_phys * cell_phys * cell_phys) * p_cgs / kev;
    const double t_igm = bp.t_igm;
    auto g = gas.real(), tv = temp.real(), pv = pres.real(), mv = matter.real(), dv = dmo.real();
    const int nm = field_mesh;
    fdecomp->forEachRow(
        "caustic::baryonify::normalise", KOKKOS_LAMBDA(const MeshRow& r) {
          for (int z = 0; z < nm; ++z) {
            const std::size_t i = r.index + z;
            tv(i) = g(i) > 0 ? tv(i) / g(i) : t_igm;
            pv(i) *= pe_unit;
            g(i) /= fb * per_cell;
            mv(i) /= per_cell;
            dv(i) = dv(i) / per_cell - 1.0;
          }
        });
    const std::string units =
        "gas_density: rho_gas / mean baryon density; gas_temperature: K (gas-mass weighted); "
        "electron_pressure: keV/cm^3 (physical, volume average); matter_density: rho / mean "
        "(all matter after the BCM); dmo_density_contrast: rho / mean - 1 of the "
        "dark-matter-only particles";
    writeFields<double>((fs::path(dir) / names[5]).string(), {&gas, &temp, &pres, &matter, &dmo},
                        {"gas_density", "gas_temperature", "electron_pressure", "matter_density",
                         "dmo_density_contrast"},
                        units, in.a, params,
                        {{"model", "Schneider et al. 2019 baryon correction model"}});
    // Compton-y along z: y = sigma_T / (m_e c^2) sum_z P_e dl (physical), per map pixel.
    const double sigma_t = 6.6524587321e-25, me_c2 = 8.1871057769e-7; // [cm^2], [erg]
    const double dl_cm = cell_phys / params.cosmology.h * kUnitLengthInCm;
    const double yfac = sigma_t / me_c2 * kev * dl_cm;
    const IndexBox rb = fdecomp->realBox();
    Kokkos::View<double*> rows("caustic::baryonify::y", std::max<std::size_t>(1, rb.extent(0) * nm));
    fdecomp->forEachRow(
        "caustic::baryonify::project", KOKKOS_LAMBDA(const MeshRow& r) {
          double acc = 0;
          for (int z = 0; z < nm; ++z)
            acc += pv(r.index + z);
          rows(r.compact / nm) = yfac * acc;
        });
    auto hr = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), rows);
    std::vector<double> local(static_cast<std::size_t>(rb.extent(0)) * nm);
    for (std::size_t i = 0; i < local.size(); ++i)
      local[i] = hr(i);
    writeProjectedMap((fs::path(dir) / names[6]).string(), *fdecomp, local, "compton_y",
                      "dimensionless (projected along z through the box)", in.a, params);
  }
  for (const auto& nm : names)
    if (comm.rank() == 0 && cb)
      cb(nm.substr(0, nm.find('.')), (fs::path(dir) / nm).string());
  nlohmann::json j;
  j["a"] = in.a;
  j["mesh"] = mesh;
  j["field_mesh"] = field_mesh;
  j["haloes_baryonified"] = list.size();
  j["haloes_in_catalogue"] = in.count.size();
  j["particles_displaced"] = glob[0];
  j["displacement_rms_mpc_h"] = std::sqrt(s2all / total);
  j["displacement_max_mpc_h"] = dmax;
  j["gas_fraction"] = gsums[0] / total;
  j["diffuse_gas_fraction"] = diffuse;
  j["star_fraction"] = gsums[1] / total;
  j["cosmic_baryon_fraction"] = bg.omega_b / bg.omega_m;
  nlohmann::json pj;
  pj["log10_mc"] = bp.bcm.log10_mc;
  pj["mu"] = bp.bcm.mu;
  pj["theta_ej"] = bp.bcm.theta_ej;
  pj["gamma"] = bp.bcm.gamma;
  pj["delta"] = bp.bcm.delta;
  pj["eta"] = bp.bcm.eta;
  pj["delta_eta"] = bp.bcm.delta_eta;
  pj["r_max_factor"] = bp.bcm.r_max_factor;
  pj["f_nt"] = bp.bcm.f_nt;
  pj["t_igm"] = bp.t_igm;
  j["bcm"] = pj;
  return j;
}

} // namespace caustic
