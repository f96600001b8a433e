// Execution context: the backend every operation in a run uses, plus its resources (on CUDA a
// stream and a cuBLAS handle bound to it). Operations take a Context& so that the same call runs
// on either backend.
#pragma once

#include <memory>

#include "host/core/backend.hpp"

namespace mbmpo {

struct CudaResources;  // defined in host/core/cuda_context.hpp, seen only by CUDA code

class Context {
 public:
  explicit Context(Backend backend);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  Backend backend() const { return backend_; }
  // Waits until every operation issued on this context has finished.
  void synchronize();
  // CUDA streams, handles; throws when the context is not a CUDA one.
  CudaResources& cuda();

 private:
  Backend backend_;
  std::unique_ptr<CudaResources> cuda_;
};

}  // namespace mbmpo
