#include "host/core/build_info.hpp"

#include <mujoco/mujoco.h>

#include <Eigen/Core>
#include <thread>

#include "host/core/cpu_isa.hpp"
#include "host/core/cpu_threads.hpp"

namespace mbmpo {

BuildInfo build_info() {
  BuildInfo info;
  info.version = MBMPO_VERSION;
  info.build_type = MBMPO_BUILD_TYPE;
  info.compiler = MBMPO_CXX_COMPILER;
#ifdef MBMPO_WITH_CUDA
  info.cuda_backend = true;
  info.cuda_architectures = MBMPO_CUDA_ARCHITECTURES;
  info.cuda_compiler_version = MBMPO_CUDA_COMPILER_VERSION;
#endif
  info.mujoco_version = mj_versionString();
  info.eigen_version = std::to_string(EIGEN_WORLD_VERSION) + "." +
                       std::to_string(EIGEN_MAJOR_VERSION) + "." +
                       std::to_string(EIGEN_MINOR_VERSION);
  info.cpu_arch = cpu_arch_built();
  info.cpu_isa = cpu_isa_description();
  info.cpu_supports = cpu_level_supported();
  info.hardware_threads = static_cast<int>(std::thread::hardware_concurrency());
  info.usable_cores = usable_cores();
  return info;
}

}  // namespace mbmpo
