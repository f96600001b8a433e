#include <cmath>
#include <cstring>

#include "backend_test.hpp"
#include "host/core/random.hpp"
#include "host/core/tensor.hpp"
#include "kernels/core/philox.cuh"

namespace mbmpo {
namespace {

struct KnownAnswer {
  Philox4x32 counter;
  uint32_t key0, key1;
  Philox4x32 expected;
};

// Random123's tests/kat_vectors, the three "philox4x32 10" lines.
TEST(Philox, MatchesPublishedKnownAnswerVectors) {
  const KnownAnswer cases[] = {
      {{{0u, 0u, 0u, 0u}}, 0u, 0u, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const auto& c : cases) {
    const Philox4x32 result = philox4x32_10(c.counter, c.key0, c.key1);
    for (int word = 0; word < 4; ++word) EXPECT_EQ(result.v[word], c.expected.v[word]) << "word " << word;
  }
}

TEST(Philox, KeyingPutsSeedInKeyAndStreamCounterInCounter) {
  const uint64_t seed = 0x299f31d0a4093822ull, stream = 0x0370734413198a2eull,
                 counter = 0x85a308d3243f6a88ull;
  const Philox4x32 result = philox(seed, stream, counter);
  EXPECT_EQ(result.v[0], 0xd16cfe09u);
  EXPECT_EQ(result.v[3], 0x24126ea1u);
  // Different streams and counters give different words.
  EXPECT_NE(philox(seed, stream + 1, counter).v[0], result.v[0]);
  EXPECT_NE(philox(seed, stream, counter + 1).v[0], result.v[0]);
}

TEST(Philox, UniformIsOpenUnitIntervalAndExactEnds) {
  EXPECT_GT(uniform_open01(0u), 0.f);
  EXPECT_LT(uniform_open01(0xffffffffu), 1.f);
  EXPECT_EQ(uniform_open01(0u), 5.9604644775390625e-8f);
  EXPECT_EQ(uniform_open01(0xffffffffu), 1.f - 5.9604644775390625e-8f);
}

TEST(Philox, UniformAndNormalMomentsAreRight) {
  const int count = 200000;
  double sum_u = 0, sum_u2 = 0, sum_z = 0, sum_z2 = 0;
  for (int i = 0; i < count; ++i) {
    const double u = uniform_at(7, 3, static_cast<uint64_t>(i));
    const double z = normal_at(7, 4, static_cast<uint64_t>(i));
    ASSERT_TRUE(u > 0 && u < 1);
    ASSERT_TRUE(std::isfinite(z));
    sum_u += u, sum_u2 += u * u, sum_z += z, sum_z2 += z * z;
  }
  // Five standard errors: mean of U(0,1) has sd 0.289/sqrt(n), mean of N(0,1) sd 1/sqrt(n).
  EXPECT_NEAR(sum_u / count, 0.5, 5 * 0.289 / std::sqrt(count));
  EXPECT_NEAR(sum_u2 / count - std::pow(sum_u / count, 2), 1.0 / 12, 0.002);
  EXPECT_NEAR(sum_z / count, 0.0, 5 / std::sqrt(count));
  EXPECT_NEAR(sum_z2 / count, 1.0, 5 * std::sqrt(2.0 / count));
}

class RandomFillTest : public test::BackendTest {};

// Both backends draw the same uniforms bit for bit, for every element, at an awkward length.
TEST_P(RandomFillTest, UniformsAreBitIdenticalToTheHostStream) {
  const uint64_t seed = test::test_seed(), stream = 12345;
  SCOPED_TRACE("MBMPO_TEST_SEED=" + std::to_string(seed));
  Tensor<float> out(backend(), {3, 1001});
  out.poison();
  fill_uniform(context(), seed, stream, out);
  context().synchronize();
  const std::vector<float> values = out.to_host();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float expected = uniform_at(seed, stream, i);
    ASSERT_EQ(std::memcmp(&values[i], &expected, sizeof(float)), 0)
        << "element " << i << ": " << values[i] << " vs " << expected;
  }
}

TEST_P(RandomFillTest, NormalsMatchTheHostStream) {
  const uint64_t seed = test::test_seed(), stream = 99;
  SCOPED_TRACE("MBMPO_TEST_SEED=" + std::to_string(seed));
  Tensor<float> out(backend(), {4099});
  out.poison();
  fill_normal(context(), seed, stream, out);
  context().synchronize();
  const std::vector<float> values = out.to_host();
  for (std::size_t i = 0; i < values.size(); ++i) {
    const float expected = normal_at(seed, stream, i);
    ASSERT_NEAR(values[i], expected, 1e-5f * (1.f + std::fabs(expected))) << "element " << i;
  }
}

MBMPO_INSTANTIATE_BACKEND_TESTS(RandomFillTest);

}  // namespace
}  // namespace mbmpo
