// Timing on the backend that runs the work, and the measured ceilings that "% of peak" refers to.
#pragma once

#include <functional>
#include <string>

#include "bench/bench_record.hpp"
#include "host/core/context.hpp"

namespace mbmpo::bench {

// A warm-up run, then `repeats` timed runs: CUDA events on the context's stream on a GPU, the
// host clock after a synchronise on the CPU.
Timing time_on(Context& context, int repeats, const std::function<void()>& body);

// What this device reaches on plain work, measured in the same run: an FP32 GEMM (cuBLAS SGEMM
// on a GPU, Eigen on the CPU) and a large device-to-device (or host memcpy) copy.
struct Ceiling {
  double gemm_tflops = 0;
  double copy_gb_per_s = 0;
  std::string gemm_case, copy_case;
};
Ceiling measure_ceiling(Context& context, const std::string& scale);

// Adds the counted cost of one run and where it stands against the ceilings measured in the same
// run: flops and tflops, pct_peak (FLOP rate against the GEMM ceiling), bytes (the data a run must
// move at least: inputs read and outputs written once) and gb_per_s, pct_bandwidth (against the
// copy ceiling), and pct_roofline = max(flops / GEMM ceiling, bytes / copy ceiling) / median time:
// the fraction of the hardware floor reached (100 = at the floor).
nlohmann::json with_cost(nlohmann::json row, double flops_per_run, double bytes_per_run, const Ceiling& ceiling);

// "cpu" or the GPU's name, for the rows' device field.
std::string device_label(Context& context);

}  // namespace mbmpo::bench
