// Raw allocation and copies on either backend. Only Buffer/Tensor use these; the rest of the code
// never calls cudaMalloc or cudaMemcpy itself.
#pragma once

#include <cstddef>

#include "host/core/backend.hpp"

namespace mbmpo::memory {

void* allocate(Backend backend, std::size_t bytes);
void release(Backend backend, void* pointer) noexcept;
void copy(Backend to, void* destination, Backend from, const void* source, std::size_t bytes);
void set_bytes(Backend backend, void* pointer, int byte, std::size_t bytes);

}  // namespace mbmpo::memory
