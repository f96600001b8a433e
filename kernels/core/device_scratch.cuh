// Temporary device memory for one operation, allocated and freed in stream order from CUDA's
// memory pool (cudaMallocAsync), so it costs no device synchronisation.
#pragma once

#include <cstddef>

#include "host/core/cuda_check.hpp"

namespace mbmpo::cuda {

template <class T>
class DeviceScratch {
 public:
  DeviceScratch(cudaStream_t stream, std::size_t count) : stream_(stream) {
    if (count > 0) MBMPO_CUDA_CHECK(cudaMallocAsync(reinterpret_cast<void**>(&data_), count * sizeof(T), stream_));
  }
  ~DeviceScratch() {
    if (data_) cudaFreeAsync(data_, stream_);
  }
  DeviceScratch(const DeviceScratch&) = delete;
  DeviceScratch& operator=(const DeviceScratch&) = delete;

  T* get() const { return data_; }

 private:
  cudaStream_t stream_;
  T* data_ = nullptr;
};

}  // namespace mbmpo::cuda
