#include "io/checkpoint.hpp"

#include "io/format.hpp"
#include "io/hdf5_util.hpp"
#include "io/particle_attributes.hpp"
#include "io/snapshot.hpp"
#include "pm/core/profiling.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <regex>

namespace caustic {

namespace {
constexpr const char* kFormat = "caustic-checkpoint-1";
// With particle attributes (/Particles/Attributes, in the checksum): readers of format 1 would
// not see them, and so refuse the file instead of taking its checksum for corruption.
constexpr const char* kFormatWithAttributes = "caustic-checkpoint-2";

KOKKOS_INLINE_FUNCTION std::uint64_t mix(std::uint64_t h, std::uint64_t v) {
  // splitmix64 finaliser of h ^ v
  std::uint64_t z = h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

KOKKOS_INLINE_FUNCTION std::uint64_t bits(double d) {
  std::uint64_t u;
  std::memcpy(&u, &d, sizeof u);
  return u;
}
KOKKOS_INLINE_FUNCTION std::uint64_t bits(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

// HDF5 memory and file types of the particle precision R, and its name in settings.
template <class R> struct Precision;
template <> struct Precision<double> {
  static hid_t memory() { return H5T_NATIVE_DOUBLE; }
  static hid_t file() { return H5T_IEEE_F64LE; }
  static constexpr const char* name = "double";
};
template <> struct Precision<float> {
  static hid_t memory() { return H5T_NATIVE_FLOAT; }
  static hid_t file() { return H5T_IEEE_F32LE; }
  static constexpr const char* name = "single";
};

// Bytes per value of a dataset's elements.
std::size_t datasetValueSize(hid_t file, const char* name, const std::string& ctx) {
  h5::Handle d(h5::check(H5Dopen2(file, name, H5P_DEFAULT), ctx + ": open " + name), H5Dclose);
  h5::Handle t(h5::check(H5Dget_type(d), ctx + ": type of " + name), H5Tclose);
  return H5Tget_size(t);
}

std::uint64_t readU64Attr(hid_t obj, const char* name, const std::string& ctx) {
  if (H5Aexists(obj, name) <= 0)
    throw std::runtime_error(ctx + ": attribute " + name + " missing");
  h5::Handle a(h5::check(H5Aopen(obj, name, H5P_DEFAULT), ctx + ": open " + name), H5Aclose);
  std::uint64_t v = 0;
  if (H5Aread(a, H5T_NATIVE_UINT64, &v) < 0)
    throw std::runtime_error(ctx + ": cannot read attribute " + name);
  return v;
}
} // namespace

namespace {
template <class R>
KOKKOS_INLINE_FUNCTION std::uint64_t
particleHash(const Kokkos::View<R* [3]>& x, const Kokkos::View<R* [3]>& p,
             const Kokkos::View<std::uint64_t*>& id, std::size_t i) {
  std::uint64_t h = mix(0x636175737469630ULL, id(i));
  for (int c = 0; c < 3; ++c) {
    h = mix(h, bits(x(i, c)));
    h = mix(h, bits(p(i, c)));
  }
  return h;
}
} // namespace

template <class R> std::uint64_t particleChecksum(const BasicParticles<R>& parts) {
  auto x = parts.x;
  auto p = parts.p;
  auto id = parts.id;
  std::uint64_t sum = 0;
  if (parts.attributes().empty()) {
    Kokkos::parallel_reduce(
        "caustic::particleChecksum", Kokkos::RangePolicy<>(0, parts.size()),
        KOKKOS_LAMBDA(const std::size_t i, std::uint64_t& s) { s += particleHash(x, p, id, i); },
        sum);
    return sum;
  }
  // The attributes' bytes (by name, in 8-byte words, the last one zero-padded) join the hash.
  const auto& attrs = parts.attributes();
  Kokkos::parallel_reduce(
      "caustic::particleChecksumWithAttributes",
      Kokkos::RangePolicy<Kokkos::DefaultHostExecutionSpace>(0, parts.size()),
      [&](const std::size_t i, std::uint64_t& s) {
        std::uint64_t h = particleHash(x, p, id, i);
        for (const auto& a : attrs) {
          const std::size_t w = a.rowBytes();
          const std::byte* row = a.bytes() + i * w;
          for (std::size_t b = 0; b < w; b += 8) {
            std::uint64_t word = 0;
            std::memcpy(&word, row + b, std::min<std::size_t>(8, w - b));
            h = mix(h, word);
          }
        }
        s += h;
      },
      sum);
  return sum;
}

std::vector<std::string> listCheckpoints(const std::string& dir) {
  std::vector<std::pair<long, std::string>> found;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec))
    return {};
  const std::regex re("checkpoint_step([0-9]+)\\.h5");
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, re))
      found.emplace_back(std::stol(m[1].str()), e.path().string());
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (const auto& f : found)
    out.push_back(f.second);
  return out;
}

template <class R>
std::string writeCheckpoint(const std::string& dir, const Comm& comm,
                            const BasicParticles<R>& parts, int step, int steps_total,
                            const StepperState& state, const Params& params, int keep) {
  ScopedRegion region("caustic::writeCheckpoint");
  const std::string path = dir + "/" + format("checkpoint_step%05d.h5", step);
  const std::string ctx = "writing checkpoint " + path;
  const int nranks = comm.size(), rank = comm.rank();
  unsigned long long local = parts.size(), offset = 0, total = 0;
  mpiCheck(MPI_Exscan(&local, &offset, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm.get()),
           ctx.c_str());
  if (rank == 0)
    offset = 0;
  mpiCheck(MPI_Allreduce(&local, &total, 1, MPI_UNSIGNED_LONG_LONG, MPI_SUM, comm.get()),
           ctx.c_str());
  std::vector<std::uint64_t> counts(nranks);
  std::uint64_t l64 = local;
  mpiCheck(MPI_Allgather(&l64, 1, MPI_UINT64_T, counts.data(), 1, MPI_UINT64_T, comm.get()),
           ctx.c_str());
  std::uint64_t sum = particleChecksum(parts), checksum = 0;
  mpiCheck(MPI_Allreduce(&sum, &checksum, 1, MPI_UINT64_T, MPI_SUM, comm.get()), ctx.c_str());
  // Row-major copies (the views' layout depends on the Kokkos backend).
  std::vector<R> vx(3 * local), vp(3 * local);
  std::vector<std::uint64_t> vid(local);
  {
    auto hx = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
    auto hp = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
    auto hid = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
    for (std::size_t i = 0; i < local; ++i) {
      for (int c = 0; c < 3; ++c) {
        vx[3 * i + c] = hx(i, c);
        vp[3 * i + c] = hp(i, c);
      }
      vid[i] = hid(i);
    }
  }
  h5::writeParallelFile(
      path, comm.get(),
      [&](hid_t file) {
        {
          h5::Handle hdr = h5::createGroup(file, "Header", ctx);
          h5::attr(hdr, "Format",
                   std::string(parts.attributes().empty() ? kFormat : kFormatWithAttributes), ctx);
          h5::attr(hdr, "Step", std::int64_t(step), ctx);
          h5::attr(hdr, "StepsTotal", std::int64_t(steps_total), ctx);
          h5::attr(hdr, "Time", state.a, ctx);
          h5::attr(hdr, "KickAhead", state.ahead, ctx);
          h5::attr(hdr, "NextTime", state.next, ctx);
          h5::attr(hdr, "Spacing", std::int64_t(state.spacing), ctx);
          h5::attr(hdr, "ParameterHash", params.hash(), ctx);
          h5::attr(hdr, "NumRanks", std::int64_t(nranks), ctx);
          h5::attr(hdr, "NumPart_Total", std::vector<std::uint64_t>{total}, ctx);
          h5::attr(hdr, "Checksum", std::vector<std::uint64_t>{checksum}, ctx);
        }
        {
          h5::Handle par = h5::createGroup(file, "Parameters", ctx);
          writeParameters(par, params, ctx);
        }
        h5::Handle g = h5::createGroup(file, "Particles", ctx);
        const hsize_t g2[2] = {total, 3}, s2[2] = {offset, 0}, l2[2] = {local, 3};
        const hid_t mt = Precision<R>::memory(), ft = Precision<R>::file();
        h5::writeBlock(g, "Coordinates", mt, ft, vx.data(), 2, g2, s2, l2, "Mpc/h", ctx);
        h5::writeBlock(g, "Momenta", mt, ft, vp.data(), 2, g2, s2, l2,
                       "FastPM p = a^2 dx/dt [H0 Mpc/h]", ctx);
        const hsize_t g1[1] = {total}, s1[1] = {offset}, l1[1] = {local};
        h5::writeBlock(g, "ParticleIDs", H5T_NATIVE_UINT64, H5T_STD_U64LE, vid.data(), 1, g1, s1,
                       l1, "", ctx);
        const hsize_t gr[1] = {hsize_t(nranks)}, sr[1] = {hsize_t(rank)}, lr[1] = {1};
        h5::writeBlock(g, "RankCounts", H5T_NATIVE_UINT64, H5T_STD_U64LE, &counts[rank], 1, gr, sr,
                       lr, "", ctx);
        if (!parts.attributes().empty()) {
          h5::Handle ag = h5::createGroup(g, "Attributes", ctx);
          writeParticleAttributes(ag, parts, total, offset, ctx);
        }
      },
      total * (6 * sizeof(R) + 8 + attributeBytesPerParticle(parts)) + 8 * nranks);
  // Keep the newest `keep` (this one included).
  if (rank == 0 && keep > 0) {
    const auto all = listCheckpoints(dir);
    for (std::size_t i = keep; i < all.size(); ++i)
      std::filesystem::remove(all[i]);
  }
  comm.barrier();
  return path;
}

template <class R>
BasicParticles<R> readCheckpoint(const std::string& path, const Comm& comm, CheckpointInfo& info) {
  ScopedRegion region("caustic::readCheckpoint");
  const std::string ctx = "reading checkpoint " + path;
  h5::Handle file = h5::openParallelFile(path, comm.get(), ctx);
  if (H5Lexists(file, "Header", H5P_DEFAULT) <= 0)
    throw std::runtime_error(ctx + ": no /Header (not a checkpoint)");
  h5::Handle hdr(h5::check(H5Gopen2(file, "Header", H5P_DEFAULT), ctx), H5Gclose);
  const std::string format = h5::readStringAttr(hdr, "Format", ctx);
  if (format != kFormat && format != kFormatWithAttributes)
    throw std::runtime_error(ctx + ": unknown format " + format + " (expected " +
                             std::string(kFormat) + " or " + kFormatWithAttributes + ")");
  info.path = path;
  info.step = static_cast<int>(h5::readAttr(hdr, "Step", ctx));
  info.steps_total = static_cast<int>(h5::readAttr(hdr, "StepsTotal", ctx));
  info.state.a = h5::readAttr(hdr, "Time", ctx);
  info.state.ahead = h5::readAttr(hdr, "KickAhead", ctx);
  info.state.next = h5::readAttr(hdr, "NextTime", ctx);
  info.state.spacing = static_cast<int>(h5::readAttr(hdr, "Spacing", ctx));
  info.parameter_hash = h5::readStringAttr(hdr, "ParameterHash", ctx);
  info.nranks = static_cast<int>(h5::readAttr(hdr, "NumRanks", ctx));
  info.total_particles = readU64Attr(hdr, "NumPart_Total", ctx);
  const std::uint64_t checksum = readU64Attr(hdr, "Checksum", ctx);
  const std::uint64_t N = info.total_particles;
  const int nranks = comm.size(), rank = comm.rank();
  std::uint64_t start = 0, count = 0;
  if (info.nranks == nranks) {
    std::vector<std::uint64_t> counts(nranks);
    h5::readRows(file, "Particles/RankCounts", H5T_NATIVE_UINT64, counts.data(), 0, nranks, 1,
                 nranks, ctx);
    std::uint64_t sum = 0;
    for (int r = 0; r < nranks; ++r) {
      if (r == rank) {
        start = sum;
        count = counts[r];
      }
      sum += counts[r];
    }
    if (sum != N)
      throw std::runtime_error(ctx + ": RankCounts add up to " + std::to_string(sum) +
                               ", not NumPart_Total = " + std::to_string(N));
  } else {
    start = N * rank / nranks;
    count = N * (rank + 1) / nranks - start;
  }
  const std::size_t stored = datasetValueSize(file, "Particles/Coordinates", ctx);
  if (stored != sizeof(R))
    throw ParamError(ctx + ": its particles are stored in " + (stored == 4 ? "single" : "double") +
                     " precision; this run has simulation.particle_precision = \"" +
                     Precision<R>::name + "\" (resume with the setting it was written with)");
  std::vector<R> vx(3 * count), vp(3 * count);
  std::vector<std::uint64_t> vid(count);
  BasicParticles<R> parts(count, count + count / 8 + 64);
  // Every rank reads its own rows; a failure on some ranks only must not leave the others
  // waiting in the checksum reduction: agree first, then all throw.
  std::string err;
  try {
    h5::readRows(file, "Particles/Coordinates", Precision<R>::memory(), vx.data(), start, count, 3,
                 N, ctx);
    h5::readRows(file, "Particles/Momenta", Precision<R>::memory(), vp.data(), start, count, 3, N,
                 ctx);
    h5::readRows(file, "Particles/ParticleIDs", H5T_NATIVE_UINT64, vid.data(), start, count, 1, N,
                 ctx);
    if (format == kFormatWithAttributes) {
      h5::Handle ag(h5::check(H5Gopen2(file, "Particles/Attributes", H5P_DEFAULT),
                              ctx + ": open /Particles/Attributes"),
                    H5Gclose);
      readParticleAttributes(ag, parts, start, N, ctx);
    }
  } catch (const std::exception& e) {
    err = e.what();
  }
  int bad = err.empty() ? 0 : 1, anybad = 0;
  mpiCheck(MPI_Allreduce(&bad, &anybad, 1, MPI_INT, MPI_MAX, comm.get()), ctx.c_str());
  if (anybad)
    throw std::runtime_error(
        err.empty() ? ctx + ": the particle data are unreadable on another rank" : err);
  auto hx = Kokkos::create_mirror_view(parts.x);
  auto hp = Kokkos::create_mirror_view(parts.p);
  auto hid = Kokkos::create_mirror_view(parts.id);
  for (std::size_t i = 0; i < count; ++i) {
    for (int c = 0; c < 3; ++c) {
      hx(i, c) = vx[3 * i + c];
      hp(i, c) = vp[3 * i + c];
    }
    hid(i) = vid[i];
  }
  Kokkos::deep_copy(parts.x, hx);
  Kokkos::deep_copy(parts.p, hp);
  Kokkos::deep_copy(parts.id, hid);
  std::uint64_t sum = particleChecksum(parts), all = 0;
  mpiCheck(MPI_Allreduce(&sum, &all, 1, MPI_UINT64_T, MPI_SUM, comm.get()), ctx.c_str());
  if (all != checksum)
    throw std::runtime_error(ctx + ": checksum mismatch (the file is corrupted)");
  return parts;
}

#define CAUSTIC_CHECKPOINT(R)                                                                      \
  template std::uint64_t particleChecksum(const BasicParticles<R>&);                               \
  template std::string writeCheckpoint(const std::string&, const Comm&, const BasicParticles<R>&,  \
                                       int, int, const StepperState&, const Params&, int);         \
  template BasicParticles<R> readCheckpoint(const std::string&, const Comm&, CheckpointInfo&);
CAUSTIC_CHECKPOINT(double)
CAUSTIC_CHECKPOINT(float)
#undef CAUSTIC_CHECKPOINT

} // namespace caustic
