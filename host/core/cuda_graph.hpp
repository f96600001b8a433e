// Records the work a piece of code issues on a CUDA stream into a graph and replays it with one
// launch (so that an imagined rollout's H steps, or a CG solve's iterations, cost no per-step host
// launch work on the GPU). While recording, kernel-launch checks skip their debug-build
// synchronisation, which capture forbids.
#pragma once

#include <functional>

#include "host/core/context.hpp"

struct CUgraphExec_st;  // cudaGraphExec_t, kept opaque so that CPU-only code can hold a CudaGraph

namespace mbmpo {

// A graph kept between launches (the pattern of tiny-cuda-nn's cuda_graph.h). Each run() records
// body()'s work again, which costs the host time of issuing it, then updates the executable graph
// in place (cudaGraphExecUpdate: new kernel arguments and pointers, the same topology) instead of
// instantiating a new one; it instantiates only on the first run or when the update is refused
// (the topology changed). The body must allocate nothing (stable workspaces). CUDA contexts only.
class CudaGraph {
 public:
  CudaGraph() = default;
  ~CudaGraph();
  CudaGraph(const CudaGraph&) = delete;
  CudaGraph& operator=(const CudaGraph&) = delete;

  // Records body() on the context's stream and launches the graph there (asynchronously).
  void run(Context& context, const std::function<void()>& body);
  // How many executable graphs were instantiated (1 while every update succeeds).
  int instantiations() const { return instantiations_; }

 private:
  CUgraphExec_st* exec_ = nullptr;
  int instantiations_ = 0;
};

// True on the calling thread while a CudaGraph records.
bool stream_capture_active();

}  // namespace mbmpo
