// Compiled for the x86-64 baseline whatever MBMPO_CPU_ARCH is (host/CMakeLists.txt), so that the
// guard below runs on any x86-64 CPU. Linked into every binary: mbmpo_lib's users link with
// --undefined=mbmpo_cpu_isa_guard.
#include "host/core/cpu_isa.hpp"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#ifndef MBMPO_CPU_ARCH_NAME
#define MBMPO_CPU_ARCH_NAME ""
#endif

extern "C" {
int mbmpo_cpu_isa_guard = 0;  // the anchor the link option names
}

namespace mbmpo {
namespace {

// x86-64 micro-architecture levels, lowest first, with what each adds that the code would use.
struct Level {
  const char* name;
  const char* adds;
};
constexpr Level kLevels[] = {
    {"x86-64", "SSE2"}, {"x86-64-v2", "SSE4.2/POPCNT"}, {"x86-64-v3", "AVX2/FMA"}, {"x86-64-v4", "AVX-512"}};
constexpr int kLevelCount = int(sizeof(kLevels) / sizeof(kLevels[0]));

int level_index(const char* name) {
  for (int i = 0; i < kLevelCount; ++i) {
    if (std::strcmp(kLevels[i].name, name) == 0) return i;
  }
  return -1;
}

// The highest level this CPU runs, -1 off x86.
int supported_level() {
  if (const char* pretend = std::getenv("MBMPO_PRETEND_CPU_LEVEL")) {
    if (*pretend) return level_index(pretend);
  }
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return 3;
  if (__builtin_cpu_supports("x86-64-v3")) return 2;
  if (__builtin_cpu_supports("x86-64-v2")) return 1;
  return 0;
#else
  return -1;
#endif
}

// Runs before every other initialiser of the program (priority 101 is the first a program may
// use), so nothing built for the build's level has run yet.
__attribute__((constructor(101))) void refuse_a_cpu_without_the_builds_instructions() {
  const int built = level_index(MBMPO_CPU_ARCH_NAME);
  if (built < 0) return;  // "", "native" or another -march: built for this machine or the default
  const int have = supported_level();
  if (have < 0 || have >= built) return;
  std::fprintf(stderr,
               "mbmpo: this build uses %s instructions (%s), which this CPU lacks (it runs %s); rebuild for it: "
               "bash scripts/build.sh BUILD_DIR -DMBMPO_CPU_ARCH=%s\n",
               kLevels[built].adds, kLevels[built].name, kLevels[have].name, kLevels[have].name);
  std::fflush(stderr);
  std::_Exit(2);
}

}  // namespace

std::string cpu_arch_built() { return MBMPO_CPU_ARCH_NAME; }

std::string cpu_level_supported() {
  const int have = supported_level();
  return have < 0 ? "" : kLevels[have].name;
}

std::string cpu_isa_description() {
  const std::string built = cpu_arch_built();
  const int index = level_index(built.c_str());
  if (index >= 0) return std::string(kLevels[index].adds) + " (" + built + ")";
  if (built.empty()) return "the compiler's default";
  return "-march=" + built;
}

}  // namespace mbmpo
