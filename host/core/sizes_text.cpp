#include "host/core/sizes_text.hpp"

#include <exception>
#include <sstream>

#include "host/core/error.hpp"

namespace mbmpo {

std::string join_sizes(const std::vector<int>& sizes) {
  std::string text;
  for (std::size_t i = 0; i < sizes.size(); ++i) text += (i ? "," : "") + std::to_string(sizes[i]);
  return text;
}

std::vector<int> parse_sizes(const std::string& text, const std::string& name) {
  std::vector<int> sizes;
  // getline drops a trailing empty item ("64," would read as 64): refuse it before splitting.
  MBMPO_CHECK_INPUT(!text.empty() && text.back() != ',', name, ": expected sizes like 512,512, got '", text, "'");
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    std::size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    MBMPO_CHECK_INPUT(used == item.size() && !item.empty(), name, ": expected sizes like 512,512, got '", text, "'");
    sizes.push_back(value);
  }
  return sizes;
}

}  // namespace mbmpo
