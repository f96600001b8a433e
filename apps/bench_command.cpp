// `mbmpo bench`: throughput benchmarks; prints a table and optionally writes JSON rows.
#include <iomanip>
#include <iostream>
#include <memory>

#include "apps/commands.hpp"
#include "apps/path_flags.hpp"
#include "bench/env_bench.hpp"
#include "bench/model_bench.hpp"
#include "bench/policy_bench.hpp"
#include "host/core/atomic_file.hpp"
#include "host/core/backend.hpp"
#include "host/core/error.hpp"

namespace mbmpo::app {

namespace {
struct BenchOptions {
  std::string suite = "all";
  std::string scale = "paper";
  std::string device = "auto";
  std::string json;
};

bool wants(const BenchOptions& o, const char* suite) { return o.suite == suite || o.suite == "all"; }

void print_table(const std::vector<nlohmann::json>& rows) {
  std::cout << std::left << std::setw(52) << "case" << std::setw(26) << "device" << std::right
            << std::setw(12) << "median ms" << std::setw(16) << "items/s" << std::setw(10)
            << "TFLOP/s" << std::setw(9) << "% peak" << std::setw(9) << "GB/s" << std::setw(10) << "% roofl"
            << std::setw(10) << "ratio" << "\n";
  for (const auto& r : rows) {
    std::cout << std::left << std::setw(52) << (r["suite"].get<std::string>() + "/" + r["case"].get<std::string>())
              << std::setw(26) << r["device"].get<std::string>().substr(0, 25) << std::right << std::fixed
              << std::setprecision(3) << std::setw(12) << r["median_s"].get<double>() * 1e3
              << std::setprecision(0) << std::setw(16) << r["items_per_s"].get<double>();
    if (r.contains("tflops")) {
      std::cout << std::setprecision(3) << std::setw(10) << r["tflops"].get<double>() << std::setprecision(1)
                << std::setw(9) << r["pct_peak"].get<double>();
    } else {
      std::cout << std::setw(19) << "";
    }
    if (r.contains("gb_per_s")) {
      std::cout << std::setprecision(1) << std::setw(9) << r["gb_per_s"].get<double>();
    } else {
      std::cout << std::setw(9) << "";
    }
    if (r.contains("pct_roofline")) {
      std::cout << std::setprecision(1) << std::setw(10) << r["pct_roofline"].get<double>();
    } else {
      std::cout << std::setw(10) << "";
    }
    if (r.contains("ratio_vs_mj_step_loop"))
      std::cout << std::setprecision(2) << std::setw(10) << r["ratio_vs_mj_step_loop"].get<double>();
    std::cout << "\n";
  }
}

int run_bench(const BenchOptions& options) {
  if (!options.json.empty()) check_output_file("--json", options.json);
  std::vector<nlohmann::json> rows;
  auto append = [&](std::vector<nlohmann::json> more) { rows.insert(rows.end(), more.begin(), more.end()); };
  if (wants(options, "env")) append(bench::run_env_suite(options.scale == "large" ? "paper" : options.scale));
  const bool kernels = wants(options, "model_fit") || wants(options, "predict") ||
                       wants(options, "rollout") || wants(options, "inner_step") ||
                       wants(options, "meta_update") || wants(options, "iteration") || options.suite == "peak";
  if (kernels) {
    Context context(resolve_backend(parse_backend_choice(options.device)));
    const bench::Ceiling ceiling = bench::measure_ceiling(context, options.scale);
    const std::string device = bench::device_label(context);
    nlohmann::json gemm = {{"suite", "peak"}, {"case", ceiling.gemm_case}, {"device", device},
                           {"scale", options.scale}, {"median_s", 0.0}, {"p10_s", 0.0}, {"p90_s", 0.0},
                           {"items_per_s", 0.0}, {"tflops", ceiling.gemm_tflops}, {"pct_peak", 100.0}};
    nlohmann::json copy = {{"suite", "peak"}, {"case", ceiling.copy_case}, {"device", device},
                           {"scale", options.scale}, {"median_s", 0.0}, {"p10_s", 0.0}, {"p90_s", 0.0},
                           {"items_per_s", 0.0}, {"gb_per_s", ceiling.copy_gb_per_s}};
    rows.push_back(gemm);
    rows.push_back(copy);
    if (wants(options, "model_fit")) append(bench::run_model_fit_suite(context, options.scale, ceiling));
    if (wants(options, "predict")) append(bench::run_predict_suite(context, options.scale, ceiling));
    if (wants(options, "rollout")) append(bench::run_rollout_suite(context, options.scale, ceiling));
    if (wants(options, "inner_step")) append(bench::run_inner_step_suite(context, options.scale, ceiling));
    if (wants(options, "meta_update")) append(bench::run_meta_update_suite(context, options.scale, ceiling));
    if (wants(options, "iteration")) append(bench::run_iteration_suite(context, options.scale));
    std::cout << "ceilings on " << device << ": " << ceiling.gemm_case << " " << std::setprecision(3)
              << ceiling.gemm_tflops << " TFLOP/s, " << ceiling.copy_case << " " << ceiling.copy_gb_per_s
              << " GB/s\n";
  }
  print_table(rows);
  if (!options.json.empty()) write_file_atomically(options.json, nlohmann::json(rows).dump(2) + "\n");
  return 0;
}
}  // namespace

void add_bench_command(CLI::App& app, Action& action) {
  auto options = std::make_shared<BenchOptions>();
  CLI::App* bench = app.add_subcommand("bench", "Throughput benchmarks (table on stdout, optional JSON rows)");
  bench->add_option("--suite", options->suite, "Which suite")
      ->capture_default_str()->check(CLI::IsMember({"env", "model_fit", "predict", "rollout", "inner_step", "meta_update", "iteration", "peak", "all"}));
  bench->add_option("--scale", options->scale, "Problem sizes")
      ->capture_default_str()->check(CLI::IsMember({"small", "paper", "large"}));
  bench->add_option("--device", options->device, "Backend for the kernel suites")
      ->capture_default_str()->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  bench->add_option("--json", options->json, "Also write the rows to this JSON file")->check(non_empty_path());
  bench->callback([options, &action] { action = [options] { return run_bench(*options); }; });
}

}  // namespace mbmpo::app
