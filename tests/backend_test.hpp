// Tests written once and run on both backends. A CUDA case skips, printing why, when no device is
// usable, and fails instead when MBMPO_REQUIRE_GPU=1 (so a GPU run cannot pass by skipping).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <vector>

#include "host/core/backend.hpp"
#include "host/core/context.hpp"

namespace mbmpo {
// gtest prints a parameter with this, so ctest names read ".../cuda" rather than bytes.
inline void PrintTo(Backend backend, std::ostream* out) { *out << to_string(backend); }
}  // namespace mbmpo

namespace mbmpo::test {

inline bool gpu_required() {
  const char* value = std::getenv("MBMPO_REQUIRE_GPU");
  return value != nullptr && std::string(value) == "1";
}

// Use in SetUp or a test body: returns from it (skipped or failed) when `backend` is unusable.
#define MBMPO_REQUIRE_BACKEND(backend)                                                      \
  do {                                                                                      \
    if ((backend) == ::mbmpo::Backend::cuda && !::mbmpo::cuda_availability().usable) {      \
      if (::mbmpo::test::gpu_required()) {                                                  \
        FAIL() << "MBMPO_REQUIRE_GPU=1 but no CUDA device is usable: " << ::mbmpo::cuda_availability().reason;        \
      }                                                                                     \
      GTEST_SKIP() << "CUDA case skipped, no usable device: " << ::mbmpo::cuda_availability().reason;         \
    }                                                                                       \
  } while (0)

class BackendTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    MBMPO_REQUIRE_BACKEND(GetParam());
    context_ = std::make_unique<Context>(GetParam());
  }
  Backend backend() const { return GetParam(); }
  Context& context() { return *context_; }

 private:
  std::unique_ptr<Context> context_;
};

inline std::string backend_param_name(const ::testing::TestParamInfo<Backend>& info) {
  return to_string(info.param);
}

#define MBMPO_INSTANTIATE_BACKEND_TESTS(suite)                                               \
  INSTANTIATE_TEST_SUITE_P(Backends, suite,                                                  \
                           ::testing::Values(::mbmpo::Backend::cpu, ::mbmpo::Backend::cuda), \
                           ::mbmpo::test::backend_param_name)

// Fresh random inputs each run; MBMPO_TEST_SEED=N repeats a run. Tests print the seed in a trace.
inline std::uint64_t test_seed() {
  if (const char* value = std::getenv("MBMPO_TEST_SEED")) return std::strtoull(value, nullptr, 10);
  static const std::uint64_t seed = std::random_device{}();
  return seed;
}

template <class T>
std::vector<T> random_vector(std::mt19937_64& rng, std::size_t count, double low, double high) {
  std::uniform_real_distribution<double> dist(low, high);
  std::vector<T> values(count);
  for (auto& value : values) value = static_cast<T>(dist(rng));
  return values;
}

template <class T>
std::vector<T> random_vector(std::size_t count, std::uint64_t seed, double low, double high) {
  std::mt19937_64 rng(seed);
  return random_vector<T>(rng, count, low, high);
}

// Element-wise conversion, e.g. float results to double for comparison with a reference.
template <class To, class From>
std::vector<To> cast(const std::vector<From>& values) {
  return std::vector<To>(values.begin(), values.end());
}

// A copy of `values` (size at least `size`, zero-padded) that starts `shift` elements past a
// 64-byte boundary: the CPU code must give the same bits wherever its buffers sit (vectorised
// code that peels unaligned heads with scalar arithmetic would not).
template <class T>
class ShiftedCopy {
 public:
  ShiftedCopy(const std::vector<T>& values, int shift, std::size_t size = 0)
      : storage_(std::max(size, values.size()) + 2 * kAlign / sizeof(T), T(0)) {
    const std::size_t misalignment = reinterpret_cast<std::uintptr_t>(storage_.data()) % kAlign;
    data_ = storage_.data() + (kAlign - misalignment) % kAlign / sizeof(T) + shift;
    std::copy(values.begin(), values.end(), data_);
  }
  T* data() { return data_; }
  std::vector<T> values(std::size_t count) const { return std::vector<T>(data_, data_ + count); }

 private:
  static constexpr std::size_t kAlign = 64;
  std::vector<T> storage_;
  T* data_ = nullptr;
};

}  // namespace mbmpo::test
