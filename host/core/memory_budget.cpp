#include "host/core/memory_budget.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>

#include "host/core/error.hpp"

namespace mbmpo {

std::uint64_t memory_bytes(Backend backend) {
  if (backend == Backend::cuda) {
    const auto device = cuda_device_info();
    return device ? device->global_memory_bytes : 0;
  }
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? std::uint64_t(pages) * std::uint64_t(page) : 0;
}

std::string memory_text(double bytes) {
  char text[64];
  if (bytes >= 1024.0 * 1024 * 1024 * 1024 * 1024) std::snprintf(text, sizeof text, "%.3g PiB", bytes / std::pow(1024.0, 5));
  else if (bytes >= 1024.0 * 1024 * 1024) std::snprintf(text, sizeof text, "%.1f GiB", bytes / (1024.0 * 1024 * 1024));
  else std::snprintf(text, sizeof text, "%.0f MiB", bytes / (1024.0 * 1024));
  return text;
}

void check_memory(Backend backend, double bytes, const std::string& what, const std::string& detail) {
  const std::uint64_t have = memory_bytes(backend);
  if (have == 0) return;  // unknown: nothing to compare with
  MBMPO_CHECK_INPUT(bytes <= double(have), what, " needs at least ", memory_text(bytes),
                    " of memory, more than this machine's ", memory_text(double(have)),
                    backend == Backend::cuda ? " of GPU memory" : "", detail.empty() ? "" : "; " + detail);
}

}  // namespace mbmpo
