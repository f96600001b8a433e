// Macros for code written once and compiled both by the host C++ compiler and by nvcc.
#pragma once

#if defined(__CUDACC__)
#define MBMPO_HD __host__ __device__
#define MBMPO_HD_INLINE __host__ __device__ __forceinline__
#else
#define MBMPO_HD
#define MBMPO_HD_INLINE inline
#endif
