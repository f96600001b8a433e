// Facts about this build and machine, for `mbmpo info` and benchmark records.
#pragma once

#include <string>
#include <vector>

namespace mbmpo {

struct BuildInfo {
  std::string version;
  std::string build_type;
  std::string compiler;
  bool cuda_backend = false;
  std::string cuda_architectures;  // empty without CUDA
  std::string cuda_compiler_version;
  std::string mujoco_version;      // of the library loaded at run time
  std::string eigen_version;
  std::string cpu_arch;      // the host code's -march (host/core/cpu_isa.hpp)
  std::string cpu_isa;       // the instruction set in use, e.g. "AVX-512 (x86-64-v4)"
  std::string cpu_supports;  // the highest x86-64 level of this CPU
  int hardware_threads = 0;
  int usable_cores = 0;  // in this process's affinity mask: the CPU backend's largest team
};

BuildInfo build_info();

}  // namespace mbmpo
