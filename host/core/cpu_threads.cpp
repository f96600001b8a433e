#include "host/core/cpu_threads.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <mutex>

#include "host/core/error.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace mbmpo {
namespace {

using Clock = std::chrono::steady_clock;

// Shares of wall-clock time this thread spent runnable but waiting for a core. Alone on its
// cores a thread waits well under 5 %; two teams of two threads on two cores wait 30-50 %.
constexpr double kBusyShare = 0.15;
constexpr double kFreeShare = 0.05;
constexpr double kMinInterval_s = 0.1;
constexpr double kFirstRetry_s = 1.0;
constexpr double kLongestRetry_s = 60.0;

struct Governor {
  std::mutex mutex;
  int max_threads = 1;
  int threads = 1;
  bool adaptive = false;
  bool configured = false;
  bool measuring = false;  // a previous sample exists
  Clock::time_point last;
  double last_wait_s = 0;
  double retry_wait_s = kFirstRetry_s;
  Clock::time_point retry_at;
};

Governor& governor() {
  static Governor g;
  return g;
}

// Seconds this thread has waited on a run queue, or a negative value where the kernel does not say.
double thread_run_delay_s() {
  std::ifstream in("/proc/thread-self/schedstat");
  double on_cpu_ns = 0, waiting_ns = -1;
  if (!(in >> on_cpu_ns >> waiting_ns)) return -1;
  return waiting_ns * 1e-9;
}

void apply(Governor& g, int threads) {
  g.threads = threads;
#if defined(_OPENMP)
  omp_set_num_threads(threads);
#endif
}

}  // namespace

int usable_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

void configure_cpu_threads(int max_threads, bool adaptive) {
  MBMPO_CHECK_INPUT(max_threads >= 0, "cpu threads must be >= 0 (0: every usable core), got ", max_threads);
  Governor& g = governor();
  std::lock_guard<std::mutex> lock(g.mutex);
  const int largest = max_threads > 0 ? max_threads : usable_cores();
  // The same setting again (each Trainer::run call, every seed of a group, each iteration) keeps
  // what the governor has learnt about the machine.
  if (g.configured && largest == g.max_threads && adaptive == g.adaptive) {
    apply(g, g.threads);  // the team size is per calling thread in OpenMP
    return;
  }
  g.configured = true;
  g.max_threads = largest;
  g.adaptive = adaptive;
  g.measuring = false;
  g.retry_wait_s = kFirstRetry_s;
  apply(g, g.max_threads);
}

int cpu_threads() {
#if defined(_OPENMP)
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void rebalance_cpu_threads() {
  Governor& g = governor();
  std::lock_guard<std::mutex> lock(g.mutex);
  if (!g.adaptive || g.max_threads == 1) return;
  const Clock::time_point now = Clock::now();
  if (g.measuring && std::chrono::duration<double>(now - g.last).count() < kMinInterval_s) return;
  const double wait_s = thread_run_delay_s();
  if (wait_s < 0) return;  // no schedstat: keep the team as configured
  if (!g.measuring) {
    g.measuring = true;
    g.last = now;
    g.last_wait_s = wait_s;
    return;
  }
  const double share = (wait_s - g.last_wait_s) / std::chrono::duration<double>(now - g.last).count();
  g.last = now;
  g.last_wait_s = wait_s;
  if (share > kBusyShare && g.threads > 1) {
    apply(g, std::max(1, g.threads / 2));
    g.retry_at = now + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(g.retry_wait_s));
    g.retry_wait_s = std::min(2 * g.retry_wait_s, kLongestRetry_s);
  } else if (share < kFreeShare && g.threads < g.max_threads && now >= g.retry_at) {
    apply(g, std::min(g.max_threads, 2 * g.threads));
  } else if (share < kFreeShare && g.threads == g.max_threads) {
    g.retry_wait_s = kFirstRetry_s;  // the cores are free again: the next contention starts afresh
  }
}

}  // namespace mbmpo
