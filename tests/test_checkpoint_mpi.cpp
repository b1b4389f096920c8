// Checkpoints at 1, 2 and 3 ranks: a round trip restores every rank's particles in order with
// the integrator state; a checkpoint read by another number of ranks (here one) holds the same
// particles; the checksum sees a single flipped bit; old checkpoints are pruned.
#include "helpers.hpp"
#include "io/checkpoint.hpp"
#include "pm/particles/migrate.hpp"
#include "small_params.hpp"

#include <gtest/gtest.h>

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
