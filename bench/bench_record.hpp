// One timed benchmark case: repeated runs after a warm-up, summarised by median and spread.
// Rows follow the suite's JSON schema {suite, case, device, scale, median_s, p10_s, p90_s,
// items_per_s, ...}.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace mbmpo::bench {

struct Timing {
  double median_s, p10_s, p90_s;
};

inline Timing summarize(std::vector<double> seconds) {
  std::sort(seconds.begin(), seconds.end());
  const auto at = [&](double q) { return seconds[static_cast<std::size_t>(q * (seconds.size() - 1) + 0.5)]; };
  return {at(0.5), at(0.1), at(0.9)};
}

// Runs `body` once to warm up, then `repeats` times, timing each with the host clock.
inline Timing time_host(int repeats, const std::function<void()>& body) {
  body();
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return summarize(std::move(seconds));
}

inline nlohmann::json row(const std::string& suite, const std::string& name, const std::string& device,
                          const std::string& scale, const Timing& t, double items) {
  return {{"suite", suite}, {"case", name},       {"device", device},
          {"scale", scale}, {"median_s", t.median_s}, {"p10_s", t.p10_s},
          {"p90_s", t.p90_s}, {"items_per_s", items / t.median_s}};
}

}  // namespace mbmpo::bench
