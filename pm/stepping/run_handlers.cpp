#include "pm/stepping/run_handlers.hpp"

#include "pm/core/comm.hpp"

#include <string>

namespace caustic {

namespace {
// Number of particles with a non-finite coordinate or momentum on this rank.
template <class R> std::size_t countNonFinite(const BasicParticles<R>& parts) {
  auto x = parts.x;
  auto p = parts.p;
  std::size_t bad = 0;
  Kokkos::parallel_reduce(
      "caustic::NonFiniteCheck", Kokkos::RangePolicy<>(0, parts.size()),
      KOKKOS_LAMBDA(const std::size_t i, std::size_t& b) {
        bool ok = true;
        for (int c = 0; c < 3; ++c)
          ok = ok && km::isfinite(x(i, c)) && km::isfinite(p(i, c));
        b += ok ? 0 : 1;
      },
      bad);
  return bad;
}
} // namespace

void NonFiniteCheck::afterStep(const StepInfo& info) {
  std::size_t bad = info.particles.visit([](const auto& parts) { return countNonFinite(parts); });
  std::size_t anybad = 0;
  mpiCheck(MPI_Allreduce(&bad, &anybad, 1, MPI_UINT64_T, MPI_SUM, info.comm), "NonFiniteCheck");
  if (anybad)
    throw NonFiniteState(std::to_string(anybad) +
                         " particle(s) with a non-finite position or momentum after step " +
                         std::to_string(info.step) + " (a = " + std::to_string(info.a) + ")");
}

void StepTimer::endOfStep(const StepInfo& info) {
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - _t0).count();
  double dtmax = 0.0;
  mpiCheck(MPI_Allreduce(&dt, &dtmax, 1, MPI_DOUBLE, MPI_MAX, info.comm), "StepTimer");
  _spent += dtmax;
  _last = {info.step, info.steps_total, info.a, dtmax,
           _spent / (info.step - info.first + 1) * (info.steps_total - info.step)};
}

void CheckpointWriter::write(const StepInfo& info) {
  _c.write(info.step, info.state);
  ++_written;
  _last = std::chrono::steady_clock::now();
}

void CheckpointWriter::endOfStep(const StepInfo& info) {
  if (!_c.write || info.step >= info.steps_total)
    return;
  int due = _c.every_steps > 0 && info.step % _c.every_steps == 0;
  if (_c.every_seconds > 0 &&
      std::chrono::duration<double>(std::chrono::steady_clock::now() - _last).count() >=
          _c.every_seconds)
    due = 1;
  int anydue = 0; // clocks differ between ranks: one decision for all
  mpiCheck(MPI_Allreduce(&due, &anydue, 1, MPI_INT, MPI_MAX, info.comm), "CheckpointWriter");
  if (anydue)
    write(info);
}

bool CheckpointWriter::onStop(const StepInfo& info) {
  // The checkpoint keeps the state as it is (p possibly ahead), so that a resume repeats the
  // uninterrupted run; before any step of this run there is nothing new to keep.
  if (!_c.on_stop || !_c.write || info.step < info.first)
    return false;
  write(info);
  return true;
}

} // namespace caustic
