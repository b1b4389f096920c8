// `caustic baryonify SNAPSHOT HALOS`: the baryon correction model applied to a dark-matter-only
// snapshot and its FoF catalogue (pm/baryons): the baryonified snapshot with per-particle gas,
// star, temperature and electron-pressure columns, the power spectra before and after and the
// suppression S(k) = P_bcm / P_dmo (table and SVG plot), gas density, temperature and electron
// pressure meshes and a Compton-y map, and a summary.
#include "commands.hpp"
#include "common.hpp"

#include "io/atomic_file.hpp"
#include "io/baryon_outputs.hpp"
#include "io/fields.hpp"
#include "io/format.hpp"
#include "io/halos.hpp"
#include "io/snapshot.hpp"
#include "io/svg_plot.hpp"
#include "io/tables.hpp"
#include "io/text_file.hpp"
#include "pm/analysis/power_spectrum.hpp"
#include "pm/baryons/baryonify.hpp"
#include "pm/cosmology/cosmology.hpp"
#include "pm/force/painter.hpp"
#include "pm/particles/migrate.hpp"

#include <Kokkos_Core.hpp>

#include <cmath>
#include <filesystem>
#include <sstream>

namespace caustic {

namespace {

namespace fs = std::filesystem;

// Parameters of a snapshot without a /Parameters TOML (another code's): the header's box,
// particle count and cosmology.
std::string parametersFromHeader(const SnapshotHeader& h) {
  const int n = static_cast<int>(std::lround(std::cbrt(double(h.total_particles))));
  std::ostringstream t;
  t.precision(17);
  t << "[simulation]\nbox = " << h.box << "\nparticles = " << n << "\nmesh = " << 2 * n
    << "\n[cosmology]\n";
  if (h.omega_m > 0)
    t << "Omega_m = " << h.omega_m << "\n";
  if (h.omega_b > 0)
    t << "Omega_b = " << h.omega_b << "\n";
  if (h.hubble > 0)
    t << "h = " << h.hubble << "\n";
  return t.str();
}

} // namespace

int runBaryonifyCommand(RunContext& ctx, const BaryonifyOptions& opt) {
  const Comm& comm = ctx.comm();
  // Input checks and the parameters before anything is written.
  SnapshotHeader h;
  Particles parts;
  {
    PhaseTimer t(ctx, "read_snapshot");
    parts = readSnapshot(opt.snapshot, comm, h);
  }
  const int np = static_cast<int>(std::lround(std::cbrt(double(h.total_particles))));
  if (static_cast<std::uint64_t>(np) * np * np != h.total_particles)
    throw ParamError("snapshot " + opt.snapshot + ": " + std::to_string(h.total_particles) +
                     " particles, not a cube; baryonify needs the particle grid (N^3)");
  const std::string text = h.parameters.empty() ? parametersFromHeader(h) : h.parameters;
  Params params;
  try {
    params = parseParams(text, opt.sets, comm.size(), ".",
                         opt.snapshot + (h.parameters.empty() ? " (header)" : " /Parameters"));
  } catch (const ParamError& e) {
    if (!h.parameters.empty())
      throw;
    throw ParamError(std::string(e.what()) + " (snapshot " + opt.snapshot +
                     " has no /Parameters: give what its header lacks with --set, e.g. --set "
                     "cosmology.Omega_b=0.049 --set cosmology.n_s=0.965 --set cosmology.sigma8=0.81; "
                     "n_s and sigma8 are recorded in the outputs, not used)");
  }
  if (std::abs(params.simulation.box - h.box) > 1e-9 * h.box)
    throw ParamError("snapshot " + opt.snapshot + ": /Parameters give simulation.box = " +
                     format("%g", params.simulation.box) + " but the header's BoxSize is " +
                     format("%g", h.box));
  HaloTable halos;
  {
    PhaseTimer t(ctx, "read_halos");
    halos = readHaloCatalogue(opt.halos, comm.get());
  }
  if (std::abs(halos.box - h.box) > 1e-6 * h.box || std::abs(halos.a - h.a) > 1e-6 * h.a)
    throw ParamError("halo catalogue " + opt.halos + " (BoxSize " + format("%g", halos.box) +
                     ", Time " + format("%.6f", halos.a) + ") is not of snapshot " + opt.snapshot +
                     " (BoxSize " + format("%g", h.box) + ", Time " + format("%.6f", h.a) + ")");
  const std::string stem = fs::path(opt.snapshot).stem().string();
  const std::string dir =
      opt.output.empty() ? (fs::path(opt.snapshot).parent_path() / ("baryons_" + stem)).string()
                         : opt.output;
  std::vector<std::string> names = baryonOutputNames();
  names.push_back("baryonify_summary.json");
  {
    std::string err;
    if (ctx.root()) {
      std::error_code ec;
      if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
        err = "--output = " + dir + ": a file; expected a directory";
      for (const auto& nm : names) {
        if (!err.empty())
          break;
        const fs::path p = fs::path(dir) / nm;
        if (!opt.overwrite && fs::exists(p, ec))
          err = p.string() + " exists; pass --overwrite to replace it, or --output another directory";
        else if (fs::exists(p, ec) && fs::exists(opt.snapshot, ec) &&
                 fs::equivalent(p, opt.snapshot, ec))
          err = p.string() + " is the input snapshot; choose another --output";
      }
      if (err.empty()) {
        fs::create_directories(dir, ec);
        if (ec)
          err = "--output = " + dir + ": cannot create the directory (" + ec.message() + ")";
      }
    }
    shareError(ctx, err, "baryonify: output check");
  }

  BaryonInput in;
  in.source = "snapshot " + opt.snapshot;
  in.a = h.a;
  in.box = h.box;
  in.particle_mass = h.particle_mass;
  in.total_particles = h.total_particles;
  in.np = np;
  in.count.assign(halos.count.begin(), halos.count.end());
  in.mass = halos.mass;
  in.pos = halos.pos;
  const nlohmann::json figures = writeBaryonOutputs(
      ctx.comm(), parts, in, params, dir, [&](const std::string& ph, double s) { ctx.addTime(ph, s); },
      [&](const std::string& m) { ctx.log(m); }, nullptr);
  auto summary = ctx.summary("baryonify", params.hash()); // collective
  if (ctx.root()) {
    summary["snapshot"] = opt.snapshot;
    summary["halos"] = opt.halos;
    for (auto it = figures.begin(); it != figures.end(); ++it)
      summary[it.key()] = it.value();
    writeTextFile((fs::path(dir) / names.back()).string(), summary.dump(2) + "\n");
    ctx.log("wrote " + dir + ": snapshot_bcm.hdf5, suppression.txt/.svg, baryon_fields.hdf5, "
            "compton_y.hdf5, power_dmo.txt, power_bcm.txt");
  }
  return 0;
}

} // namespace caustic
