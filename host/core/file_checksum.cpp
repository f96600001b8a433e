#include "host/core/file_checksum.hpp"

#include <cstdio>
#include <fstream>
#include <memory>
#include <vector>

// Header-only use of libxxhash: nothing to link, and the same code in every binary and in the
// Python module.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "host/core/error.hpp"

namespace mbmpo {
namespace {

std::string hex(const XXH128_hash_t& hash) {
  XXH128_canonical_t canonical;  // big-endian bytes: the same digits on every machine
  XXH128_canonicalFromHash(&canonical, hash);
  static const char digits[] = "0123456789abcdef";
  std::string text;
  for (unsigned char byte : canonical.digest) {
    text += digits[byte >> 4];
    text += digits[byte & 15];
  }
  return text;
}

}  // namespace

std::string bytes_checksum(std::string_view bytes) { return hex(XXH3_128bits(bytes.data(), bytes.size())); }

std::string file_checksum(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MBMPO_CHECK_INPUT(in.good(), "cannot read ", path);
  const std::unique_ptr<XXH3_state_t, decltype(&XXH3_freeState)> state(XXH3_createState(), &XXH3_freeState);
  MBMPO_CHECK(state && XXH3_128bits_reset(state.get()) == XXH_OK, "xxhash: cannot start a checksum");
  std::vector<char> piece(1 << 20);
  while (in) {
    in.read(piece.data(), std::streamsize(piece.size()));
    const std::streamsize got = in.gcount();
    if (got > 0) MBMPO_CHECK(XXH3_128bits_update(state.get(), piece.data(), std::size_t(got)) == XXH_OK, "xxhash update");
  }
  MBMPO_CHECK_INPUT(in.eof(), "cannot read ", path, " to its end");
  return hex(XXH3_128bits_digest(state.get()));
}

}  // namespace mbmpo
