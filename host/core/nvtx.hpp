// NVTX v3 ranges in the "mbmpo" domain, so Nsight Systems shows each phase of a run by name.
// Compiled out (no cost, no dependency) when the CUDA backend is off.
#pragma once

#ifdef MBMPO_WITH_CUDA
#include <nvtx3/nvtx3.hpp>

namespace mbmpo {
struct nvtx_domain {
  static constexpr const char* name{"mbmpo"};
};
using NvtxRange = nvtx3::scoped_range_in<nvtx_domain>;
}  // namespace mbmpo

#define MBMPO_NVTX_CONCAT_(a, b) a##b
#define MBMPO_NVTX_CONCAT(a, b) MBMPO_NVTX_CONCAT_(a, b)
// MBMPO_NVTX_RANGE("fit_models"); marks the rest of the enclosing scope.
#define MBMPO_NVTX_RANGE(name) ::mbmpo::NvtxRange MBMPO_NVTX_CONCAT(mbmpo_nvtx_range_, __LINE__){name}
#else
#define MBMPO_NVTX_RANGE(name) static_cast<void>(0)
#endif
