// The models' disagreement (host/models/model_spread.hpp) on both backends: against the
// population standard deviation in double on awkward sizes, outputs NaN-poisoned; and one model,
// or models that agree, give zero.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backend_test.hpp"
#include "host/core/tensor.hpp"
#include "host/models/model_spread.hpp"

namespace mbmpo {
namespace {

using test::random_vector;
using test::test_seed;

class ModelSpreadBackends : public test::BackendTest {};

TEST_P(ModelSpreadBackends, MatchesTheStandardDeviationInDouble) {
  SCOPED_TRACE("MBMPO_TEST_SEED=" + std::to_string(test_seed()));
  const Backend b = backend();
  for (const auto& [K, N, D] : {std::tuple<int, int, int>{5, 1031, 17}, {7, 3, 1}, {1, 257, 11}, {2, 0, 4}}) {
    const auto values = random_vector<float>(std::size_t(K) * N * D, test_seed() + K, -3, 3);
    Tensor<float> spread(b, {N, D});
    spread.poison();
    model_spread(context(), Tensor<float>::from_host(b, {K, N, D}, values), spread);
    const std::vector<float> actual = spread.to_host();
    for (std::int64_t i = 0; i < std::int64_t(N) * D; ++i) {
      double mean = 0, squares = 0;
      for (int k = 0; k < K; ++k) mean += values[k * std::int64_t(N) * D + i];
      mean /= K;
      for (int k = 0; k < K; ++k) squares += std::pow(values[k * std::int64_t(N) * D + i] - mean, 2);
      const double expected = std::sqrt(squares / K);
      ASSERT_NEAR(actual[i], expected, 1e-6 * (1 + expected)) << "K " << K << " element " << i;
      if (K == 1) ASSERT_EQ(actual[i], 0.f);
    }
  }
}

TEST_P(ModelSpreadBackends, ModelsThatAgreeHaveNoSpread) {
  const Backend b = backend();
  const auto row = random_vector<float>(13 * 6, test_seed(), -1e3, 1e3);
  std::vector<float> values;
  for (int k = 0; k < 4; ++k) values.insert(values.end(), row.begin(), row.end());
  Tensor<float> spread(b, {13, 6});
  spread.poison();
  model_spread(context(), Tensor<float>::from_host(b, {4, 13, 6}, values), spread);
  for (float value : spread.to_host()) EXPECT_EQ(value, 0.f);
}

MBMPO_INSTANTIATE_BACKEND_TESTS(ModelSpreadBackends);

}  // namespace
}  // namespace mbmpo
