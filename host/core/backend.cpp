#include "host/core/backend.hpp"

#include "host/core/error.hpp"

#ifdef MBMPO_WITH_CUDA
#include <cuda_runtime.h>

#include "host/core/cuda_check.hpp"
#endif

namespace mbmpo {

const char* to_string(Backend backend) { return backend == Backend::cuda ? "cuda" : "cpu"; }

const char* to_string(BackendChoice choice) {
  switch (choice) {
    case BackendChoice::cpu: return "cpu";
    case BackendChoice::cuda: return "cuda";
    case BackendChoice::automatic: break;
  }
  return "auto";
}

BackendChoice parse_backend_choice(const std::string& text) {
  if (text == "auto") return BackendChoice::automatic;
  if (text == "cpu") return BackendChoice::cpu;
  if (text == "cuda") return BackendChoice::cuda;
  throw InputError("unknown device '" + text + "': expected one of auto, cpu, cuda");
}

bool built_with_cuda() {
#ifdef MBMPO_WITH_CUDA
  return true;
#else
  return false;
#endif
}

static CudaAvailability probe_cuda() {
#ifdef MBMPO_WITH_CUDA
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return {false, std::string("cudaGetDeviceCount failed with ") + cudaGetErrorName(status) +
                       " (" + cudaGetErrorString(status) + ")"};
  }
  if (count == 0) return {false, "the CUDA driver reports 0 devices"};
  return {true, ""};
#else
  return {false, "this binary was built without the CUDA backend (MBMPO_CUDA=OFF or no nvcc)"};
#endif
}

const CudaAvailability& cuda_availability() {
  static const CudaAvailability availability = probe_cuda();
  return availability;
}

Backend resolve_backend(BackendChoice choice) {
  switch (choice) {
    case BackendChoice::cpu: return Backend::cpu;
    case BackendChoice::cuda:
      if (!cuda_availability().usable) {
        throw InputError("device 'cuda' was requested but no CUDA device is usable: " +
                         cuda_availability().reason);
      }
      return Backend::cuda;
    case BackendChoice::automatic: break;
  }
  return cuda_availability().usable ? Backend::cuda : Backend::cpu;
}

std::optional<CudaDeviceInfo> cuda_device_info() {
  if (!cuda_availability().usable) return std::nullopt;
#ifdef MBMPO_WITH_CUDA
  CudaDeviceInfo info;
  MBMPO_CUDA_CHECK(cudaGetDevice(&info.index));
  cudaDeviceProp prop{};
  MBMPO_CUDA_CHECK(cudaGetDeviceProperties(&prop, info.index));
  info.name = prop.name;
  info.multiprocessors = prop.multiProcessorCount;
  info.compute_capability_major = prop.major;
  info.compute_capability_minor = prop.minor;
  info.global_memory_bytes = prop.totalGlobalMem;
  MBMPO_CUDA_CHECK(cudaDriverGetVersion(&info.driver_version));
  MBMPO_CUDA_CHECK(cudaRuntimeGetVersion(&info.runtime_version));
  return info;
#else
  return std::nullopt;
#endif
}

int current_cuda_device() {
  if (!cuda_availability().usable) return -1;
#ifdef MBMPO_WITH_CUDA
  int index = 0;
  MBMPO_CUDA_CHECK(cudaGetDevice(&index));
  return index;
#else
  return -1;
#endif
}

void synchronize_cuda_device() {
  if (!cuda_availability().usable) return;
#ifdef MBMPO_WITH_CUDA
  MBMPO_CUDA_CHECK(cudaDeviceSynchronize());
#endif
}

}  // namespace mbmpo
