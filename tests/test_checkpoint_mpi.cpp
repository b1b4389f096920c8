// Checkpoints at 1, 2 and 3 ranks: a round trip restores every rank's particles in order with
// the integrator state; a checkpoint read by another number of ranks (here one) holds the same
// particles; the checksum sees a single flipped bit; old checkpoints are pruned. Particle
// attributes: saved and restored (format 2, in the checksum), written into snapshots; files
// without attributes are as before. Columns written in collective pieces (uneven rank counts,
// a rank without rows) land in order.
#include "helpers.hpp"
#include "io/checkpoint.hpp"
#include "io/fields.hpp"
#include "io/hdf5_util.hpp"
#include "io/snapshot.hpp"
#include "pm/particles/migrate.hpp"
#include "small_params.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>

using namespace caustic;
using namespace caustic::test;

namespace {

Particles someParticles(const SlabDecomposition& d) {
  Particles all = randomParticles(2000, 20.0, 5);
  auto p = Kokkos::create_mirror_view(all.p);
  for (std::size_t i = 0; i < all.size(); ++i)
    for (int c = 0; c < 3; ++c)
      p(i, c) = std::sin(0.37 * i + c) * 3.0;
  Kokkos::deep_copy(all.p, p);
  Particles mine = share(all, d.comm().rank(), d.comm().size());
  migrate(mine, d);
  return mine;
}

std::string tempDir() {
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  // Every rank is done with the previous test's files (a test may end reading them on some
  // ranks while rank 0 moves on) before rank 0 removes them.
  MPI_Barrier(MPI_COMM_WORLD);
  const std::string dir = ::testing::TempDir() + "caustic_checkpoint_test";
  if (rank == 0) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  return dir;
}
} // namespace

TEST(Checkpoint, RoundTripAtTheSameRankCount) {
  const Params params = parseParams(smallParamsToml(20.0, 8, 8, 9), {}, 1);
  SlabDecomposition d(MPI_COMM_WORLD, 8, 20.0);
  Particles parts = someParticles(d);
  const std::string dir = tempDir();
  const StepperState st{0.5, 0.125, 0.6, 1};
  const std::string path = writeCheckpoint(dir, d.comm(), parts, 7, 9, st, params, 2);
  CheckpointInfo info;
  Particles back = readCheckpoint(path, d.comm(), info);
  EXPECT_EQ(info.step, 7);
  EXPECT_EQ(info.steps_total, 9);
  EXPECT_EQ(info.state.a, 0.5);
  EXPECT_EQ(info.state.ahead, 0.125);
  EXPECT_EQ(info.state.next, 0.6);
  EXPECT_EQ(info.state.spacing, 1);
  EXPECT_EQ(info.parameter_hash, params.hash());
  EXPECT_EQ(info.total_particles, 2000u);
  ASSERT_EQ(back.size(), parts.size());
  auto x0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
  auto x1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), back.x);
  auto p0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.p);
  auto p1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), back.p);
  auto i0 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.id);
  auto i1 = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), back.id);
  int mismatches = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    mismatches += i0(i) != i1(i);
    for (int c = 0; c < 3; ++c)
      mismatches += std::memcmp(&x0(i, c), &x1(i, c), sizeof(double)) != 0 ||
                    std::memcmp(&p0(i, c), &p1(i, c), sizeof(double)) != 0;
  }
  EXPECT_EQ(mismatches, 0); // bit for bit, in the same order

  // Pruning: two more checkpoints with keep = 2 leave the newest two.
  writeCheckpoint(dir, d.comm(), parts, 8, 9, st, params, 2);
  writeCheckpoint(dir, d.comm(), parts, 9, 9, st, params, 2);
  const auto files = listCheckpoints(dir);
  ASSERT_EQ(files.size(), 2u);
  EXPECT_NE(files[0].find("checkpoint_step00009.h5"), std::string::npos);
  EXPECT_NE(files[1].find("checkpoint_step00008.h5"), std::string::npos);
}

TEST(Checkpoint, SinglePrecisionParticlesRoundTripAndAreNotReadAsDouble) {
  // A run with simulation.particle_precision = "single" checkpoints its float bits (float32
  // datasets), restores them bit for bit with the same checksum, and a reader expecting double
  // particles refuses the file naming the setting (and the other way round).
  const Params params = parseParams(smallParamsToml(20.0, 8, 8, 9), {}, 1);
  SlabDecomposition d(MPI_COMM_WORLD, 8, 20.0);
  const Particles dbl = someParticles(d);
  SingleParticles parts = convertParticles<float>(dbl);
  const std::string dir = tempDir();
  const StepperState st{0.5, 0.125, 0.6, 1};
  const std::string path = writeCheckpoint(dir, d.comm(), parts, 3, 9, st, params, 2);
  CheckpointInfo info;
  const SingleParticles back = readCheckpoint<float>(path, d.comm(), info);
  ASSERT_EQ(back.size(), parts.size());
  EXPECT_EQ(info.total_particles, 2000u);
  EXPECT_EQ(particleChecksum(back), particleChecksum(parts));
  int mismatches = 0;
  for (std::size_t i = 0; i < parts.size(); ++i) {
    mismatches += parts.id(i) != back.id(i);
    for (int c = 0; c < 3; ++c)
      mismatches += std::memcmp(&parts.x(i, c), &back.x(i, c), sizeof(float)) != 0 ||
                    std::memcmp(&parts.p(i, c), &back.p(i, c), sizeof(float)) != 0;
  }
  EXPECT_EQ(mismatches, 0);
  try {
    readCheckpoint<double>(path, d.comm(), info);
    ADD_FAILURE() << "a single-precision checkpoint was read as double";
  } catch (const ParamError& e) {
    EXPECT_NE(std::string(e.what()).find("particle_precision = \"double\""), std::string::npos)
        << e.what();
  }
  const std::string dpath = writeCheckpoint(dir, d.comm(), dbl, 4, 9, st, params, 2);
  EXPECT_THROW(readCheckpoint<float>(dpath, d.comm(), info), ParamError);
}

TEST(Checkpoint, ReadByOneRankHoldsTheSameParticles) {
  const Params params = parseParams(smallParamsToml(20.0, 8, 8, 9), {}, 1);
  SlabDecomposition d(MPI_COMM_WORLD, 8, 20.0);
  Particles parts = someParticles(d);
  const std::string dir = tempDir();
  const std::string path =
      writeCheckpoint(dir, d.comm(), parts, 3, 9, StepperState{0.3, 0, 0, 0}, params, 1);
  const auto ref = gatherById(parts, MPI_COMM_WORLD); // on every rank
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm one;
  MPI_Comm_split(MPI_COMM_WORLD, rank == 0 ? 0 : MPI_UNDEFINED, 0, &one);
  if (rank == 0) {
    {
      Comm c(one);
      CheckpointInfo info;
      Particles all = readCheckpoint(path, c, info);
      ASSERT_EQ(all.size(), 2000u);
      const auto got = gatherById(all, one);
      ASSERT_EQ(got.size(), ref.size());
      for (const auto& [id, v] : ref)
        EXPECT_EQ(got.at(id), v) << "particle " << id;
    }
    MPI_Comm_free(&one);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(Checkpoint, ChecksumSeesOneFlippedBit) {
  SlabDecomposition d(MPI_COMM_WORLD, 8, 20.0);
  Particles parts = someParticles(d);
  auto total = [&] {
    std::uint64_t s = particleChecksum(parts), all = 0;
    MPI_Allreduce(&s, &all, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    return all;
  };
  const std::uint64_t before = total();
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == d.comm().size() - 1 && parts.size() > 0) {
    auto x = Kokkos::create_mirror_view_and_copy(Kokkos::HostSpace(), parts.x);
    std::uint64_t u;
    std::memcpy(&u, &x(0, 1), 8);
    u ^= 1; // the last bit of the mantissa
    std::memcpy(&x(0, 1), &u, 8);
    Kokkos::deep_copy(parts.x, x);
  }
  int any = 0, local = parts.size() > 0 && rank == d.comm().size() - 1;
  MPI_Allreduce(&local, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any) {
    EXPECT_NE(total(), before);
  }
}

namespace {
// Attributes of several types, from the IDs.
void addAttributes(Particles& parts) {
  auto s = parts.addAttribute<std::int32_t>("Species");
  auto m = parts.addAttribute<double>("Masses", 1, "1e10 Msun/h");
  auto o = parts.addAttribute<float>("Outputs", 2);
  auto h = parts.addAttribute<std::uint64_t>("HaloID");
  for (std::size_t i = 0; i < parts.size(); ++i) {
    const std::uint64_t id = parts.id(i);
    s(i, 0) = static_cast<std::int32_t>(id % 5) - 2;
    m(i, 0) = 1.0 / (1.0 + double(id));
    o(i, 0) = 0.25f * float(id);
    o(i, 1) = -float(id);
    h(i, 0) = id * 1000003u;
  }
}

std::string formatOf(const std::string& path) {
  h5::Handle f = h5::openParallelFile(path, MPI_COMM_SELF, "test");
  h5::Handle hdr(H5Gopen2(f, "Header", H5P_DEFAULT), H5Gclose);
  return h5::readStringAttr(hdr, "Format", "test");
}

// The names in a group of a file (opened by this rank alone).
std::vector<std::string> linksOf(const std::string& path, const char* group) {
  h5::Handle f = h5::openParallelFile(path, MPI_COMM_SELF, "test");
  std::vector<std::string> names;
  if (H5Lexists(f, group, H5P_DEFAULT) <= 0)
    return names;
  h5::Handle g(H5Gopen2(f, group, H5P_DEFAULT), H5Gclose);
  H5G_info_t info;
  H5Gget_info(g, &info);
  for (hsize_t k = 0; k < info.nlinks; ++k) {
    char name[256];
    H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, k, name, sizeof name, H5P_DEFAULT);
    names.emplace_back(name);
  }
  return names;
}
} // namespace

TEST(Checkpoint, AttributesRoundTripAndJoinTheChecksum) {
  const Params params = parseParams(smallParamsToml(20.0, 8, 8, 9), {}, 1);
  SlabDecomposition d(MPI_COMM_WORLD, 8, 20.0);
  Particles parts = someParticles(d);
  const std::string dir = tempDir();
  const StepperState st{0.5, 0.125, 0.6, 1};
  // Without attributes: format 1 and no attribute group, as before attributes existed.
  const std::string plain = writeCheckpoint(dir, d.comm(), parts, 1, 9, st, params, 5);
  EXPECT_EQ(formatOf(plain), "caustic-checkpoint-1");
  EXPECT_EQ(linksOf(plain, "Particles"),
            (std::vector<std::string>{"Coordinates", "Momenta", "ParticleIDs", "RankCounts"}));

  auto sum = [&](const Particles& ps) {
    std::uint64_t s = particleChecksum(ps), all = 0;
    MPI_Allreduce(&s, &all, 1, MPI_UINT64_T, MPI_SUM, MPI_COMM_WORLD);
    return all;
  };
  const std::uint64_t without = sum(parts);
  addAttributes(parts);
  EXPECT_NE(sum(parts), without); // the attributes are in the checksum
  const std::string path = writeCheckpoint(dir, d.comm(), parts, 2, 9, st, params, 5);
  EXPECT_EQ(formatOf(path), "caustic-checkpoint-2");
  EXPECT_EQ(linksOf(path, "Particles/Attributes"),
            (std::vector<std::string>{"HaloID", "Masses", "Outputs", "Species"}));

  CheckpointInfo info;
  Particles back = readCheckpoint(path, d.comm(), info);
  ASSERT_EQ(back.size(), parts.size());
  ASSERT_EQ(back.attributes().size(), 4u);
  int mismatches = 0;
  for (std::size_t k = 0; k < parts.attributes().size(); ++k) {
    const auto& a = parts.attributes()[k];
    const auto& b = back.attributes()[k];
    EXPECT_EQ(b.name(), a.name());
    EXPECT_EQ(b.type(), a.type());
    EXPECT_EQ(b.components(), a.components());
    EXPECT_EQ(b.units(), a.units());
    mismatches += std::memcmp(a.bytes(), b.bytes(), parts.size() * a.rowBytes()) != 0;
  }
  EXPECT_EQ(mismatches, 0); // in the same order, bit for bit
  EXPECT_EQ(sum(back), sum(parts));

  // One bit of one attribute of one particle: the checksum sees it.
  if (d.comm().rank() == 0 && back.size() > 0)
    back.attribute<std::int32_t>("Species")(0, 0) ^= 1;
  int changed = d.comm().rank() == 0 && back.size() > 0, any = 0;
  MPI_Allreduce(&changed, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  if (any) {
    EXPECT_NE(sum(back), sum(parts));
  }

  // Read by one rank: every particle with its attributes.
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm one;
  MPI_Comm_split(MPI_COMM_WORLD, rank == 0 ? 0 : MPI_UNDEFINED, 0, &one);
  if (rank == 0) {
    {
      Comm c(one);
      CheckpointInfo i1;
      Particles all = readCheckpoint(path, c, i1);
      ASSERT_EQ(all.size(), 2000u);
      auto m = all.attribute<double>("Masses");
      auto o = all.attribute<float>("Outputs");
      auto s = all.attribute<std::int32_t>("Species");
      auto h = all.attribute<std::uint64_t>("HaloID");
      int wrong = 0;
      for (std::size_t i = 0; i < all.size(); ++i) {
        const std::uint64_t id = all.id(i);
        wrong += m(i, 0) != 1.0 / (1.0 + double(id)) || o(i, 0) != 0.25f * float(id) ||
                 o(i, 1) != -float(id) || s(i, 0) != static_cast<std::int32_t>(id % 5) - 2 ||
                 h(i, 0) != id * 1000003u;
      }
      EXPECT_EQ(wrong, 0);
    }
    MPI_Comm_free(&one);
  }
  MPI_Barrier(MPI_COMM_WORLD);
}

TEST(Snapshot, AttributesAreDatasetsOfPartType1) {
  const Params params = parseParams(smallParamsToml(20.0, 8, 8, 9), {}, 1);
  SlabDecomposition d(MPI_COMM_WORLD, 8, 20.0);
  Particles parts = someParticles(d);
  const std::string dir = tempDir();
  SnapshotInfo info;
  info.a = 0.5;
  info.particle_mass = 1.0;
  info.total_particles = 2000;
  writeSnapshot(dir + "/plain.hdf5", d.comm(), parts, info, params);
  EXPECT_EQ(linksOf(dir + "/plain.hdf5", "PartType1"),
            (std::vector<std::string>{"Coordinates", "ParticleIDs", "Velocities"}));
  addAttributes(parts);
  const std::string path = dir + "/with_attributes.hdf5";
  writeSnapshot(path, d.comm(), parts, info, params);
  EXPECT_EQ(linksOf(path, "PartType1"),
            (std::vector<std::string>{"Coordinates", "HaloID", "Masses", "Outputs", "ParticleIDs",
                                      "Species", "Velocities"}));
  // Every rank reads the whole file: the values belong to the IDs of their rows.
  h5::Handle f = h5::openParallelFile(path, MPI_COMM_SELF, "test");
  std::vector<std::uint64_t> ids(2000), halo(2000);
  std::vector<double> masses(2000);
  std::vector<float> outputs(4000);
  std::vector<std::int32_t> species(2000);
  h5::readRows(f, "PartType1/ParticleIDs", H5T_NATIVE_UINT64, ids.data(), 0, 2000, 1, 2000, "t");
  h5::readRows(f, "PartType1/Masses", H5T_NATIVE_DOUBLE, masses.data(), 0, 2000, 1, 2000, "t");
  h5::readRows(f, "PartType1/Outputs", H5T_NATIVE_FLOAT, outputs.data(), 0, 2000, 2, 2000, "t");
  h5::readRows(f, "PartType1/Species", H5T_NATIVE_INT32, species.data(), 0, 2000, 1, 2000, "t");
  h5::readRows(f, "PartType1/HaloID", H5T_NATIVE_UINT64, halo.data(), 0, 2000, 1, 2000, "t");
  int wrong = 0;
  for (std::size_t i = 0; i < 2000; ++i) {
    const std::uint64_t id = ids[i];
    wrong += masses[i] != 1.0 / (1.0 + double(id)) || outputs[2 * i] != 0.25f * float(id) ||
             outputs[2 * i + 1] != -float(id) ||
             species[i] != static_cast<std::int32_t>(id % 5) - 2 || halo[i] != id * 1000003u;
  }
  EXPECT_EQ(wrong, 0);
  h5::Handle m(H5Dopen2(f, "PartType1/Masses", H5P_DEFAULT), H5Dclose);
  EXPECT_EQ(h5::readStringAttr(m, "units", "t"), "1e10 Msun/h");
  h5::Handle t(H5Dget_type(m), H5Tclose);
  EXPECT_GT(H5Tequal(t, H5T_IEEE_F64LE), 0);
  h5::Handle o(H5Dopen2(f, "PartType1/Outputs", H5P_DEFAULT), H5Dclose);
  h5::Handle os(H5Dget_space(o), H5Sclose);
  EXPECT_EQ(H5Sget_simple_extent_ndims(os), 2);
}

TEST(Hdf5, RowsWrittenInPiecesLandInOrder) {
  // Ranks hold different row counts (rank 1 none), pieces of 3 rows: every rank makes as many
  // collective writes as the largest; the file holds each rank's rows after the earlier ranks'.
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  auto rows = [](int r) { return r == 1 ? 0 : 7 + 4 * r; };
  std::uint64_t offset = 0, total = 0;
  for (int r = 0; r < size; ++r) {
    if (r < rank)
      offset += rows(r);
    total += rows(r);
  }
  const std::uint64_t mine = rows(rank);
  const std::string path = tempDir() + "/pieces.hdf5";
  int fills = 0;
  h5::writeParallelFile(path, MPI_COMM_WORLD, [&](hid_t file) {
    h5::writeRowsInPieces<float>(
        file, "vectors", H5T_IEEE_F32LE, 3, total, mine, offset, MPI_COMM_WORLD,
        [&](std::uint64_t first, std::uint64_t count, float* out) {
          ++fills;
          for (std::uint64_t i = 0; i < count; ++i)
            for (int c = 0; c < 3; ++c)
              out[3 * i + c] = float(10 * (offset + first + i) + c);
        },
        "none", "test", 3);
    h5::writeRowsInPieces<std::uint64_t>(
        file, "ids", H5T_STD_U64LE, 1, total, mine, offset, MPI_COMM_WORLD,
        [&](std::uint64_t first, std::uint64_t count, std::uint64_t* out) {
          for (std::uint64_t i = 0; i < count; ++i)
            out[i] = 1000 + offset + first + i;
        },
        "none", "test", 3);
  });
  EXPECT_EQ(fills, int((mine + 2) / 3)); // only pieces with rows are filled
  h5::Handle f = h5::openParallelFile(path, MPI_COMM_SELF, "test");
  std::vector<float> v(3 * total);
  std::vector<std::uint64_t> ids(total);
  h5::readRows(f, "vectors", H5T_NATIVE_FLOAT, v.data(), 0, total, 3, total, "t");
  h5::readRows(f, "ids", H5T_NATIVE_UINT64, ids.data(), 0, total, 1, total, "t");
  int wrong = 0;
  for (std::uint64_t i = 0; i < total; ++i) {
    wrong += ids[i] != 1000 + i;
    for (int c = 0; c < 3; ++c)
      wrong += v[3 * i + c] != float(10 * i + c);
  }
  EXPECT_EQ(wrong, 0);
}

// A field written collectively and read back by slab: every rank's planes equal the value
// written there (an independent formula of the cell), the whole-cube reader agrees, and a NaN in
// the last plane (one rank's slab) makes every rank throw, naming it.
TEST(Hdf5, FieldReadBySlabHoldsEachRanksPlanes) {
  const Params params = parseParams(smallParamsToml(20.0, 8, 8, 9), {}, 1);
  const int n = 8;
  auto d = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, n, 20.0);
  auto value = [n](int x, int y, int z) { return float(0.25 * x - 0.5 * y + z / double(n)); };
  Field<float> f(d, "written");
  const IndexBox rb = d->realBox();
  {
    auto h = Kokkos::create_mirror_view(f.real());
    for (int x = rb.lo[0]; x < rb.hi[0]; ++x)
      for (int y = 0; y < n; ++y)
        for (int z = 0; z < n; ++z)
          h(Field<float>::realIndex(x - rb.lo[0], y, z, n)) = value(x, y, z);
    Kokkos::deep_copy(f.real(), h);
  }
  const std::string dir = tempDir();
  writeField(dir + "/field.hdf5", f, "rho", "", 0.5, params);
  Field<double> g(d, "read");
  const FieldData hdr = readFieldSlab(dir + "/field.hdf5", "Fields/rho", g);
  EXPECT_EQ(hdr.n, n);
  EXPECT_DOUBLE_EQ(hdr.box, 20.0);
  EXPECT_DOUBLE_EQ(hdr.a, 0.5);
  EXPECT_TRUE(hdr.values.empty());
  const FieldData whole = readFieldData(dir + "/field.hdf5", "Fields/rho");
  auto h = Kokkos::create_mirror_view(g.real());
  Kokkos::deep_copy(h, g.real());
  int wrong = 0;
  for (int x = rb.lo[0]; x < rb.hi[0]; ++x)
    for (int y = 0; y < n; ++y)
      for (int z = 0; z < n; ++z) {
        const double v = h(Field<double>::realIndex(x - rb.lo[0], y, z, n));
        wrong += v != double(value(x, y, z));
        wrong += whole.values[(std::size_t(x) * n + y) * n + z] != value(x, y, z);
      }
  EXPECT_EQ(wrong, 0);
  // A field of another size is refused.
  auto d4 = std::make_shared<const SlabDecomposition>(MPI_COMM_WORLD, 4, 20.0);
  Field<double> small(d4, "small");
  EXPECT_THROW(readFieldSlab(dir + "/field.hdf5", "Fields/rho", small), std::runtime_error);
  // A NaN in the last plane (writeField refuses one: written into a copy by HDF5 itself).
  if (d->comm().rank() == 0) {
    std::filesystem::copy_file(dir + "/field.hdf5", dir + "/nan.hdf5");
    h5::Handle file(H5Fopen((dir + "/nan.hdf5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT), H5Fclose);
    h5::Handle ds(H5Dopen2(file, "Fields/rho", H5P_DEFAULT), H5Dclose);
    h5::Handle space(H5Dget_space(ds), H5Sclose);
    const hsize_t at[3] = {hsize_t(n - 1), 2, 5}, one[3] = {1, 1, 1};
    H5Sselect_hyperslab(space, H5S_SELECT_SET, at, nullptr, one, nullptr);
    h5::Handle mem(H5Screate_simple(3, one, nullptr), H5Sclose);
    const float nan = std::nanf("");
    ASSERT_GE(H5Dwrite(ds, H5T_NATIVE_FLOAT, mem, space, H5P_DEFAULT, &nan), 0);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  // Every rank throws, naming it.
  std::string what;
  try {
    readFieldSlab(dir + "/nan.hdf5", "Fields/rho", g);
  } catch (const std::runtime_error& e) {
    what = e.what();
  }
  EXPECT_NE(what.find("NaN or Inf"), std::string::npos) << what;
}
