// The two compute backends and how a user's choice (auto, cpu, cuda) becomes one of them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace mbmpo {

enum class Backend { cpu, cuda };
enum class BackendChoice { automatic, cpu, cuda };

const char* to_string(Backend backend);
const char* to_string(BackendChoice choice);

// Parses "auto", "cpu" or "cuda"; anything else is an InputError naming the accepted values.
BackendChoice parse_backend_choice(const std::string& text);

// True when this binary was built with the CUDA backend.
bool built_with_cuda();

struct CudaAvailability {
  bool usable = false;
  std::string reason;  // why not, when not usable
};

// Whether a CUDA device can be used now (built with CUDA, a driver, at least one device).
// Computed once and cached.
const CudaAvailability& cuda_availability();

// cpu -> cpu; cuda -> cuda or an Error with the reason none is usable; automatic -> cuda if usable.
Backend resolve_backend(BackendChoice choice);

struct CudaDeviceInfo {
  int index = 0;
  std::string name;
  int multiprocessors = 0;
  int compute_capability_major = 0;
  int compute_capability_minor = 0;
  std::uint64_t global_memory_bytes = 0;
  int driver_version = 0;   // e.g. 13000 for 13.0
  int runtime_version = 0;
};

// The current device's properties, or nothing when no device is usable.
std::optional<CudaDeviceInfo> cuda_device_info();

// The index of the device this thread's CUDA work goes to (-1 when none is usable).
int current_cuda_device();

// Waits for all work on the current device, on any stream and from any library (a PyTorch side
// stream included): the Python bindings call it before they read arrays that others wrote.
void synchronize_cuda_device();

}  // namespace mbmpo
