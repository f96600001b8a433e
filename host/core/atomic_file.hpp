// Files that are either wholly written or not at all: data goes to a temporary file beside the
// target, is flushed to disk, then renamed over it. A crash or an error never leaves a half file.
#pragma once

#include <string>

namespace mbmpo {

void write_file_atomically(const std::string& path, const std::string& contents);
// The whole file; InputError naming the path when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace mbmpo
