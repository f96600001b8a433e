#include "host/core/cuda_graph.hpp"

#include "host/core/error.hpp"

#ifdef MBMPO_WITH_CUDA
#include "host/core/cuda_check.hpp"
#include "host/core/cuda_context.hpp"
#endif

namespace mbmpo {
namespace {
thread_local bool capturing = false;

struct CaptureFlag {
  CaptureFlag() { capturing = true; }
  ~CaptureFlag() { capturing = false; }
};
}  // namespace

bool stream_capture_active() { return capturing; }

CudaGraph::~CudaGraph() {
#ifdef MBMPO_WITH_CUDA
  // A launch still in flight completes; the executable graph is freed after it.
  if (exec_) cudaGraphExecDestroy(exec_);
#endif
}

void CudaGraph::run(Context& context, const std::function<void()>& body) {
  MBMPO_CHECK(context.backend() == Backend::cuda, "CudaGraph: not a CUDA context");
#ifdef MBMPO_WITH_CUDA
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
  if (exec_) {
    cudaGraphExecUpdateResultInfo info{};
    if (cudaGraphExecUpdate(exec_, graph, &info) != cudaSuccess) {
      cudaGetLastError();  // a refused update is expected when the topology changed
      cudaGraphExecDestroy(exec_);
      exec_ = nullptr;
    }
  }
  if (!exec_) {
    cudaGraphExec_t exec = nullptr;
    const cudaError_t instantiated = cudaGraphInstantiate(&exec, graph, 0);
    if (instantiated != cudaSuccess) cudaGraphDestroy(graph);
    MBMPO_CUDA_CHECK(instantiated);
    exec_ = exec;
    ++instantiations_;
  }
  cudaGraphDestroy(graph);
  MBMPO_CUDA_CHECK(cudaGraphLaunch(exec_, stream));
#else
  (void)body;
#endif
}

}  // namespace mbmpo
