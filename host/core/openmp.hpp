// Loops the CPU backend splits across OpenMP threads, when the compiler has OpenMP (not in
// nvcc's host pass of the CUDA files, which never run these loops). Each iteration writes its own
// outputs, so results do not depend on the number of threads.
#pragma once

#if defined(_OPENMP)
#define MBMPO_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#else
#define MBMPO_PARALLEL_FOR
#endif
