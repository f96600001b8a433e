// Checksums that catch a flipped bit or a cut-short file: XXH3-128 (libxxhash, Debian's
// libxxhash-dev), written as 32 lowercase hex digits. A checkpoint's state.json records one for
// each of its files and one for itself (run_directory.cpp); a safetensors file records one for its
// tensor bytes (safetensors.cpp).
#pragma once

#include <string>
#include <string_view>

namespace mbmpo {

std::string bytes_checksum(std::string_view bytes);
// The file's checksum, read in pieces; InputError naming the path when it cannot be read.
std::string file_checksum(const std::string& path);

}  // namespace mbmpo
