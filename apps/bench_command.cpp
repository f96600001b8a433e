// `mbmpo bench`: throughput benchmarks; prints a table and optionally writes JSON rows.
#include <iomanip>
#include <iostream>
#include <memory>

#include "apps/commands.hpp"
#include "bench/env_bench.hpp"
#include "host/core/atomic_file.hpp"
#include "host/core/error.hpp"

namespace mbmpo::app {

namespace {
struct BenchOptions {
  std::string suite = "all";
  std::string scale = "paper";
  std::string json;
};

int run_bench(const BenchOptions& options) {
  std::vector<nlohmann::json> rows;
  if (options.suite == "env" || options.suite == "all") {
    auto env = bench::run_env_suite(options.scale);
    rows.insert(rows.end(), env.begin(), env.end());
  }
  std::cout << std::left << std::setw(40) << "case" << std::setw(8) << "device" << std::right
            << std::setw(12) << "median ms" << std::setw(16) << "items/s" << std::setw(10) << "ratio" << "\n";
  for (const auto& r : rows) {
    std::cout << std::left << std::setw(40) << (r["suite"].get<std::string>() + "/" + r["case"].get<std::string>())
              << std::setw(8) << r["device"].get<std::string>() << std::right << std::fixed
              << std::setprecision(3) << std::setw(12) << r["median_s"].get<double>() * 1e3
              << std::setprecision(0) << std::setw(16) << r["items_per_s"].get<double>();
    if (r.contains("ratio_vs_mj_step_loop"))
      std::cout << std::setprecision(2) << std::setw(10) << r["ratio_vs_mj_step_loop"].get<double>();
    std::cout << "\n";
  }
  if (!options.json.empty()) write_file_atomically(options.json, nlohmann::json(rows).dump(2) + "\n");
  return 0;
}
}  // namespace

void add_bench_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand("bench", "Throughput benchmarks (table on stdout, optional JSON rows)");
  bench->add_option("--suite", options->suite, "Which suite")
      ->capture_default_str()->check(CLI::IsMember({"env", "all"}));
  bench->add_option("--scale", options->scale, "Problem sizes")
      ->capture_default_str()->check(CLI::IsMember({"small", "paper"}));
  bench->add_option("--json", options->json, "Also write the rows to this JSON file");
  bench->callback([options, &action] { action = [options] { return run_bench(*options); }; });
}

}  // namespace mbmpo::app
