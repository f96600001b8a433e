// Raw allocation and copies on either backend. Only Buffer/Tensor use these; the rest of the code
// never calls cudaMalloc or cudaMemcpy itself.
#pragma once

#include <cstdint>

#include <cstddef>

#include "host/core/backend.hpp"

namespace mbmpo::memory {

void* allocate(Backend backend, std::size_t bytes);
// How many buffers allocate() has handed out on a backend since the program started: tests use it
// to prove that a training loop's steady state allocates nothing.
std::int64_t allocation_count(Backend backend);
void release(Backend backend, void* pointer) noexcept;
void copy(Backend to, void* destination, Backend from, const void* source, std::size_t bytes);
void set_bytes(Backend backend, void* pointer, int byte, std::size_t bytes);

}  // namespace mbmpo::memory
