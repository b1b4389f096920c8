#include "signals.hpp"

namespace caustic {

namespace {
volatile std::sig_atomic_t g_signal = 0;
extern "C" void onStopSignal(int sig) {
  g_signal = sig;
}
} // namespace

void installStopHandlers() {
  std::signal(SIGINT, onStopSignal);
  std::signal(SIGTERM, onStopSignal);
  std::signal(SIGUSR1, onStopSignal);
}

bool stopRequested() {
  return g_signal != 0;
}
int stopSignal() {
  return g_signal;
}

int agreedStopSignal(MPI_Comm comm) {
  int mine = g_signal, any = 0;
  MPI_Allreduce(&mine, &any, 1, MPI_INT, MPI_MAX, comm);
  return any;
}

} // namespace caustic
