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
  int hardware_threads = 0;
  int usable_cores = 0;  // in this process's affinity mask: the CPU backend's largest team
};

BuildInfo build_info();

}  // namespace mbmpo
