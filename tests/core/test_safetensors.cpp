// The safetensors reader/writer: the byte layout the format specifies, round trips, and clear
// errors for damaged or mismatched files.
#include <gtest/gtest.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "host/core/safetensors.hpp"

namespace mbmpo {
namespace {

Safetensors sample() {
  Safetensors file;
  file.put_f32("w", {2, 3}, {1, 2, 3, 4, 5, 6.5f});
  file.put_i64("steps", {2}, {7, -8});
  file.set_metadata("format", "test");
  return file;
}

TEST(Safetensors, ByteLayoutFollowsTheFormat) {
  const std::string bytes = sample().serialize();
  std::uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  ASSERT_EQ(length % 8, 0u);
  ASSERT_EQ(bytes.size(), 8 + length + 6 * 4 + 2 * 8);
  const auto header = nlohmann::json::parse(bytes.substr(8, length));
  EXPECT_EQ(header["__metadata__"]["format"], "test");
  EXPECT_EQ(header["w"]["dtype"], "F32");
  EXPECT_EQ(header["w"]["shape"], nlohmann::json::array({2, 3}));
  // Tensors are stored in name order: "steps" first, then "w".
  EXPECT_EQ(header["steps"]["data_offsets"], nlohmann::json::array({0, 16}));
  EXPECT_EQ(header["w"]["data_offsets"], nlohmann::json::array({16, 40}));
  float last;
  std::memcpy(&last, bytes.data() + bytes.size() - 4, 4);
  EXPECT_EQ(last, 6.5f);
}

TEST(Safetensors, RoundTrip) {
  const std::string path = ::testing::TempDir() + "roundtrip.safetensors";
  sample().save(path);
  const Safetensors file = Safetensors::load(path);
  EXPECT_EQ(file.f32("w", {2, 3}), std::vector<float>({1, 2, 3, 4, 5, 6.5f}));
  EXPECT_EQ(file.i64("steps", {2}), std::vector<std::int64_t>({7, -8}));
  EXPECT_EQ(file.metadata("format"), "test");
}

TEST(Safetensors, MismatchesAreInputErrorsNamingTheTensor) {
  const Safetensors file = Safetensors::parse(sample().serialize(), "model.safetensors");
  auto message = [&](auto&& call) {
    try {
      call();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { file.f32("w", {3, 2}); }).find("'w' has shape [2, 3]"), std::string::npos);
  EXPECT_NE(message([&] { file.f32("steps", {2}); }).find("dtype I64"), std::string::npos);
  EXPECT_NE(message([&] { file.f32("missing", {1}); }).find("'missing' is missing"), std::string::npos);
  EXPECT_NE(message([&] { file.metadata("nope"); }).find("model.safetensors"), std::string::npos);
}

TEST(Safetensors, DamagedFilesAreInputErrors) {
  const std::string bytes = sample().serialize();
  EXPECT_THROW(Safetensors::parse(bytes.substr(0, 5), "f"), InputError);
  EXPECT_THROW(Safetensors::parse(bytes.substr(0, bytes.size() - 1), "f"), InputError);
  std::string huge_header = bytes;
  huge_header[7] = '\x7f';
  EXPECT_THROW(Safetensors::parse(huge_header, "f"), InputError);
  std::string bad_json = bytes;
  bad_json[8] = '[';
  EXPECT_THROW(Safetensors::parse(bad_json, "f"), InputError);
  EXPECT_THROW(Safetensors::load(::testing::TempDir() + "does-not-exist.safetensors"), InputError);
}

}  // namespace
}  // namespace mbmpo
