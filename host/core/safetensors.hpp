// The safetensors file format (https://huggingface.co/docs/safetensors), so weights and checkpoints
// load directly in PyTorch with `safetensors.torch.load_file`. Layout: an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {str: str}},
// then the raw little-endian tensor bytes.
//
// serialize() records the XXH3-128 checksum of the tensor bytes under the metadata key
// "mbmpo.xxh3_128"; parse() verifies it when present (a file from another writer has none) and
// holds the format's rules: the header is a JSON object naming each tensor once, and the tensors'
// byte ranges tile the data with no overlap, no hole and nothing after the last.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "host/core/tensor.hpp"

namespace mbmpo {

class Safetensors {
 public:
  void put_f32(const std::string& name, const Shape& shape, const std::vector<float>& values);
  void put_i64(const std::string& name, const Shape& shape, const std::vector<std::int64_t>& values);
  void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }

  bool has(const std::string& name) const { return tensors_.count(name) != 0; }
  // Throw InputError naming the file (as given to load/parse), the tensor and the mismatch.
  std::vector<float> f32(const std::string& name, const Shape& expected_shape) const;
  std::vector<std::int64_t> i64(const std::string& name, const Shape& expected_shape) const;
  std::string metadata(const std::string& key) const;
  const std::map<std::string, std::string>& all_metadata() const { return metadata_; }

  std::string serialize() const;
  // `source` names the file in error messages.
  static Safetensors parse(const std::string& bytes, const std::string& source);
  void save(const std::string& path) const;  // atomic: temporary file, then rename
  static Safetensors load(const std::string& path);

 private:
  struct Entry {
    std::string dtype;
    Shape shape;
    std::string bytes;
  };
  const Entry& entry(const std::string& name, const char* dtype, const Shape& expected_shape) const;
  void put(const std::string& name, const char* dtype, const Shape& shape, const void* data,
           std::size_t bytes);

  std::string source_ = "safetensors data";
  std::map<std::string, Entry> tensors_;
  std::map<std::string, std::string> metadata_;
};

}  // namespace mbmpo
