#include "host/core/cuda_graph.hpp"

#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#include "host/core/error.hpp"

namespace mbmpo {
namespace {
thread_local bool capturing = false;

struct CaptureFlag {
  CaptureFlag() { capturing = true; }
  ~CaptureFlag() { capturing = false; }
};
}  // namespace

bool stream_capture_active() { return capturing; }

void run_as_cuda_graph(Context& context, const std::function<void()>& body) {
  MBMPO_CHECK(context.backend() == Backend::cuda, "run_as_cuda_graph: not a CUDA context");
  cudaStream_t stream = context.cuda().stream;
  cudaGraph_t graph = nullptr;
  {
    CaptureFlag flag;
    MBMPO_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    try {
      body();
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);  // leave the stream usable, then report the error
      if (graph) cudaGraphDestroy(graph);
      cudaGetLastError();  // the invalidated capture's error is not the one to report
      throw;
    }
    MBMPO_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  }
  cudaGraphExec_t exec = nullptr;
  const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
  cudaGraphDestroy(graph);
  MBMPO_CUDA_CHECK(instantiated);
  cudaError_t status = cudaGraphLaunch(exec, stream);
  // One wait per graph (not per step): the executable graph is released only once it has run.
  if (status == cudaSuccess) status = cudaStreamSynchronize(stream);
  cudaGraphExecDestroy(exec);
  MBMPO_CUDA_CHECK(status);
}

}  // namespace mbmpo
