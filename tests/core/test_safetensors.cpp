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


// A file built by hand: a header of the given JSON and `data` after it, as another writer (or a
// damaged file) might lay it out.
std::string handmade(const nlohmann::ordered_json& header, const std::string& data) {
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((std::uint64_t(text.size()) >> (8 * i)) & 0xff);
  return out + text + data;
}

std::string parse_error(const std::string& bytes) {
  try {
    Safetensors::parse(bytes, "f.safetensors");
  } catch (const InputError& e) {
    return e.what();
  }
  return "no error";
}

nlohmann::ordered_json tensor(std::vector<std::int64_t> shape, std::uint64_t begin, std::uint64_t end) {
  return {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

// The format's rules: the tensors' byte ranges tile the data, in any order, with no overlap, no
// hole and nothing after the last; each name appears once; the header is a JSON object.
TEST(Safetensors, LayoutsAgainstTheFormatsRulesAreRefused) {
  const std::string data(16, '\0');
  // Another writer's order (b's bytes first) and no checksum: accepted.
  const Safetensors other = Safetensors::parse(handmade({{"a", tensor({2}, 8, 16)}, {"b", tensor({2}, 0, 8)}}, data), "f");
  EXPECT_EQ(other.f32("a", {2}), std::vector<float>({0, 0}));
  EXPECT_NE(parse_error(handmade({{"a", tensor({2}, 0, 8)}, {"b", tensor({2}, 4, 12)}}, data)).find("'b' overlaps"),
            std::string::npos);
  EXPECT_NE(parse_error(handmade({{"a", tensor({2}, 0, 8)}, {"b", tensor({2}, 0, 8)}}, data.substr(0, 8))).find("overlaps"),
            std::string::npos);
  EXPECT_NE(parse_error(handmade({{"a", tensor({1}, 0, 4)}, {"b", tensor({2}, 8, 16)}}, data)).find("a hole"),
            std::string::npos);
  EXPECT_NE(parse_error(handmade({{"a", tensor({2}, 0, 8)}}, data)).find("8 bytes after the last tensor"),
            std::string::npos);
  // A shape whose element count overflows 64 bits is not taken for a small one.
  EXPECT_NE(parse_error(handmade({{"a", tensor({4294967296, 4294967296, 4}, 0, 16)}}, data)).find("more than the file holds"),
            std::string::npos);
  // A repeated name (JSON parsers keep one of the two silently).
  const std::string once = handmade({{"a", tensor({2}, 0, 8)}, {"zz", tensor({2}, 8, 16)}}, data);
  std::string twice = once;
  twice.replace(twice.find("\"zz\""), 4, "\"a\" ");
  EXPECT_NE(parse_error(twice).find("names 'a' twice"), std::string::npos) << parse_error(twice);
  std::string not_object = once;
  not_object[8] = ' ';
  EXPECT_NE(parse_error(not_object).find("does not begin with '{'"), std::string::npos);
}

// serialize() records a checksum of the tensor bytes: one flipped bit anywhere in them is caught,
// and names the file.
TEST(Safetensors, AFlippedBitInTheTensorBytesIsCaught) {
  const std::string bytes = sample().serialize();
  EXPECT_EQ(Safetensors::parse(bytes, "f").all_metadata().count("mbmpo.xxh3_128"), 0u)
      << "the checksum is the format's, not the caller's metadata";
  std::uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  for (std::size_t at = 8 + length; at < bytes.size(); at += 7) {
    std::string flipped = bytes;
    flipped[at] = static_cast<char>(flipped[at] ^ 0x10);
    EXPECT_NE(parse_error(flipped).find("f.safetensors: the tensor bytes do not match the checksum"), std::string::npos)
        << "byte " << at;
  }
}

}  // namespace
}  // namespace mbmpo
