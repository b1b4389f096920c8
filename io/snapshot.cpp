#include "io/snapshot.hpp"

#include "io/atomic_file.hpp"
#include "io/hdf5_util.hpp"
#include "io/particle_attributes.hpp"
#include "pm/core/profiling.hpp"

#include <toml++/toml.h>

#include <cmath>
#include <functional>
#include <cstdio>
#include <vector>

namespace caustic {

namespace {

// Critical density today in 1e10 Msun/h per (Mpc/h)^3.
constexpr double kRhoCrit = 27.75366;

// Writes a (n_total x ncomp) dataset collectively; this rank's rows start at `offset`.
void writeRows(hid_t file, const std::string& name, hid_t mem_type, hid_t file_type,
               const void* data, std::uint64_t n_total, std::uint64_t n_local, std::uint64_t offset,
               int ncomp, const std::string& units, const std::string& ctx) {
  const hsize_t gdims[2] = {n_total, static_cast<hsize_t>(ncomp)};
  const hsize_t ldims[2] = {n_local, static_cast<hsize_t>(ncomp)};
  const hsize_t start[2] = {offset, 0};
  h5::writeBlock(file, name, mem_type, file_type, data, ncomp > 1 ? 2 : 1, gdims, start, ldims,
                 units, ctx);
}

// One year [s]: the Julian year, as the yr of yt/unyt and astropy.
constexpr double kSecondsPerYear = 3.15576e7;

} // namespace

void writeUnitAttributes(hid_t obj, const std::string& ctx) {
  h5::attr(obj, "UnitLength_in_cm", kUnitLengthInCm, ctx);
  h5::attr(obj, "UnitMass_in_g", kUnitMassInG, ctx);
  h5::attr(obj, "UnitVelocity_in_cm_per_s", kUnitVelocityInCmPerS, ctx);
}

double cosmicTimeGyr(const CosmologyParams& c, double a) {
  // t = 1/H0 int_0^a da' / (a' E(a')); with a' = x^2 the integrand 2 x^2 / sqrt(a'^3 E^2) is
  // smooth at 0. Simpson's rule.
  auto f = [&](double x) {
    const double a1 = x * x;
    // a^3 E^2 = Omega_m + a^3 Omega_de(a)
    const double de3 =
        (1.0 - c.Omega_m) * std::pow(a1, -3.0 * (c.w0 + c.wa)) * std::exp(-3.0 * c.wa * (1.0 - a1));
    return 2.0 * x * x / std::sqrt(c.Omega_m + de3);
  };
  const int n = 2000;
  const double xa = std::sqrt(a), dx = xa / n;
  double sum = f(0.0) + f(xa);
  for (int i = 1; i < n; ++i)
    sum += (i % 2 ? 4.0 : 2.0) * f(i * dx);
  const double hubble_time_gyr = kUnitLengthInCm / (100.0 * kUnitVelocityInCmPerS) / c.h /
                                 (1e9 * kSecondsPerYear); // 1/H0 [Gyr]
  return hubble_time_gyr * sum * dx / 3.0;
}

// Every run parameter as an attribute "section.key" of `group`.
void writeParameters(hid_t group, const Params& params, const std::string& ctx) {
  h5::attr(group, "toml", params.toml, ctx);
  h5::attr(group, "parameter_hash", params.hash(), ctx);
  const toml::table root = toml::parse(params.toml);
  // Nested tables ([gravity.correction], [emulators.NAME]) become dotted names too.
  std::function<void(const toml::table&, const std::string&)> flatten =
      [&](const toml::table& t, const std::string& prefix) {
        for (auto&& [k, v] : t) {
          const std::string name = prefix + std::string(k.str());
          if (auto sub = v.as_table())
            flatten(*sub, name + ".");
          else if (prefix.empty())
            continue; // top-level keys outside sections do not exist in a parameter file
          else if (auto x = v.as_floating_point())
            h5::attr(group, name, x->get(), ctx);
          else if (auto i = v.as_integer())
            h5::attr(group, name, static_cast<std::int64_t>(i->get()), ctx);
          else if (auto b = v.as_boolean())
            h5::attr(group, name, static_cast<std::int64_t>(b->get()), ctx);
          else if (auto s = v.as_string())
            h5::attr(group, name, s->get(), ctx);
          else if (auto a = v.as_array()) {
            std::vector<double> vals;
            for (auto& e : *a)
              vals.push_back(e.value<double>().value_or(NAN));
            h5::attr(group, name, vals, ctx);
          }
        }
      };
  flatten(root, "");
}

double particleMass(const Params& params) {
  const double L = params.simulation.box;
  const double n = params.simulation.particles;
  return params.cosmology.Omega_m * kRhoCrit * L * L * L / (n * n * n);
}

std::string readParametersToml(std::int64_t file, const std::string& ctx) {
  if (H5Lexists(file, "Parameters", H5P_DEFAULT) <= 0)
    return "";
  h5::Handle par(h5::check(H5Gopen2(file, "Parameters", H5P_DEFAULT), ctx + ": open /Parameters"),
                 H5Gclose);
  return H5Aexists(par, "toml") > 0 ? h5::readStringAttr(par, "toml", ctx) : "";
}

SnapshotLattice snapshotLattice(const SnapshotHeader& header, const std::string& path) {
  const auto total = header.total_particles;
  SnapshotLattice l;
  l.n = static_cast<int>(std::lround(std::cbrt(static_cast<double>(total))));
  if (total == 0 || static_cast<std::uint64_t>(l.n) * l.n * l.n != total)
    throw std::runtime_error(path + ": " + std::to_string(total) +
                             " particles are not a cubic lattice (N^3)");
  if (header.parameters.empty())
    throw std::runtime_error(path + ": no /Parameters/toml (the lattice offset is unknown); "
                                    "expected a snapshot written by caustic run");
  l.offset = parseParams(header.parameters, {}, 1, ".", path + ":/Parameters/toml")
                 .simulation.lattice_offset;
  return l;
}

double latticeOffset(const Params& params) { return params.simulation.lattice_offset; }

template <class R>
void writeSnapshot(const std::string& path, const Comm& comm, const BasicParticles<R>& parts,
                   const SnapshotInfo& info, const Params& params) {
  ScopedRegion region("caustic::writeSnapshot");
  using h5::check;
  using h5::Handle;
  const std::string ctx = "writeSnapshot(" + path + ")";

  const std::uint64_t n_local = parts.size();
  std::uint64_t offset = 0, n_total = 0;
  mpiCheck(MPI_Exscan(&n_local, &offset, 1, MPI_UINT64_T, MPI_SUM, comm.get()), ctx.c_str());
  if (comm.rank() == 0)
    offset = 0;
  mpiCheck(MPI_Allreduce(&n_local, &n_total, 1, MPI_UINT64_T, MPI_SUM, comm.get()), ctx.c_str());

  h5::writeParallelFile(
      path, comm.get(),
      [&](hid_t file) {
        {
          Handle hdr = h5::createGroup(file, "Header", ctx);
          const auto& c = params.cosmology;
          std::vector<std::uint64_t> npart(6, 0);
          npart[1] = n_total;
          std::vector<std::uint32_t> high(6, 0);
          high[1] = static_cast<std::uint32_t>(n_total >> 32);
          std::vector<double> mass(6, 0.0);
          mass[1] = info.particle_mass;
          h5::attr(hdr, "BoxSize", params.simulation.box, ctx);
          h5::attr(hdr, "Time", info.a, ctx);
          h5::attr(hdr, "Redshift", 1.0 / info.a - 1.0, ctx);
          h5::attr(hdr, "NumPart_ThisFile", npart, ctx);
          h5::attr(hdr, "NumPart_Total", npart, ctx);
          h5::attr(hdr, "NumPart_Total_HighWord", high, ctx);
          h5::attr(hdr, "MassTable", mass, ctx);
          h5::attr(hdr, "NumFilesPerSnapshot", std::int64_t(1), ctx);
          h5::attr(hdr, "Omega0", c.Omega_m, ctx);
          h5::attr(hdr, "OmegaLambda", 1.0 - c.Omega_m, ctx);
          h5::attr(hdr, "OmegaBaryon", c.Omega_b, ctx);
          h5::attr(hdr, "HubbleParam", c.h, ctx);
          h5::attr(hdr, "Flag_DoublePrecision", std::int64_t(params.output.double_precision), ctx);
          writeUnitAttributes(hdr, ctx);
          h5::attr(hdr, "Code", std::string("Caustic"), ctx);
          // OWLS/EAGLE: the cosmic time; yt's OWLS reader takes its current_time from it.
          h5::attr(hdr, "Time_GYR", cosmicTimeGyr(c, info.a), ctx);
        }
        {
          Handle par = h5::createGroup(file, "Parameters", ctx);
          writeParameters(par, params, ctx);
        }
        {
          // The unit system as OWLS/EAGLE snapshots carry it. yt 4.1.4 reads units from a file
          // only here (its Gadget HDF5 reader assumes kpc/h and 1e10 Msun/h whatever the file
          // says); with /Constants it recognises the layout (yt/frontends/owls).
          Handle units = h5::createGroup(file, "Units", ctx);
          const double t = kUnitLengthInCm / kUnitVelocityInCmPerS;
          writeUnitAttributes(units, ctx);
          h5::attr(units, "UnitTime_in_s", t, ctx);
          h5::attr(units, "UnitDensity_in_cgs",
                   kUnitMassInG / (kUnitLengthInCm * kUnitLengthInCm * kUnitLengthInCm), ctx);
          h5::attr(units, "UnitEnergy_in_cgs",
                   kUnitMassInG * kUnitVelocityInCmPerS * kUnitVelocityInCmPerS, ctx);
          h5::attr(units, "UnitPressure_in_cgs", kUnitMassInG / (kUnitLengthInCm * t * t), ctx);
          Handle consts = h5::createGroup(file, "Constants", ctx);
          h5::attr(consts, "CM_PER_MPC", kUnitLengthInCm, ctx);
          h5::attr(consts, "SOLAR_MASS", kSolarMassInG, ctx);
          h5::attr(consts, "SEC_PER_YEAR", kSecondsPerYear, ctx);
          h5::attr(consts, "SEC_PER_MEGAYEAR", 1e6 * kSecondsPerYear, ctx);
          h5::attr(consts, "HUBBLE", 100.0 * kUnitVelocityInCmPerS / kUnitLengthInCm, ctx);
        }
        Handle pt = h5::createGroup(file, "PartType1", ctx);
        auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
        auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
        auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
        // Gadget velocity: v_pec / sqrt(a) [km/s], v_pec = a dx/dt = p / a [100 km/s].
        const double vfac = 100.0 / (info.a * std::sqrt(info.a));
        const bool dbl = params.output.double_precision;
        // float32 columns: a position that rounds up to the box size is written as 0.
        const double box = params.simulation.box;
        const hid_t ft = dbl ? H5T_IEEE_F64LE : H5T_IEEE_F32LE;
        // Converted in pieces: the buffer is bounded, not a copy of every column.
        auto columns = [&](auto zero) {
          using V = decltype(zero);
          h5::writeRowsInPieces<V>(
              pt, "Coordinates", ft, 3, n_total, n_local, offset, comm.get(),
              [&](std::uint64_t first, std::uint64_t count, V* out) {
                for (std::uint64_t i = 0; i < count; ++i)
                  for (int c = 0; c < 3; ++c)
                    out[3 * i + c] = storedCoordinate<V>(hx(first + i, c), box);
              },
              "Mpc/h (comoving)", ctx);
          h5::writeRowsInPieces<V>(
              pt, "Velocities", ft, 3, n_total, n_local, offset, comm.get(),
              [&](std::uint64_t first, std::uint64_t count, V* out) {
                for (std::uint64_t i = 0; i < count; ++i)
                  for (int c = 0; c < 3; ++c)
                    out[3 * i + c] = static_cast<V>(hp(first + i, c) * vfac);
              },
              "km/s (peculiar velocity / sqrt(a), Gadget convention)", ctx);
        };
        if (dbl)
          columns(0.0);
        else
          columns(0.0f);
        writeRows(pt, "ParticleIDs", H5T_NATIVE_UINT64, H5T_STD_U64LE, hid.data(), n_total, n_local,
                  offset, 1, "Lagrangian lattice index (i*N + j)*N + k", ctx);
        writeParticleAttributes(pt, parts, n_total, offset, ctx);
      },
      n_total * ((params.output.double_precision ? 56 : 32) + attributeBytesPerParticle(parts)));
}

template void writeSnapshot(const std::string&, const Comm&, const Particles&, const SnapshotInfo&,
                            const Params&);
template void writeSnapshot(const std::string&, const Comm&, const SingleParticles&,
                            const SnapshotInfo&, const Params&);

} // namespace caustic

namespace caustic {

using h5::readAttr;
using h5::readRows;

Particles readSnapshot(const std::string& path, const Comm& comm, SnapshotHeader& header) {
  const std::string ctx = "reading snapshot " + path;
  h5::Handle file = h5::openParallelFile(path, comm.get(), ctx);
  if (H5Lexists(file, "Header", H5P_DEFAULT) <= 0)
    throw std::runtime_error(ctx + ": no /Header group (not a Gadget-layout snapshot)");
  h5::Handle hdr(h5::check(H5Gopen2(file, "Header", H5P_DEFAULT), ctx + ": open /Header"),
                 H5Gclose);
  header.box = readAttr(hdr, "BoxSize", ctx);
  header.a = readAttr(hdr, "Time", ctx);
  header.particle_mass = readAttr(hdr, "MassTable", ctx);
  header.omega_m = H5Aexists(hdr, "Omega0") > 0 ? readAttr(hdr, "Omega0", ctx) : 0.0;
  header.omega_lambda = H5Aexists(hdr, "OmegaLambda") > 0 ? readAttr(hdr, "OmegaLambda", ctx) : 0.0;
  header.hubble = H5Aexists(hdr, "HubbleParam") > 0 ? readAttr(hdr, "HubbleParam", ctx) : 0.0;
  header.omega_b = H5Aexists(hdr, "OmegaBaryon") > 0 ? readAttr(hdr, "OmegaBaryon", ctx) : 0.0;
  header.total_particles = static_cast<std::uint64_t>(readAttr(hdr, "NumPart_Total", ctx));
  header.parameters = readParametersToml(file, ctx);
  if (!(header.box > 0) || !(header.a > 0) || header.total_particles == 0)
    throw std::runtime_error(ctx + ": header has BoxSize = " + std::to_string(header.box) +
                             ", Time = " + std::to_string(header.a) + ", NumPart_Total[1] = " +
                             std::to_string(header.total_particles) + "; all must be positive");
  const std::uint64_t N = header.total_particles, size = comm.size(), r = comm.rank();
  const std::uint64_t start = N * r / size, count = N * (r + 1) / size - start;
  Particles parts(count, count + count / 20 + 16);
  std::vector<double> x(3 * count), v(3 * count);
  std::vector<std::uint64_t> ids(count);
  readRows(file, "PartType1/Coordinates", H5T_NATIVE_DOUBLE, x.data(), start, count, 3, N, ctx);
  readRows(file, "PartType1/Velocities", H5T_NATIVE_DOUBLE, v.data(), start, count, 3, N, ctx);
  readRows(file, "PartType1/ParticleIDs", H5T_NATIVE_UINT64, ids.data(), start, count, 1, N, ctx);
  auto hx = Kokkos::create_mirror_view(parts.x);
  auto hp = Kokkos::create_mirror_view(parts.p);
  auto hid = Kokkos::create_mirror_view(parts.id);
  const double pfac = header.a * std::sqrt(header.a) / 100.0;
  for (std::uint64_t i = 0; i < count; ++i) {
    for (int c = 0; c < 3; ++c) {
      if (!std::isfinite(x[3 * i + c]))
        throw std::runtime_error(ctx + ": non-finite coordinate of particle " +
                                 std::to_string(ids[i]));
      hx(i, c) = periodicWrap(x[3 * i + c], header.box);
      hp(i, c) = v[3 * i + c] * pfac;
    }
    hid(i) = ids[i];
  }
  Kokkos::deep_copy(parts.x, hx);
  Kokkos::deep_copy(parts.p, hp);
  Kokkos::deep_copy(parts.id, hid);
  return parts;
}

} // namespace caustic
