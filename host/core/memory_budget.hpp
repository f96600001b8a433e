// What a configuration would allocate, checked against what the machine has before anything is
// allocated: a huge size is refused with both figures instead of running out of memory (or being
// killed by the kernel's OOM killer) part of the way through.
#pragma once

#include <cstdint>
#include <string>

#include "host/core/backend.hpp"

namespace mbmpo {

// The machine's physical memory (host), or the device's global memory (CUDA), in bytes.
std::uint64_t memory_bytes(Backend backend);

// "12.5 GiB", "300 MiB".
std::string memory_text(double bytes);

// InputError "WHAT needs at least X of memory, more than this machine's Y[; DETAIL]" when `bytes`
// (a double, so that absurd products do not wrap) exceed the backend's memory.
void check_memory(Backend backend, double bytes, const std::string& what, const std::string& detail = "");

}  // namespace mbmpo
