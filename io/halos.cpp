#include "io/halos.hpp"

#include "io/atomic_file.hpp"
#include "io/format.hpp"
#include "io/hdf5_util.hpp"
#include "io/snapshot.hpp"

#include <cmath>
#include <cstdio>
#include <sstream>

namespace caustic {

std::string haloCatalogueName(const std::string& stem) {
  std::string s = stem;
  for (char& c : s)
    if (c == '.')
      c = 'p';
  return s + ".0.hdf5";
}

void writeHaloCatalogue(const std::string& path, MPI_Comm comm, const HaloCatalogue& cat,
                        const HaloMeta& meta, const Params* params) {
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  const std::string ctx = "writeHaloCatalogue(" + path + ")";
  const std::uint64_t ng = cat.size(), nids = cat.members.size();
  const hsize_t mine = rank == 0 ? ng : 0, mine_ids = rank == 0 ? nids : 0;
  // Gadget velocities: v_pec / sqrt(a) [km/s] from p [100 km/s]: v_pec = 100 p / a.
  const double vfac = 100.0 / (meta.a * std::sqrt(meta.a)), sfac = 100.0 / meta.a;
  std::vector<std::uint32_t> len(ng);
  std::vector<float> mass(ng), pos(3 * ng), vel(3 * ng), disp(ng), radius(ng);
  std::vector<std::uint64_t> offset(ng, 0);
  for (std::uint64_t g = 0; g < ng; ++g) {
    len[g] = static_cast<std::uint32_t>(cat.count[g]);
    mass[g] = static_cast<float>(cat.count[g] * meta.particle_mass);
    for (int c = 0; c < 3; ++c) {
      pos[3 * g + c] = static_cast<float>(cat.pos[3 * g + c]);
      vel[3 * g + c] = static_cast<float>(cat.vel[3 * g + c] * vfac);
    }
    disp[g] = static_cast<float>(cat.sigma_v[g] * sfac);
    radius[g] = static_cast<float>(cat.radius[g]);
    if (!cat.member_offset.empty())
      offset[g] = cat.member_offset[g];
  }
  h5::writeParallelFile(path, comm, [&](hid_t file) {
    {
      h5::Handle hdr = h5::createGroup(file, "Header", ctx);
      h5::attr(hdr, "BoxSize", meta.box, ctx);
      h5::attr(hdr, "Time", meta.a, ctx);
      h5::attr(hdr, "Redshift", 1.0 / meta.a - 1.0, ctx);
      h5::attr(hdr, "Ngroups_ThisFile", std::int64_t(ng), ctx);
      h5::attr(hdr, "Ngroups_Total", std::int64_t(ng), ctx);
      h5::attr(hdr, "Nids_ThisFile", std::int64_t(nids), ctx);
      h5::attr(hdr, "Nids_Total", std::int64_t(nids), ctx);
      h5::attr(hdr, "NumFiles", std::int64_t(1), ctx);
      h5::attr(hdr, "LinkingLength", cat.linking_length, ctx);
      h5::attr(hdr, "LinkingLengthParameter", meta.b, ctx);
      h5::attr(hdr, "MinGroupSize", std::int64_t(meta.min_particles), ctx);
      h5::attr(hdr, "ParticleMass", meta.particle_mass, ctx);
      // Gadget group-file conventions read by yt's Gadget FoF reader: the cosmology and the
      // (absent) subhaloes, with Gadget-3 (Nsubgroups) and Gadget-4 (Nsubhalos) names.
      if (meta.hubble > 0) {
        h5::attr(hdr, "Omega0", meta.omega_m, ctx);
        h5::attr(hdr, "OmegaLambda", meta.omega_lambda, ctx);
        h5::attr(hdr, "HubbleParam", meta.hubble, ctx);
      }
      h5::attr(hdr, "Nsubgroups_ThisFile", std::int64_t(0), ctx);
      h5::attr(hdr, "Nsubgroups_Total", std::int64_t(0), ctx);
      h5::attr(hdr, "Nsubhalos_ThisFile", std::int64_t(0), ctx);
      h5::attr(hdr, "Nsubhalos_Total", std::int64_t(0), ctx);
      writeUnitAttributes(hdr, ctx);
    }
    if (params) {
      h5::Handle par = h5::createGroup(file, "Parameters", ctx);
      writeParameters(par, *params, ctx);
    }
    h5::Handle grp = h5::createGroup(file, "Group", ctx);
    const hsize_t g1[1] = {ng}, l1[1] = {mine}, s0[2] = {0, 0};
    const hsize_t g3[2] = {ng, 3}, l3[2] = {mine, 3};
    h5::writeBlock(grp, "GroupLen", H5T_NATIVE_UINT32, H5T_STD_U32LE, len.data(), 1, g1, s0, l1,
                   "particles", ctx);
    h5::writeBlock(grp, "GroupMass", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, mass.data(), 1, g1, s0, l1,
                   "1e10 Msun/h", ctx);
    h5::writeBlock(grp, "GroupPos", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, pos.data(), 2, g3, s0, l3,
                   "Mpc/h (comoving centre of mass)", ctx);
    h5::writeBlock(grp, "GroupVel", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, vel.data(), 2, g3, s0, l3,
                   "km/s (mean peculiar velocity / sqrt(a), Gadget convention)", ctx);
    h5::writeBlock(grp, "GroupVelDisp", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, disp.data(), 1, g1, s0,
                   l1, "km/s (1D peculiar velocity dispersion)", ctx);
    h5::writeBlock(grp, "GroupRadius", H5T_NATIVE_FLOAT, H5T_IEEE_F32LE, radius.data(), 1, g1, s0,
                   l1, "Mpc/h (rms distance of members from the centre)", ctx);
    h5::writeBlock(grp, "GroupMinID", H5T_NATIVE_UINT64, H5T_STD_U64LE, cat.label.data(), 1, g1, s0,
                   l1, "smallest member ParticleID (the group label)", ctx);
    // No subhaloes; the group is what marks a Gadget group file (with Group and Header).
    h5::createGroup(file, "Subhalo", ctx);
    if (!cat.member_offset.empty()) {
      h5::writeBlock(grp, "GroupOffset", H5T_NATIVE_UINT64, H5T_STD_U64LE, offset.data(), 1, g1, s0,
                     l1, "index of the first member in /IDs/ID", ctx);
      h5::Handle ids = h5::createGroup(file, "IDs", ctx);
      const hsize_t gi[1] = {nids}, li[1] = {mine_ids};
      h5::writeBlock(ids, "ID", H5T_NATIVE_UINT64, H5T_STD_U64LE, cat.members.data(), 1, gi, s0, li,
                     "ParticleIDs of group members", ctx);
    }
  });
}

HaloTable readHaloCatalogue(const std::string& path, MPI_Comm comm) {
  const std::string ctx = "reading halo catalogue " + path;
  h5::Handle file = h5::openParallelFile(path, comm, ctx);
  if (H5Lexists(file, "Header", H5P_DEFAULT) <= 0 || H5Lexists(file, "Group", H5P_DEFAULT) <= 0)
    throw std::runtime_error(ctx + ": no /Header or /Group (not a Gadget-layout group catalogue)");
  h5::Handle hdr(h5::check(H5Gopen2(file, "Header", H5P_DEFAULT), ctx + ": open /Header"),
                 H5Gclose);
  HaloTable t;
  t.box = h5::readAttr(hdr, "BoxSize", ctx);
  t.a = h5::readAttr(hdr, "Time", ctx);
  t.particle_mass = H5Aexists(hdr, "ParticleMass") > 0 ? h5::readAttr(hdr, "ParticleMass", ctx) : 0;
  const double ng = h5::readAttr(hdr, "Ngroups_Total", ctx);
  if (!(t.box > 0) || !(t.a > 0) || !(ng >= 0))
    throw std::runtime_error(ctx + ": header has BoxSize = " + std::to_string(t.box) +
                             ", Time = " + std::to_string(t.a) + ", Ngroups_Total = " +
                             std::to_string(ng) + "; expected positive, positive, >= 0");
  const std::uint64_t n = static_cast<std::uint64_t>(ng);
  t.count.resize(n);
  t.mass.resize(n);
  t.pos.resize(3 * n);
  h5::readRows(file, "Group/GroupLen", H5T_NATIVE_UINT32, t.count.data(), 0, n, 1, n, ctx);
  h5::readRows(file, "Group/GroupMass", H5T_NATIVE_DOUBLE, t.mass.data(), 0, n, 1, n, ctx);
  h5::readRows(file, "Group/GroupPos", H5T_NATIVE_DOUBLE, t.pos.data(), 0, n, 3, n, ctx);
  if (H5Aexists(hdr, "LinkingLengthParameter") > 0)
    t.linking_b = h5::readAttr(hdr, "LinkingLengthParameter", ctx);
  if (H5Aexists(hdr, "MinGroupSize") > 0)
    t.min_group = static_cast<std::uint64_t>(h5::readAttr(hdr, "MinGroupSize", ctx));
  t.parameters = readParametersToml(file, ctx);
  if (H5Lexists(file, "IDs", H5P_DEFAULT) > 0) {
    std::uint64_t total = 0;
    for (auto c : t.count)
      total += c;
    if (H5Aexists(hdr, "Nids_Total") > 0 &&
        static_cast<std::uint64_t>(h5::readAttr(hdr, "Nids_Total", ctx)) != total)
      throw std::runtime_error(ctx + ": Nids_Total differs from the sum of GroupLen (" +
                               std::to_string(total) + ")");
    t.member_offset.resize(n);
    t.members.resize(total);
    h5::readRows(file, "Group/GroupOffset", H5T_NATIVE_UINT64, t.member_offset.data(), 0, n, 1, n,
                 ctx);
    h5::readRows(file, "IDs/ID", H5T_NATIVE_UINT64, t.members.data(), 0, total, 1, total, ctx);
    for (std::uint64_t g = 0; g < n; ++g)
      if (t.member_offset[g] + t.count[g] > total)
        throw std::runtime_error(ctx + ": group " + std::to_string(g) + " has GroupOffset " +
                                 std::to_string(t.member_offset[g]) + " + GroupLen past the " +
                                 std::to_string(total) + " IDs");
  }
  for (std::uint64_t g = 0; g < n; ++g) {
    if (!(t.mass[g] > 0) || !std::isfinite(t.mass[g]))
      throw std::runtime_error(ctx + ": group " + std::to_string(g) + " has GroupMass = " +
                               std::to_string(t.mass[g]) + "; expected a positive mass");
    for (int c = 0; c < 3; ++c) {
      double& x = t.pos[3 * g + c];
      if (!std::isfinite(x))
        throw std::runtime_error(ctx + ": group " + std::to_string(g) +
                                 " has a non-finite GroupPos");
      x -= t.box * std::floor(x / t.box); // float positions may sit a rounding off the box
      if (x >= t.box)
        x = 0.0;
    }
  }
  return t;
}

void writeMassFunction(const std::string& path, const HaloCatalogue& cat, const HaloMeta& meta) {
  const double unit = 1e10; // catalogue masses in 1e10 Msun/h; the table in Msun/h
  const double V = meta.box * meta.box * meta.box;
  const double mmin = meta.min_particles * meta.particle_mass * unit;
  const double dlog10 = 0.2, dln = dlog10 * std::log(10.0);
  std::vector<double> n, msum;
  for (std::size_t g = 0; g < cat.size(); ++g) {
    const double m = cat.count[g] * meta.particle_mass * unit;
    const int b = static_cast<int>(std::floor(std::log10(m / mmin) / dlog10));
    if (b < 0)
      continue;
    if (b >= static_cast<int>(n.size())) {
      n.resize(b + 1, 0.0);
      msum.resize(b + 1, 0.0);
    }
    n[b] += 1;
    msum[b] += m;
  }
  std::ostringstream out;
  out << "# caustic FoF halo mass function at a = " << meta.a << " (z = " << 1.0 / meta.a - 1.0
      << ")\n"
      << "# b = " << meta.b << ", at least " << meta.min_particles << " particles, particle mass "
      << meta.particle_mass * unit << " Msun/h, box " << meta.box << " Mpc/h\n"
      << "# bins of " << dlog10 << " dex from " << mmin << " Msun/h; error: Poisson\n"
      << "# columns: M_center [Msun/h]  M_mean [Msun/h]  dn/dlnM [(h/Mpc)^3]  error [(h/Mpc)^3]  "
         "groups\n";
  for (std::size_t b = 0; b < n.size(); ++b) {
    const double mc = mmin * std::pow(10.0, (b + 0.5) * dlog10);
    out << format("%.6e %.6e %.6e %.6e %.0f\n", mc, n[b] > 0 ? msum[b] / n[b] : mc, n[b] / V / dln,
                  std::sqrt(n[b]) / V / dln, n[b]);
  }
  writeTextFile(path, out.str());
}

} // namespace caustic
