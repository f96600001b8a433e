#include "host/core/safetensors.hpp"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <tuple>

#include "host/core/atomic_file.hpp"
#include "host/core/file_checksum.hpp"

namespace mbmpo {
namespace {

static_assert(sizeof(float) == 4, "float must be IEEE single precision");

std::size_t dtype_size(const std::string& dtype) {
  if (dtype == "F32" || dtype == "I32") return 4;
  if (dtype == "F64" || dtype == "I64") return 8;
  if (dtype == "U8" || dtype == "BOOL") return 1;
  return 0;
}

// The largest header we accept; real headers here are a few kilobytes.
constexpr std::uint64_t kMaxHeaderBytes = 100u << 20;

// The metadata key under which serialize() records the checksum of the tensor bytes; parse()
// verifies it when present (files written elsewhere, by PyTorch say, have none).
constexpr const char* kChecksumKey = "mbmpo.xxh3_128";

// The element count of a shape, or -1 when it exceeds `limit` (a header cannot claim more
// elements than its file has bytes; this also keeps the product from overflowing).
std::int64_t bounded_numel(const Shape& shape, std::uint64_t limit) {
  std::uint64_t count = 1;
  for (auto extent : shape) {
    if (extent == 0) return 0;
  }
  for (auto extent : shape) {
    if (std::uint64_t(extent) > limit || count > limit / std::uint64_t(extent)) return -1;
    count *= std::uint64_t(extent);
  }
  return std::int64_t(count);
}

}  // namespace

void Safetensors::put(const std::string& name, const char* dtype, const Shape& shape,
                      const void* data, std::size_t bytes) {
  MBMPO_CHECK(!name.empty() && name != "__metadata__", "safetensors: bad tensor name '", name, "'");
  MBMPO_CHECK(std::size_t(shape_numel(shape)) * dtype_size(dtype) == bytes, "safetensors: tensor '",
              name, "' of shape ", shape_to_string(shape), " given ", bytes, " bytes");
  Entry entry{dtype, shape, std::string(static_cast<const char*>(data), bytes)};
  tensors_[name] = std::move(entry);
}

void Safetensors::put_f32(const std::string& name, const Shape& shape,
                          const std::vector<float>& values) {
  put(name, "F32", shape, values.data(), values.size() * sizeof(float));
}

void Safetensors::put_i64(const std::string& name, const Shape& shape,
                          const std::vector<std::int64_t>& values) {
  put(name, "I64", shape, values.data(), values.size() * sizeof(std::int64_t));
}

const Safetensors::Entry& Safetensors::entry(const std::string& name, const char* dtype,
                                             const Shape& expected_shape) const {
  const auto it = tensors_.find(name);
  MBMPO_CHECK_INPUT(it != tensors_.end(), source_, ": tensor '", name, "' is missing");
  MBMPO_CHECK_INPUT(it->second.dtype == dtype, source_, ": tensor '", name, "' has dtype ",
                    it->second.dtype, ", expected ", dtype);
  MBMPO_CHECK_INPUT(it->second.shape == expected_shape, source_, ": tensor '", name,
                    "' has shape ", shape_to_string(it->second.shape), ", expected ",
                    shape_to_string(expected_shape));
  return it->second;
}

std::vector<float> Safetensors::f32(const std::string& name, const Shape& expected_shape) const {
  const Entry& e = entry(name, "F32", expected_shape);
  std::vector<float> values(e.bytes.size() / sizeof(float));
  std::memcpy(values.data(), e.bytes.data(), e.bytes.size());
  return values;
}

std::vector<std::int64_t> Safetensors::i64(const std::string& name,
                                           const Shape& expected_shape) const {
  const Entry& e = entry(name, "I64", expected_shape);
  std::vector<std::int64_t> values(e.bytes.size() / sizeof(std::int64_t));
  std::memcpy(values.data(), e.bytes.data(), e.bytes.size());
  return values;
}

std::string Safetensors::metadata(const std::string& key) const {
  const auto it = metadata_.find(key);
  MBMPO_CHECK_INPUT(it != metadata_.end(), source_, ": metadata key '", key, "' is missing");
  return it->second;
}

std::string Safetensors::serialize() const {
  std::string data;
  for (const auto& [name, e] : tensors_) data += e.bytes;
  std::map<std::string, std::string> metadata = metadata_;
  metadata[kChecksumKey] = bytes_checksum(data);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const auto& [name, e] : tensors_) {
    header[name] = {{"dtype", e.dtype},
                    {"shape", e.shape},
                    {"data_offsets", {offset, offset + e.bytes.size()}}};
    offset += e.bytes.size();
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // the format pads the header to 8 bytes
  std::string out(8, '\0');
  const std::uint64_t length = text.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((length >> (8 * i)) & 0xff);
  out += text;
  out += data;
  return out;
}

Safetensors Safetensors::parse(const std::string& bytes, const std::string& source) {
  Safetensors file;
  file.source_ = source;
  MBMPO_CHECK_INPUT(bytes.size() >= 8, source, ": not a safetensors file (", bytes.size(),
                    " bytes, too short for the header length)");
  std::uint64_t length = 0;
  for (int i = 0; i < 8; ++i) length |= std::uint64_t(static_cast<unsigned char>(bytes[i])) << (8 * i);
  MBMPO_CHECK_INPUT(length <= kMaxHeaderBytes && 8 + length <= bytes.size(), source,
                    ": corrupt or truncated safetensors file (header of ", length,
                    " bytes, file of ", bytes.size(), ")");
  // The format's rules: the header is a JSON object (it begins with '{'), each name appears once,
  // and the tensors' byte ranges tile the data that follows, with no overlap and no hole.
  MBMPO_CHECK_INPUT(length > 0 && bytes[8] == '{', source, ": corrupt safetensors header (it does not begin with '{')");
  // nlohmann::json stops reading at a NUL byte, so that garbage after one would pass unseen.
  MBMPO_CHECK_INPUT(std::find(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(length), '\0') ==
                        bytes.begin() + 8 + std::ptrdiff_t(length),
                    source, ": corrupt safetensors header (it holds a NUL byte)");
  nlohmann::json header;
  std::string repeated;
  const nlohmann::json::parser_callback_t note_repeats = [&repeated, seen = std::set<std::string>()](
                                                              int depth, nlohmann::json::parse_event_t event,
                                                              nlohmann::json& parsed) mutable {
    if (event == nlohmann::json::parse_event_t::key && depth == 1 && !seen.insert(parsed.get<std::string>()).second &&
        repeated.empty()) {
      repeated = parsed.get<std::string>();
    }
    return true;
  };
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(length), note_repeats);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(detail::concat(source, ": corrupt safetensors header: ", e.what()));
  }
  MBMPO_CHECK_INPUT(header.is_object(), source, ": safetensors header is not a JSON object");
  MBMPO_CHECK_INPUT(repeated.empty(), source, ": safetensors header names '", repeated, "' twice");
  const std::size_t data_begin = 8 + length;
  const std::size_t data_size = bytes.size() - data_begin;
  std::vector<std::tuple<std::uint64_t, std::uint64_t, std::string>> ranges;  // begin, end, name
  try {
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        for (const auto& [key, text] : value.items()) file.metadata_[key] = text.get<std::string>();
        continue;
      }
      Entry e;
      e.dtype = value.at("dtype").get<std::string>();
      e.shape = value.at("shape").get<Shape>();
      const auto offsets = value.at("data_offsets").get<std::vector<std::uint64_t>>();
      MBMPO_CHECK_INPUT(dtype_size(e.dtype) != 0, source, ": tensor '", name,
                        "' has unsupported dtype ", e.dtype);
      MBMPO_CHECK_INPUT(offsets.size() == 2 && offsets[0] <= offsets[1] && offsets[1] <= data_size,
                        source, ": tensor '", name, "' lies outside the file (truncated?)");
      for (auto extent : e.shape) {
        MBMPO_CHECK_INPUT(extent >= 0, source, ": tensor '", name, "' has a negative extent");
      }
      const std::int64_t numel = bounded_numel(e.shape, data_size);
      MBMPO_CHECK_INPUT(numel >= 0 && std::uint64_t(numel) * dtype_size(e.dtype) == offsets[1] - offsets[0],
                        source, ": tensor '", name, "' has ", offsets[1] - offsets[0],
                        " bytes, its shape ", shape_to_string(e.shape), " needs ",
                        numel < 0 ? std::string("more than the file holds")
                                  : std::to_string(numel * std::int64_t(dtype_size(e.dtype))));
      e.bytes = bytes.substr(data_begin + offsets[0], offsets[1] - offsets[0]);
      ranges.emplace_back(offsets[0], offsets[1], name);
      file.tensors_[name] = std::move(e);
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(detail::concat(source, ": malformed safetensors header: ", e.what()));
  }
  std::sort(ranges.begin(), ranges.end());
  std::uint64_t covered = 0;
  for (const auto& [begin, end, name] : ranges) {
    MBMPO_CHECK_INPUT(begin >= covered, source, ": tensor '", name, "' overlaps the bytes of another tensor");
    MBMPO_CHECK_INPUT(begin == covered, source, ": ", begin - covered, " bytes before tensor '", name,
                      "' belong to no tensor (a hole in the data)");
    covered = end;
  }
  MBMPO_CHECK_INPUT(covered == data_size, source, ": ", data_size - covered,
                    " bytes after the last tensor belong to no tensor");
  const auto checksum = file.metadata_.find(kChecksumKey);
  if (checksum != file.metadata_.end()) {
    MBMPO_CHECK_INPUT(checksum->second == bytes_checksum(std::string_view(bytes).substr(data_begin)), source,
                      ": the tensor bytes do not match the checksum the file was written with (the file is "
                      "corrupt)");
    file.metadata_.erase(checksum);
  }
  return file;
}

void Safetensors::save(const std::string& path) const { write_file_atomically(path, serialize()); }

Safetensors Safetensors::load(const std::string& path) { return parse(read_file(path), path); }

}  // namespace mbmpo
