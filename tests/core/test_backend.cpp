#include "backend_test.hpp"
#include "host/core/context.hpp"
#include "host/core/error.hpp"

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

}  // namespace
}  // namespace mbmpo
