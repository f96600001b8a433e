#include "backend_test.hpp"
#include "host/core/broadcast_rows.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo {
namespace {

TEST(Backend, ParsesChoices) {
  EXPECT_EQ(parse_backend_choice("auto"), BackendChoice::automatic);
  EXPECT_EQ(parse_backend_choice("cpu"), BackendChoice::cpu);
  EXPECT_EQ(parse_backend_choice("cuda"), BackendChoice::cuda);
  try {
    parse_backend_choice("gpu");
    FAIL() << "no exception";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("'gpu'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("auto, cpu, cuda"), std::string::npos) << e.what();
  }
}

TEST(Backend, ResolvesAccordingToTheDevice) {
  EXPECT_EQ(resolve_backend(BackendChoice::cpu), Backend::cpu);
  if (cuda_availability().usable) {
    EXPECT_EQ(resolve_backend(BackendChoice::automatic), Backend::cuda);
    EXPECT_EQ(resolve_backend(BackendChoice::cuda), Backend::cuda);
    EXPECT_TRUE(cuda_device_info().has_value());
  } else {
    EXPECT_FALSE(cuda_availability().reason.empty());
    EXPECT_EQ(resolve_backend(BackendChoice::automatic), Backend::cpu);
    EXPECT_THROW(resolve_backend(BackendChoice::cuda), InputError);
    EXPECT_THROW(Context{Backend::cuda}, Error);
    EXPECT_FALSE(cuda_device_info().has_value());
  }
}

TEST(Backend, RequireGpuMeansADeviceIsUsable) {
  // The guard the CUDA test cases rely on: a GPU run must not pass by skipping.
  if (test::gpu_required()) {
    EXPECT_TRUE(cuda_availability().usable) << cuda_availability().reason;
  } else {
    GTEST_SKIP() << "MBMPO_REQUIRE_GPU is not 1";
  }
}

TEST(Context, CpuContextHasNoCudaResources) {
  Context context(Backend::cpu);
  EXPECT_EQ(context.backend(), Backend::cpu);
  EXPECT_NO_THROW(context.synchronize());
  EXPECT_THROW(context.cuda(), Error);
}

class BroadcastBackends : public test::BackendTest {};

// One row into every row, and B rows each into its seed of T/B rows (several seeds' meta-policies
// tiled to their tasks), on awkward sizes with the output poisoned first.
TEST_P(BroadcastBackends, RowsGoToEveryRowOfTheirSeed) {
  for (const auto& [B, T, P] : std::vector<std::tuple<int, int, int>>{{1, 7, 13}, {3, 9, 1251}, {5, 5, 3}}) {
    const auto rows = test::random_vector<float>(std::size_t(B) * P, test::test_seed() + B, -1, 1);
    const auto in = Tensor<float>::from_host(backend(), B == 1 ? Shape{P} : Shape{B, P}, rows);
    Tensor<float> out(backend(), {T, P});
    out.poison();
    broadcast_rows(context(), in, out);
    const auto host = out.to_host();
    for (int t = 0; t < T; ++t) {
      for (int p = 0; p < P; ++p) {
        ASSERT_EQ(host[std::size_t(t) * P + p], rows[std::size_t(t / (T / B)) * P + p]) << B << " seeds, row " << t;
      }
    }
  }
  Tensor<float> bad(backend(), {2, 4}), out(backend(), {3, 4});
  EXPECT_THROW(broadcast_rows(context(), bad, out), Error);  // 2 seeds do not split 3 rows
}

MBMPO_INSTANTIATE_BACKEND_TESTS(BroadcastBackends);

}  // namespace
}  // namespace mbmpo
