// The x86 instruction set the host code was built for (CMake's MBMPO_CPU_ARCH: x86-64-v4 with
// AVX-512 where the build machine has it, else x86-64-v3 with AVX2/FMA) and the one this CPU runs.
//
// A binary never dies of SIGILL: before any other initialiser of the program, a guard in
// cpu_isa.cpp (itself compiled for the x86-64 baseline) compares the two and, where this CPU
// lacks the build's level, prints one line naming the missing instruction set and how to rebuild,
// and exits with status 2. MBMPO_PRETEND_CPU_LEVEL=x86-64-v3 (or v2, x86-64) makes the guard take
// this CPU for one of that level, so a test can see the refusal.
#pragma once

#include <string>

namespace mbmpo {

// "x86-64-v4", "x86-64-v3", "native", another -march value, or "" (the compiler's default).
std::string cpu_arch_built();
// The highest x86-64 level this CPU supports: "x86-64-v4", "x86-64-v3", "x86-64-v2" or "x86-64"
// (honours MBMPO_PRETEND_CPU_LEVEL); "" off x86.
std::string cpu_level_supported();
// The instruction set in use, for people: "AVX-512 (x86-64-v4)", "AVX2/FMA (x86-64-v3)", ...
std::string cpu_isa_description();

}  // namespace mbmpo
