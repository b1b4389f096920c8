#pragma once
// SIGINT, SIGTERM and SIGUSR1 request a clean stop at the next step boundary. SLURM sends
// SIGTERM (or a chosen signal, --signal) to every task before a time limit; Open MPI's mpirun
// forwards SIGUSR1 to the ranks but answers SIGTERM/SIGINT by killing the job itself.
#include <mpi.h>

#include <csignal>

namespace caustic {

void installStopHandlers();
bool stopRequested();
int stopSignal(); // the signal received, 0 if none
// Collective: the signal any rank received (0 if none). A signal sent to one rank stops all
// and is reported with its number.
int agreedStopSignal(MPI_Comm comm);

} // namespace caustic
