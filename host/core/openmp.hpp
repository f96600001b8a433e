// How the CPU backend uses threads. Every parallel loop splits its work into items fixed by the
// problem's shape (a model, a block of rows, a block of outputs), never by the thread count, and
// each item writes its own outputs; Eigen itself runs single-threaded (EIGEN_DONT_PARALLELIZE,
// set by the build). So results are bit-identical for any number of threads, and the number can
// change between phases (host/core/cpu_threads.hpp).
//
// Regions are few and coarse: one per layer call, not one per model and matrix product. Each
// region ends at a barrier that waits for every thread of the team, and when another process holds
// the cores a barrier can wait a whole scheduler slice for a preempted thread.
//
// Without OpenMP (nvcc's host pass of the CUDA files, which never runs these loops) they are
// plain loops.
#pragma once

#if defined(_OPENMP)
#define MBMPO_PARALLEL_FOR _Pragma("omp parallel for schedule(static)")
#define MBMPO_PARALLEL _Pragma("omp parallel")
#define MBMPO_FOR _Pragma("omp for schedule(static)")
#else
#define MBMPO_PARALLEL_FOR
#define MBMPO_PARALLEL
#define MBMPO_FOR
#endif

#if defined(EIGEN_WORLD_VERSION) && !defined(EIGEN_DONT_PARALLELIZE)
#error "Eigen must be built single-threaded here (EIGEN_DONT_PARALLELIZE): include order or build flags"
#endif
