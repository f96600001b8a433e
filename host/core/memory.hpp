// Raw allocation and copies on either backend. Only Buffer/Tensor use these; the rest of the code
// never calls cudaMalloc or cudaMemcpy itself.
#pragma once

#include <cstdint>

#include <cstddef>

#include "host/core/backend.hpp"

namespace mbmpo {
class Context;
}

namespace mbmpo::memory {

void* allocate(Backend backend, std::size_t bytes);
// How many buffers allocate() has handed out on a backend since the program started: tests use it
// to prove that a training loop's steady state allocates nothing.
std::int64_t allocation_count(Backend backend);
void release(Backend backend, void* pointer) noexcept;
// Copies and fills are ordered on `order`'s stream when it is a CUDA context (a copy that involves
// the host waits for that stream; one between device buffers does not: later work on the stream
// sees it). Without a CUDA context they run on the legacy default stream and wait for the device,
// which suits set-up and tests; library code passes its context, so that a copy from one host
// thread never touches the legacy stream while another thread records a CUDA graph (that would
// invalidate the capture).
void copy(Backend to, void* destination, Backend from, const void* source, std::size_t bytes,
          Context* order = nullptr);
void set_bytes(Backend backend, void* pointer, int byte, std::size_t bytes, Context* order = nullptr);

}  // namespace mbmpo::memory
