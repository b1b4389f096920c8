#pragma once
// SIGINT and SIGTERM request a clean stop at the next step boundary.
#include <csignal>

namespace caustic {

void installStopHandlers();
bool stopRequested();
int stopSignal(); // the signal received, 0 if none

} // namespace caustic
