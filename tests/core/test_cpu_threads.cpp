// The CPU backend's thread count: set from --cpu-threads or the usable cores, and halved while
// other work holds the cores (host/core/cpu_threads.hpp).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <thread>
#include <vector>

#include "host/core/cpu_threads.hpp"
#include "host/core/error.hpp"

namespace mbmpo {
namespace {

TEST(CpuThreads, StartsAtTheRequestedOrUsableCount) {
  EXPECT_GE(usable_cores(), 1);
  EXPECT_LE(usable_cores(), int(std::thread::hardware_concurrency()));
#if defined(_OPENMP)
  configure_cpu_threads(3, false);
  EXPECT_EQ(cpu_threads(), 3);
  configure_cpu_threads(0, false);
  EXPECT_EQ(cpu_threads(), usable_cores());
#endif
  EXPECT_THROW(configure_cpu_threads(-1), InputError);
}

// With 4 busy threads per usable core, this thread waits for a core most of the time: the team
// drops from 4 threads. A fixed team (adaptive = false) stays as it is.
TEST(CpuThreads, TheTeamShrinksWhileOtherThreadsHoldTheCores) {
#if !defined(_OPENMP)
  GTEST_SKIP() << "built without OpenMP: the CPU backend runs one thread";
#else
  if (!std::ifstream("/proc/thread-self/schedstat")) GTEST_SKIP() << "no /proc/thread-self/schedstat on this kernel";
  std::atomic<bool> stop{false};
  std::vector<std::thread> hogs;
  for (int i = 0; i < 4 * usable_cores(); ++i) {
    hogs.emplace_back([&] {
      volatile unsigned long spin = 0;
      while (!stop.load(std::memory_order_relaxed)) spin = spin + 1;
    });
  }
  auto busy_for = [](double seconds, bool adaptive) {
    configure_cpu_threads(4, adaptive);
    int smallest = cpu_threads();
    const auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    volatile double work = 0;
    while (std::chrono::steady_clock::now() < end) {
      for (int i = 0; i < 100000; ++i) work = work + 1e-9 * i;
      rebalance_cpu_threads();
      smallest = std::min(smallest, cpu_threads());
    }
    return smallest;
  };
  const int fixed = busy_for(0.5, false);
  const int adaptive = busy_for(2.0, true);
  stop = true;
  for (auto& hog : hogs) hog.join();
  configure_cpu_threads(0);
  EXPECT_EQ(fixed, 4);
  EXPECT_LT(adaptive, 4);
#endif
}

}  // namespace
}  // namespace mbmpo
