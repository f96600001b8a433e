#include <cmath>

#include "backend_test.hpp"
#include "host/core/tensor.hpp"

namespace mbmpo {
namespace {

TEST(Shape, NumelAndText) {
  EXPECT_EQ(shape_numel({3, 77, 23}), 3 * 77 * 23);
  EXPECT_EQ(shape_numel({}), 1);
  EXPECT_EQ(shape_numel({4, 0}), 0);
  EXPECT_EQ(shape_to_string({3, 77}), "[3, 77]");
  EXPECT_THROW(shape_numel({2, -1}), Error);
}

TEST(TensorView, ShapeMismatchNamesTheTensor) {
  std::vector<float> storage(6);
  const TensorView<float> view{Backend::cpu, storage.data(), {2, 3}};
  EXPECT_NO_THROW(expect_shape(view, {2, 3}, Backend::cpu, "weights"));
  try {
    expect_shape(view, {3, 2}, Backend::cpu, "weights");
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weights: expected shape [3, 2] on cpu, got [2, 3] on cpu"),
              std::string::npos)
        << e.what();
  }
  EXPECT_THROW(expect_shape(view, {2, 3}, Backend::cuda, "weights"), Error);
}

class TensorTest : public test::BackendTest {};

TEST_P(TensorTest, RoundTripsThroughTheBackend) {
  std::vector<float> values(37 * 5);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = 0.5f * static_cast<float>(i) - 3.f;
  Tensor<float> tensor = Tensor<float>::from_host(backend(), {37, 5}, values);
  EXPECT_EQ(tensor.backend(), backend());
  EXPECT_EQ(tensor.numel(), 185);
  EXPECT_EQ(tensor.bytes(), 185 * sizeof(float));
  EXPECT_EQ(tensor.to_host(), values);

  Tensor<float> copy(backend(), {37, 5});
  copy.copy_from(tensor);
  EXPECT_EQ(copy.to_host(), values);
}

TEST_P(TensorTest, PoisonFillsWithNaNAndZeroFillsWithZero) {
  Tensor<double> tensor(backend(), {13});
  tensor.poison();
  for (double value : tensor.to_host()) EXPECT_TRUE(std::isnan(value));
  tensor.fill_zero();
  for (double value : tensor.to_host()) EXPECT_EQ(value, 0.0);
}

TEST_P(TensorTest, MoveTransfersOwnership) {
  Tensor<float> a = Tensor<float>::from_host(backend(), {2}, {1.f, 2.f});
  const float* data = a.data();
  Tensor<float> b(std::move(a));
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(a.data(), nullptr);
  a = std::move(b);
  EXPECT_EQ(a.data(), data);
  EXPECT_EQ(a.to_host(), (std::vector<float>{1.f, 2.f}));
}

TEST_P(TensorTest, WrongSizedHostDataIsRejected) {
  Tensor<float> tensor(backend(), {4});
  EXPECT_THROW(tensor.copy_from_host({1.f, 2.f}), Error);
  Tensor<float> other(backend(), {5});
  EXPECT_THROW(tensor.copy_from(other), Error);
}

MBMPO_INSTANTIATE_BACKEND_TESTS(TensorTest);

}  // namespace
}  // namespace mbmpo
