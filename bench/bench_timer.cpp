#include <algorithm>
#include "bench/bench_timer.hpp"

#include <Eigen/Core>
#include <cstring>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/cpu_threads.hpp"
#include "host/core/tensor.hpp"

#ifdef MBMPO_WITH_CUDA
#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#endif

namespace mbmpo::bench {

Timing time_on(Context& context, int repeats, const std::function<void()>& body) {
  if (context.backend() == Backend::cpu) return time_host(repeats, body);
#ifdef MBMPO_WITH_CUDA
  cudaStream_t stream = context.cuda().stream;
  body();
  context.synchronize();
  std::vector<cudaEvent_t> events(2 * repeats);
  for (auto& e : events) MBMPO_CUDA_CHECK(cudaEventCreate(&e));
  for (int i = 0; i < repeats; ++i) {
    MBMPO_CUDA_CHECK(cudaEventRecord(events[2 * i], stream));
    body();
    MBMPO_CUDA_CHECK(cudaEventRecord(events[2 * i + 1], stream));
  }
  MBMPO_CUDA_CHECK(cudaStreamSynchronize(stream));
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    float ms = 0;
    MBMPO_CUDA_CHECK(cudaEventElapsedTime(&ms, events[2 * i], events[2 * i + 1]));
    seconds.push_back(ms * 1e-3);
  }
  for (auto& e : events) cudaEventDestroy(e);
  return summarize(seconds);
#else
  throw Error("time_on: CUDA context in a build without CUDA");
#endif
}

nlohmann::json with_cost(nlohmann::json row, double flops_per_run, double bytes_per_run, const Ceiling& ceiling) {
  const double seconds = row["median_s"].get<double>();
  const double tflops = flops_per_run / seconds / 1e12, gb_per_s = bytes_per_run / seconds / 1e9;
  row["flops"] = flops_per_run;
  row["tflops"] = tflops;
  row["pct_peak"] = 100.0 * tflops / ceiling.gemm_tflops;
  row["peak_case"] = ceiling.gemm_case;
  row["bytes"] = bytes_per_run;
  row["gb_per_s"] = gb_per_s;
  row["pct_bandwidth"] = 100.0 * gb_per_s / ceiling.copy_gb_per_s;
  const double floor_s = std::max(flops_per_run / (ceiling.gemm_tflops * 1e12), bytes_per_run / (ceiling.copy_gb_per_s * 1e9));
  row["pct_roofline"] = 100.0 * floor_s / seconds;
  return row;
}

std::string device_label(Context& context) {
  if (context.backend() == Backend::cpu) return "cpu";
  const auto info = cuda_device_info();
  return info ? info->name : "cuda";
}

Ceiling measure_ceiling(Context& context, const std::string& scale) {
  const bool small = scale == "small";
  Ceiling ceiling;
  if (context.backend() == Backend::cpu) {
    // The machine's ceiling, not our split's: every thread multiplies its own pair of matrices,
    // all at once, so nothing is shared, re-packed or waited for. (Splitting one product into
    // column blocks, as the layers do, re-packs the left operand per block; at 1536 that ran at
    // half this rate on 2 Sapphire Rapids cores, and flattered every "% peak" against it.)
    const int n = small ? 256 : 1024;
    using Matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic>;
    const int threads = cpu_threads();
    std::vector<Matrix> a(threads, Matrix::Random(n, n)), b(threads, Matrix::Random(n, n)), c(threads, Matrix(n, n));
    const Timing gemm = time_host(small ? 2 : 5, [&] {
#pragma omp parallel for schedule(static, 1) num_threads(threads)
      for (int t = 0; t < threads; ++t) c[t].noalias() = a[t] * b[t];
    });
    ceiling.gemm_tflops = threads * 2.0 * n * n * double(n) / gemm.median_s / 1e12;
    ceiling.gemm_case = "eigen_sgemm_" + std::to_string(n) + "_x" + std::to_string(threads) + "_threads";
    const std::size_t bytes = small ? (16u << 20) : (256u << 20);
    std::vector<char> src(bytes, 1), dst(bytes);
    const Timing copy = time_host(small ? 2 : 5, [&] { std::memcpy(dst.data(), src.data(), bytes); });
    ceiling.copy_gb_per_s = 2.0 * bytes / copy.median_s / 1e9;  // read + write
    ceiling.copy_case = "memcpy_" + std::to_string(bytes >> 20) + "MiB";
    return ceiling;
  }
#ifdef MBMPO_WITH_CUDA
  const int n = small ? 1024 : 8192;
  Tensor<float> a(Backend::cuda, {n, n}), b(Backend::cuda, {n, n}), c(Backend::cuda, {n, n});
  a.fill_zero();
  b.fill_zero();
  const float one = 1.f, zero = 0.f;
  CudaResources& cuda = context.cuda();
  // FP32 SGEMM without tensor cores: the math mode our kernels run in.
  const Timing gemm = time_on(context, small ? 3 : 10, [&] {
    MBMPO_CUBLAS_CHECK(cublasSgemm(cuda.cublas, CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &one, a.data(),
                                   n, b.data(), n, &zero, c.data(), n));
  });
  ceiling.gemm_tflops = 2.0 * n * n * double(n) / gemm.median_s / 1e12;
  ceiling.gemm_case = "cublas_sgemm_" + std::to_string(n);
  const std::size_t bytes = small ? (64u << 20) : (1024u << 20);
  Tensor<char> src(Backend::cuda, {std::int64_t(bytes)}), dst(Backend::cuda, {std::int64_t(bytes)});
  src.fill_zero();
  const Timing copy = time_on(context, small ? 3 : 10, [&] {
    MBMPO_CUDA_CHECK(cudaMemcpyAsync(dst.data(), src.data(), bytes, cudaMemcpyDeviceToDevice, cuda.stream));
  });
  ceiling.copy_gb_per_s = 2.0 * bytes / copy.median_s / 1e9;
  ceiling.copy_case = "cuda_memcpy_d2d_" + std::to_string(bytes >> 20) + "MiB";
#endif
  return ceiling;
}

}  // namespace mbmpo::bench
