#include "host/core/safetensors.hpp"

#include <cstring>
#include <nlohmann/json.hpp>

#include "host/core/atomic_file.hpp"

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
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
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
  for (const auto& [name, e] : tensors_) out += e.bytes;
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
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(length));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(detail::concat(source, ": corrupt safetensors header: ", e.what()));
  }
  MBMPO_CHECK_INPUT(header.is_object(), source, ": safetensors header is not a JSON object");
  const std::size_t data_begin = 8 + length;
  const std::size_t data_size = bytes.size() - data_begin;
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
      MBMPO_CHECK_INPUT(std::uint64_t(shape_numel(e.shape)) * dtype_size(e.dtype) ==
                            offsets[1] - offsets[0],
                        source, ": tensor '", name, "' has ", offsets[1] - offsets[0],
                        " bytes, its shape ", shape_to_string(e.shape), " needs ",
                        shape_numel(e.shape) * std::int64_t(dtype_size(e.dtype)));
      e.bytes = bytes.substr(data_begin + offsets[0], offsets[1] - offsets[0]);
      file.tensors_[name] = std::move(e);
    }
  } catch (const nlohmann::json::exception& e) {
    throw InputError(detail::concat(source, ": malformed safetensors header: ", e.what()));
  }
  return file;
}

void Safetensors::save(const std::string& path) const { write_file_atomically(path, serialize()); }

Safetensors Safetensors::load(const std::string& path) { return parse(read_file(path), path); }

}  // namespace mbmpo
