// Records the work a piece of code issues on a CUDA stream into a graph and replays it with one
// launch (used so that an imagined rollout's H steps cost no per-step host work). While recording,
// kernel-launch checks skip their debug-build synchronisation, which capture forbids.
#pragma once

#include <functional>

#include "host/core/context.hpp"

namespace mbmpo {

// Captures body()'s work on the context's stream, then launches it once. CUDA contexts only.
void run_as_cuda_graph(Context& context, const std::function<void()>& body);

// True on the calling thread while run_as_cuda_graph records.
bool stream_capture_active();

}  // namespace mbmpo
