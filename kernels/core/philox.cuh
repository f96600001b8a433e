// Philox-4x32-10 counter-based random numbers (Salmon et al., SC'11; Random123), written once for
// host and device so that the CPU and CUDA backends draw identical numbers for identical keys.
//
// Keying: (seed, stream, counter), each 64 bits. The 2x32-bit Philox key is the seed; the 4x32-bit
// Philox counter is (counter_lo, counter_hi, stream_lo, stream_hi). One call yields four 32-bit
// words. Callers give every random quantity its own (stream, counter) so that results never depend
// on thread counts or launch shapes.
#pragma once

#include <cmath>
#include <cstdint>

#include "kernels/core/host_device.cuh"

namespace mbmpo {

struct Philox4x32 {
  uint32_t v[4];
};

namespace philox_detail {
constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

MBMPO_HD_INLINE void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t product = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(product >> 32);
  lo = static_cast<uint32_t>(product);
}
}  // namespace philox_detail

// The raw block function: 10 rounds on counter c with key k (the Random123 definition).
MBMPO_HD_INLINE Philox4x32 philox4x32_10(Philox4x32 c, uint32_t k0, uint32_t k1) {
  using namespace philox_detail;
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k0 += kWeyl0;
      k1 += kWeyl1;
    }
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c.v[0], hi0, lo0);
    mulhilo(kMul1, c.v[2], hi1, lo1);
    c = Philox4x32{{hi1 ^ c.v[1] ^ k0, lo1, hi0 ^ c.v[3] ^ k1, lo0}};
  }
  return c;
}

// Four random words for (seed, stream, counter).
MBMPO_HD_INLINE Philox4x32 philox(uint64_t seed, uint64_t stream, uint64_t counter) {
  const Philox4x32 c{{static_cast<uint32_t>(counter), static_cast<uint32_t>(counter >> 32),
                      static_cast<uint32_t>(stream), static_cast<uint32_t>(stream >> 32)}};
  return philox4x32_10(c, static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// Uniform in the open interval (0, 1): the top 23 bits as an odd multiple of 2^-24. Every value is
// exactly representable in float, so host and device agree bit for bit, and log(u) is finite.
MBMPO_HD_INLINE float uniform_open01(uint32_t bits) {
  return static_cast<float>(((bits >> 9) << 1) | 1u) * 5.9604644775390625e-8f;  // 2^-24
}

// Two independent standard normals from two words (Box-Muller). Host and device may differ in the
// last bits of log/sin/cos; the uniforms they come from are identical.
struct NormalPair {
  float z0, z1;
};
MBMPO_HD_INLINE NormalPair box_muller(uint32_t bits0, uint32_t bits1) {
  const float u0 = uniform_open01(bits0);
  const float u1 = uniform_open01(bits1);
  const float radius = sqrtf(-2.0f * logf(u0));
  const float angle = 6.283185307179586f * u1;
  return NormalPair{radius * cosf(angle), radius * sinf(angle)};
}

// Element i of a stream of uniforms: word i % 4 of block i / 4.
MBMPO_HD_INLINE float uniform_at(uint64_t seed, uint64_t stream, uint64_t index) {
  return uniform_open01(philox(seed, stream, index / 4).v[index % 4]);
}

// Element i of a stream of standard normals: block i / 4 gives normals 4*(i/4) .. 4*(i/4)+3.
MBMPO_HD_INLINE float normal_at(uint64_t seed, uint64_t stream, uint64_t index) {
  const Philox4x32 block = philox(seed, stream, index / 4);
  const unsigned lane = static_cast<unsigned>(index % 4);
  const NormalPair pair = box_muller(block.v[lane & 2u], block.v[(lane & 2u) + 1u]);
  return (lane & 1u) ? pair.z1 : pair.z0;
}

}  // namespace mbmpo
