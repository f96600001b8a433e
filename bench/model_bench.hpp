#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "bench/bench_timer.hpp"

namespace mbmpo::bench {
// Rows of the "model_fit" and "predict" suites (the dynamics ensemble) on the context's backend,
// with achieved TFLOP/s and the fraction of the measured GEMM ceiling.
std::vector<nlohmann::json> run_model_fit_suite(Context& context, const std::string& scale,
                                                const Ceiling& ceiling);
std::vector<nlohmann::json> run_predict_suite(Context& context, const std::string& scale,
                                              const Ceiling& ceiling);
}  // namespace mbmpo::bench
