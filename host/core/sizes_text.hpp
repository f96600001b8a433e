// Layer sizes as text, the one form the CLI, config.toml and the model files' metadata write:
// "512,512" (empty: no layers).
#pragma once

#include <string>
#include <vector>

namespace mbmpo {

std::string join_sizes(const std::vector<int>& sizes);
// Throws InputError naming `name` when the text is not a comma-separated list of integers.
std::vector<int> parse_sizes(const std::string& text, const std::string& name);

}  // namespace mbmpo
