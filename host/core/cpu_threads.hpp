// How many threads the CPU backend's parallel loops use, and how that number follows the machine.
//
// Results never depend on the number (host/core/openmp.hpp), so it may change at any point between
// parallel regions. It starts at the cores this process may use (sched_getaffinity) or at the
// user's --cpu-threads. While other processes hold the cores, a team of several threads is slow:
// each region ends at a barrier that waits for every member, and a member the scheduler has
// preempted makes the others wait a whole time slice. So at points between regions (a phase of
// the trainer, an epoch of the model fit) rebalance_cpu_threads() reads how long this thread waited
// for a core since the last look (/proc/thread-self/schedstat). When that is a large share of the
// time, it halves the team; when the waiting stops, it tries the larger team again, waiting twice
// as long after each try that finds the cores still busy.
#pragma once

namespace mbmpo {

// Cores in this process's affinity mask (at least 1).
int usable_cores();

// Sets the largest team: max_threads > 0, or usable_cores() for 0. Starts with the largest team;
// the same setting again keeps the team the governor has chosen so far.
// adaptive = false keeps the team at that size (timings that must not move, tests).
void configure_cpu_threads(int max_threads, bool adaptive = true);

// The team size parallel loops started on the calling thread use now.
int cpu_threads();

// Between parallel regions, on the thread that runs them: adjusts the team to the waiting seen
// since the last call. Calls closer together than a tenth of a second return at once.
void rebalance_cpu_threads();

}  // namespace mbmpo
